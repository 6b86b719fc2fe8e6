"""``minise bench train --profile``: time per kind of work in a training step, and the cores it kept busy.

The profiler wraps every op's forward and backward (and conv2d's im2col, col2im
and GEMMs) with timers for the duration of a ``with`` block only: timing costs
nothing when it is off.

Cores busy = CPU time / wall time of each kind of work: 1.0 is one core, 2.0 two.
The CPU time is counted where the work runs: for the GEMMs, the whole process
(BLAS's threads do the work); for everything else, the main thread plus
minise's own workers (``minise.parallel``). Not the whole process there:
OpenBLAS's threads keep spinning for a while after each GEMM and would show
serial work as busy.
"""

import time
from collections import defaultdict

from .. import functional as F
from .. import parallel
from ..autograd import Function
from ..functional import conv

GEMM = ("conv fwd (GEMM)", "conv wgrad (GEMM)", "conv dgrad (GEMM)")

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
        self.totals = defaultdict(float)     # wall seconds per category
        self.cpu = defaultdict(float)        # CPU seconds per category (see the module docstring)
        self._children = []      # stack: [wall, process CPU, own CPU] of wrapped calls inside the current one
        self._patches = []

    def _wrap(self, category, fn):
        process = category in GEMM   # which CPU clock counts this category's work

        def timed(*args, **kwargs):
            self._children.append([0.0, 0.0, 0.0])
            start = (time.perf_counter(), time.process_time(), time.thread_time() + parallel.worker_cpu_seconds())
            try:
                return fn(*args, **kwargs)
            finally:
                end = (time.perf_counter(), time.process_time(), time.thread_time() + parallel.worker_cpu_seconds())
                spent = [e - s for e, s in zip(end, start)]
                inner = self._children.pop()
                self.totals[category] += spent[0] - inner[0]
                clock = 1 if process else 2
                self.cpu[category] += max(spent[clock] - inner[clock], 0.0)
                if self._children:
                    for i in range(3):
                        self._children[-1][i] += spent[i]
        return timed

    def cores_busy(self, category):
        """CPU time / wall time of ``category``: how many cores its work kept busy on average."""
        wall = self.totals[category]
        return self.cpu[category] / wall if wall > 0 else 0.0

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


def profile_steps(model, optimizer, x, y, steps, busy=False):
    """Seconds per step of each kind of work, averaged over ``steps`` training steps.

    Returns {category: seconds}; with ``busy=True``, {category: (seconds, cores busy)}.
    """
    profiler = OpProfiler()
    model.train()
    with profiler:
        for _ in range(steps):
            profiler.time("optimiser", optimizer.zero_grad)
            loss = profiler.time("autograd engine & Python", lambda: F.cross_entropy(model(x), y))
            profiler.time("autograd engine & Python", loss.backward)
            profiler.time("optimiser", optimizer.step)
    if busy:
        return {k: (v / steps, profiler.cores_busy(k)) for k, v in profiler.totals.items()}
    return {k: v / steps for k, v in profiler.totals.items()}
