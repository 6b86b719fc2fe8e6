"""Timing and threads for the benchmarks: a median timer, and NumPy's BLAS thread count."""

import ctypes
import statistics
import time

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


def _openblas_function(names):
    """A function of the OpenBLAS library NumPy loaded (Linux only), or None.

    NumPy's wheels ship OpenBLAS under prefixed names (``scipy_openblas_...64_``);
    threadpoolctl does this lookup more generally when it is installed.
    """
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        for name in names:
            if hasattr(lib, name):
                return getattr(lib, name)
    return None


def blas_threads():
    """How many threads NumPy's BLAS (the GEMMs of conv2d) uses, or None if unknown."""
    get = _openblas_function(["scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                              "openblas_get_num_threads"])
    return int(get()) if get is not None else None


def set_blas_threads(n):
    """Ask NumPy's BLAS to use ``n`` threads; returns False when this BLAS can't be told."""
    set_ = _openblas_function(["scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                               "openblas_set_num_threads"])
    if set_ is None:
        return False
    set_(ctypes.c_int(n))
    return True
