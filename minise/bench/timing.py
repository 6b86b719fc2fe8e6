"""Timing for the benchmarks: a median timer. (NumPy's BLAS threads: ``minise.backend``.)"""

import statistics
import time

from ..backend import blas_threads, set_blas_threads

__all__ = ["time_ms", "blas_threads", "set_blas_threads"]


def time_ms(fn, repeat=5, warmup=1):
    """Median wall time of ``fn()`` in milliseconds over ``repeat`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)
