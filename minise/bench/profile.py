"""``minise bench train --profile``: time per kind of work in a training step, and the cores it kept busy.

The profiler wraps every op's forward and backward with timers for the
duration of a ``with`` block only: timing costs nothing when it is off.

Cores busy = CPU time / wall time of each kind of work: 1.0 is one core, 2.0 two.
The CPU time is counted where the work runs: for conv2d, the whole process
(its tiles run on minise's workers, and a single tile's GEMM on BLAS's
threads); for everything else, the main thread plus minise's own workers
(``minise.parallel``). Not the whole process there: OpenBLAS's threads keep
spinning for a while after a GEMM and would show serial work as busy.

conv2d runs im2col and its GEMMs tile by tile, on every thread at once
(``parallel.for_each_tile``), so their wall times do not add up to the op's;
the profiler counts their CPU time instead, on whichever thread runs them
(``tile_cpu``): im2col, col2im, and the rest (mostly the GEMMs).
"""

import threading
import time
from collections import defaultdict

from .. import functional as F
from .. import parallel
from ..autograd import Function
from ..functional import conv

CONV = ("conv forward (tiles)", "conv backward (tiles)")

__all__ = ["OpProfiler", "profile_steps"]


def _category(cls, method):
    name = cls.__name__
    if name == "Conv2d":
        return {"forward": CONV[0], "backward": CONV[1]}[method]
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

    Times are exclusive: a wrapped call inside another (an op inside another op's backward)
    is counted in its own category and subtracted from the outer one. ``tile_cpu``: CPU
    seconds of im2col and col2im, on every thread, inside conv2d's tiles or not.
    """

    def __init__(self):
        self.totals = defaultdict(float)     # wall seconds per category
        self.cpu = defaultdict(float)        # CPU seconds per category (see the module docstring)
        self.tile_cpu = defaultdict(float)   # CPU seconds of im2col / col2im, all threads together
        self._children = []      # stack: [wall, process CPU, own CPU] of wrapped calls inside the current one
        self._patches = []
        self._lock = threading.Lock()

    def _wrap_cpu(self, kind, fn):
        """fn, adding its CPU time to ``tile_cpu[kind]``: the calling thread's (any thread), plus,
        for a call outside a tile, the pool workers' (the call may split its copy among them)."""
        def clock(outside):
            return time.thread_time() + (parallel.worker_cpu_seconds() if outside else 0.0)

        def timed(*args, **kwargs):
            outside = not parallel.in_worker_chunk()
            start = clock(outside)
            try:
                return fn(*args, **kwargs)
            finally:
                spent = clock(outside) - start
                with self._lock:
                    self.tile_cpu[kind] += spent
        return timed

    def _wrap(self, category, fn):
        process = category in CONV   # which CPU clock counts this category's work

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

    def _patch(self, owner, attr, category, wrap=None):
        original = owner.__dict__[attr]
        self._patches.append((owner, attr, original))
        setattr(owner, attr, (wrap or self._wrap)(category, original))

    def time(self, category, fn):
        """Run ``fn()`` counting its time (less any wrapped op inside it) as ``category``."""
        return self._wrap(category, fn)()

    def __enter__(self):
        self._patch(conv, "_fill_padded", "im2col", self._wrap_cpu)   # conv2d pads tile by tile
        self._patch(conv, "_tile_columns", "im2col", self._wrap_cpu)
        self._patch(conv, "_col2im", "col2im", self._wrap_cpu)
        for cls in _function_classes():
            for method in ("forward", "backward"):
                if method in cls.__dict__ and cls is not Function:
                    self._patch(cls, method, _category(cls, method))
        return self

    def __exit__(self, *exc):
        for owner, attr, original in reversed(self._patches):
            setattr(owner, attr, original)
        self._patches = []


def profile_steps(model, optimizer, x, y, steps, busy=False, conv_split=False):
    """Seconds per step of each kind of work, averaged over ``steps`` training steps.

    Returns {category: seconds}; with ``busy=True``, {category: (seconds, cores busy)}.
    With ``conv_split=True`` also a second dict, {"im2col", "col2im", "conv CPU": CPU
    seconds per step}: how conv2d's CPU time (all threads) splits.
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
        table = {k: (v / steps, profiler.cores_busy(k)) for k, v in profiler.totals.items()}
    else:
        table = {k: v / steps for k, v in profiler.totals.items()}
    if not conv_split:
        return table
    split = {k: v / steps for k, v in profiler.tile_cpu.items()}
    split["conv CPU"] = sum(profiler.cpu[k] for k in CONV) / steps
    return table, split
