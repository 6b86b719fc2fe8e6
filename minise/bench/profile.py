"""``minise bench train --profile``: time per kind of work in a training step.

The profiler wraps every op's forward and backward (and conv2d's im2col, col2im
and GEMMs) with timers for the duration of a ``with`` block only: timing costs
nothing when it is off.
"""

import time
from collections import defaultdict

from .. import functional as F
from ..autograd import Function
from ..functional import conv

__all__ = ["OpProfiler", "profile_steps"]


def _category(cls, method):
    name = cls.__name__
    if name == "Conv2d":
        return {"forward": "conv fwd (GEMM)", "backward": "conv backward (rest)",
                "_grad_weight": "conv wgrad (GEMM)", "_grad_input_by_col2im": "conv dgrad (GEMM)",
                "_grad_input_by_convolution": "conv dgrad (GEMM)"}[method]
    if name == "BatchNorm":
        return "batch norm"
    return "elementwise & other ops"


def _function_classes():
    classes, todo = [], [Function]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo.extend(cls.__subclasses__())
    return classes


class OpProfiler:
    """Wraps op methods with timers for the duration of a ``with`` block; totals in seconds.

    Times are exclusive: a wrapped call inside another (im2col inside conv2d's forward) is
    counted in its own category and subtracted from the outer one.
    """

    def __init__(self):
        self.totals = defaultdict(float)
        self._children = []      # stack: time spent in wrapped calls inside the current one
        self._patches = []

    def _wrap(self, category, fn):
        def timed(*args, **kwargs):
            self._children.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                inner = self._children.pop()
                self.totals[category] += elapsed - inner
                if self._children:
                    self._children[-1] += elapsed
        return timed

    def _patch(self, owner, attr, category):
        original = owner.__dict__[attr]
        self._patches.append((owner, attr, original))
        setattr(owner, attr, self._wrap(category, original))

    def time(self, category, fn):
        """Run ``fn()`` counting its time (less any wrapped op inside it) as ``category``."""
        return self._wrap(category, fn)()

    def __enter__(self):
        self._patch(conv, "_im2col", "im2col")
        self._patch(conv, "_col2im", "col2im")
        for cls in _function_classes():
            for method in ("forward", "backward", "_grad_weight", "_grad_input_by_col2im",
                           "_grad_input_by_convolution"):
                if method in cls.__dict__ and cls is not Function:
                    self._patch(cls, method, _category(cls, method))
        return self

    def __exit__(self, *exc):
        for owner, attr, original in reversed(self._patches):
            setattr(owner, attr, original)
        self._patches = []


def profile_steps(model, optimizer, x, y, steps):
    """Seconds per step of each kind of work, averaged over ``steps`` training steps."""
    profiler = OpProfiler()
    model.train()
    with profiler:
        for _ in range(steps):
            profiler.time("optimiser", optimizer.zero_grad)
            loss = profiler.time("autograd engine & Python", lambda: F.cross_entropy(model(x), y))
            profiler.time("autograd engine & Python", loss.backward)
            profiler.time("optimiser", optimizer.step)
    return {k: v / steps for k, v in profiler.totals.items()}
