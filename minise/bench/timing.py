"""Timing for the benchmarks: a median timer, and the thread count. (NumPy's BLAS threads: ``minise.backend``.)"""

import statistics
import time

from .. import parallel
from ..backend import blas_threads, set_blas_threads

__all__ = ["time_ms", "use_threads", "blas_threads", "set_blas_threads"]


def use_threads(threads):
    """``--threads``: minise's pool and NumPy's BLAS on ``threads`` threads (None: leave the
    default); says so when this BLAS can't be told. Returns the thread count minise uses."""
    if threads is not None:
        parallel.set_num_threads(threads)
        blas = blas_threads()
        if blas is None:
            print(f"note: could not set NumPy's BLAS threads to {threads} (not OpenBLAS); using its default")
        elif blas != threads:   # OpenBLAS is built for at most so many threads (64 in NumPy 2.4's wheel)
            print(f"note: NumPy's OpenBLAS runs at most {blas} threads (its build's limit), not {threads}; "
                  f"minise's own pool uses {threads}")
    return parallel.get_num_threads()


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
