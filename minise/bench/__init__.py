"""``minise bench``: how fast minise is, side by side with PyTorch on the same machine.

- ``ops.py``: ``minise bench ops``, forward + backward of every op at SE-ResNet-20 shapes;
- ``train.py``: ``minise bench train``, a whole training step and eval forward;
- ``profile.py``: ``--profile``, the time per kind of work in a step;
- ``timing.py``: the median timer and NumPy's BLAS thread count.

The command line (``minise/cli/bench.py``) registers them.
"""
