"""Several cores for a training step: the helpers behind ``ms.set_num_threads``.

NumPy hands a matrix product to a threaded BLAS, but everything else -- im2col's
copy, padding, batch norm, ReLU, the SE block's reweighting, adding up
gradients -- is one NumPy call on one core, and that serial part caps the
speed-up more cores can give (Amdahl's law; ``minise bench train --profile``
measures it, and docs/benchmarks.md and tutorial 09 work it out).

This module spreads that work over the cores the way PyTorch does it
(``at::parallel_for``): cut the arrays along the batch (or channel) axis,
run the same NumPy calls on every piece at the same time, wait for all of
them. Plain Python threads are enough, because NumPy releases the GIL while
it copies, runs a ufunc loop, reduces or calls BLAS: the pieces really run
side by side. Two ways to cut:

* chunks, for one NumPy call (or a few passes over the same slice, as batch
  norm makes over its channels): ONE large chunk per thread.

    parallel_for(n, body, work)         body(slice) for one slice of range(n) per thread
    copyto(dst, src)                    dst[...] = src
    elementwise(xp.maximum, x, 0)       a ufunc (or any f(*chunks, out=chunk)), chunk by chunk
    reduce("mean", x, axis=(2, 3))      x.sum / x.mean over axes other than 0, chunk by chunk

* tiles, for an op that makes several passes over big arrays (conv2d: im2col
  writes a column matrix 9x its input, then a GEMM reads it): cache-sized
  pieces of a few images, each taken through ALL the passes while it is in the
  core's cache, the tiles shared out among the threads. A pass over a whole
  75 MB matrix goes to memory and back; two cores share that memory's
  bandwidth, not their caches.

    tile_ranges(n, bytes_per_item)      cut range(n) (images, channels) into cache-sized tiles
    for_each_tile(count, body)          body(t) for every tile, tiles shared out among threads

An op calls a helper in one line where it used to call NumPy. With one thread, a
small array (under ``MIN_CHUNK`` elements a thread) or a CuPy array the helpers
call NumPy directly: no pool, no overhead (the GPU has its own parallelism).

The same numbers whatever the thread count: a chunk or a tile is a slice along an
axis the call does not reduce over, so each output element comes from the same
inputs by the same NumPy loop, whichever thread computes it; a new result has one
layout on any thread count (a GEMM rounds by its operands' layout); tiles depend on
the shape only, each tile's GEMM on one BLAS thread. tests/test_parallel.py checks
it bit for bit, helper by helper and for whole training steps. (Where BLAS splits a
GEMM itself -- a conv on one image, a large linear layer -- the sums' order follows
its thread count: equal within float32 rounding, docs/benchmarks.md#several-cores.)

The thread count is PyTorch's: ``minise.set_num_threads(n)`` sets this pool and NumPy's
BLAS together; by default, the threads NumPy's BLAS uses (all cores, unless
``OMP_NUM_THREADS`` or ``OPENBLAS_NUM_THREADS`` says otherwise).
"""

import itertools
import os
import threading
import time

import numpy as np

from . import backend
from .backend import get_array_module
from .threadpool import Pool

__all__ = ["set_num_threads", "get_num_threads", "parallel_for", "copyto", "elementwise", "reduce",
           "tile_ranges", "for_each_tile", "worker_cpu_seconds", "in_worker_chunk", "MIN_CHUNK", "TILE_BYTES",
           "MIN_TILES"]

# A chunk smaller than this many elements (1 MiB of float32) is not worth a thread: handing it
# over and waiting for it costs 15-100 microseconds (74-85 on this project's KVM guest, 31-37 with
# its other core busy), about what NumPy streams 1-2 MiB in. 2 or 4 MiB were no faster (benchmarks.md).
MIN_CHUNK = 1 << 18

# A tile's working set: about this many bytes (conv2d: a few images' im2col columns), so that what
# one step of a tile writes is still in the core's cache when the next step reads it (chosen by
# measurement: docs/benchmarks.md#tiles); and no tile more than 1/MIN_TILES of the items, so that
# even a small batch feeds several cores and any batch of 2+ images gives conv2d several tiles.
TILE_BYTES = 2 << 20
MIN_TILES = 8

_num_threads = None     # None: not set yet, follow NumPy's BLAS
_pool = None            # the worker threads: get_num_threads() - 1 of them (the caller is one)
_local = threading.local()  # .inside: this thread is running a chunk (a nested call runs serially)


def get_num_threads():
    """The number of threads minise uses on the CPU (as ``torch.get_num_threads``)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = backend.blas_threads() or os.cpu_count() or 1
    return _num_threads


def set_num_threads(n):
    """Use ``n`` threads on the CPU: minise's own pool and NumPy's BLAS (as ``torch.set_num_threads``).

    n: a positive int. Raises ValueError otherwise, or when the system cannot start that many
    threads (the count then stays as it was). Returns None. The thread count changes no bit
    of a result, except where BLAS splits a GEMM itself (see the module docstring)."""
    global _num_threads, _pool
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    n, before = int(n), get_num_threads()
    with _pool_lock:
        if n != _num_threads and _pool is not None:
            _pool.stop()
            _pool = None
        _num_threads = n
    try:
        _workers()           # start the pool now: a thread count the system refuses fails here
    except ValueError:
        with _pool_lock:
            _num_threads = before
        raise
    backend.set_blas_threads(n)


_pool_lock = threading.Lock()     # guards creating and replacing the pool


def _workers():
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = Pool(get_num_threads() - 1, _run_chunk_in_worker, _run_chunk)
        return _pool


def _forget_the_pool_in_a_child():
    """After ``os.fork()`` the child has only the thread that forked: none of the pool's workers (it waited
    forever for them), none that held a lock or had BLAS on one thread (for_each_tile). It starts its own pool."""
    global _pool, _pool_lock, _blas_lock, _worker_cpu_lock
    _pool, _pool_lock, _blas_lock, _worker_cpu_lock = None, threading.Lock(), threading.Lock(), threading.Lock()
    if _blas_single["callers"]:
        _blas_single["callers"] = 0
        backend.set_blas_threads(_blas_single["threads"] or get_num_threads())


if hasattr(os, "register_at_fork"):      # POSIX; Windows starts processes afresh
    os.register_at_fork(after_in_child=_forget_the_pool_in_a_child)


_worker_cpu, _worker_cpu_lock = [0.0], threading.Lock()   # CPU seconds the workers spent in chunks (profiler)


def in_worker_chunk():
    """True on a thread running a chunk or tile of this pool (a nested helper call runs serially there)."""
    return getattr(_local, "inside", False)


def worker_cpu_seconds():
    """CPU seconds spent so far by minise's worker threads (not the caller's, not BLAS's): ``minise
    bench train --profile`` adds the main thread's ``time.thread_time()`` to tell the cores an op kept busy."""
    return _worker_cpu[0]


def _run_chunk(body, chunk):
    _local.inside = True
    try:
        body(chunk)
    finally:
        _local.inside = False


def _run_chunk_in_worker(body, chunk):
    start = time.thread_time()
    try:
        _run_chunk(body, chunk)
    finally:
        with _worker_cpu_lock:
            _worker_cpu[0] += time.thread_time() - start


def _chunks(n, size):
    """How many chunks to cut range(n) into: one per thread, at least MIN_CHUNK elements each."""
    return 1 if in_worker_chunk() else max(1, min(get_num_threads(), n, size // MIN_CHUNK))


def parallel_for(n, body, work):
    """Call ``body(slice(start, stop))`` on consecutive slices covering ``range(n)``, one per
    thread, and return when all are done.

    n: the length of the axis to cut.  body: writes its slice's results (its slices never
    overlap, so no locks are needed).  work: the array the call works through (or its number
    of elements), for the small-work cutoff; a CuPy array is never cut (the GPU has its own
    parallelism). The caller's thread runs the first slice itself. With one thread, or
    under 2 * MIN_CHUNK elements, it is simply ``body(slice(0, n))``. An exception in any
    slice is raised here, after every slice has finished.
    """
    size = work if isinstance(work, (int, np.integer)) else work.size if isinstance(work, np.ndarray) else 0
    k = _chunks(n, size)
    if k == 1:
        body(slice(0, n))
        return
    bounds = [n * i // k for i in range(k + 1)]
    _on_pool(body, [slice(bounds[i], bounds[i + 1]) for i in range(k)], alone=slice(0, n))


def _on_pool(body, chunks, alone):
    """``body(chunk)`` for every chunk, on the pool's threads (the first on the calling one); just
    ``body(alone)`` on the calling thread while another thread of the program is using the pool."""
    pool = _workers()
    if not pool.busy.acquire(blocking=False):
        body(alone)
        return
    try:
        pool.run(body, chunks)
    finally:
        pool.busy.release()


def _split_axis(shape):
    """The axis to cut: 0 (the batch, or elementwise's outermost axis in memory), or 1 when 0 is too short."""
    return 1 if len(shape) > 1 and shape[0] < get_num_threads() else 0


def _chunk_of(a, axis, ndim, chunk):
    """The part of ``a`` that broadcasts onto ``chunk`` of ``axis`` of an ``ndim``-D result."""
    if not isinstance(a, np.ndarray):
        return a                                   # a Python number
    axis -= ndim - a.ndim                          # broadcasting aligns the trailing axes
    if axis < 0 or a.shape[axis] == 1:
        return a                                   # broadcast along that axis: every chunk needs all of it
    return a[(slice(None),) * axis + (chunk,)]


def copyto(dst, src):
    """``dst[...] = src``, cut along dst's axis 0 (or 1). src: an array broadcastable to dst."""
    if get_array_module(dst) is not np or dst.ndim == 0:
        dst[...] = src
        return dst
    axis = _split_axis(dst.shape)

    def body(chunk):
        dst[(slice(None),) * axis + (chunk,)] = _chunk_of(src, axis, dst.ndim, chunk)

    parallel_for(dst.shape[axis], body, dst.size)
    return dst


def _allocate_result(arrays, dtype):
    """The array an elementwise op on ``arrays`` writes: their broadcast shape, laid out like the
    largest operand of that shape that is no broadcast view (the first of equal size), as PyTorch's
    TensorIterator follows its inputs; else as NumPy's "K" order, which weighs every operand's
    strides and would lay ``x * s`` (s: (N, C, 1, 1)) out batch-major for a channel-major x: every
    op after the SE block would read two layouts (docs/benchmarks.md#one-layout)."""
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    for a in sorted(arrays, key=lambda a: -a.size):    # stable: the first of equal size
        if a.shape == shape and not backend.is_broadcast(a):
            return np.empty_like(a, dtype=dtype)
    it = np.nditer(arrays + [None], flags=["zerosize_ok"], order="K",
                   op_flags=[["readonly"]] * len(arrays) + [["writeonly", "allocate"]],
                   op_dtypes=[None] * len(arrays) + [dtype])
    return it.operands[-1]


def elementwise(f, *args, out=None, dtype=None):
    """``f(*args, out=out)`` for an elementwise ``f``, cut along the result's outermost axis in memory
    (or the next one, when that is shorter than the thread count).

    f: a ufunc (``xp.add``...) or any function of arrays that computes each output element from the
    same elements of its inputs and writes into ``out=``. args: arrays that broadcast together, or
    numbers. out: where to write (one of args: in place; another view of their memory: on one
    thread, NumPy buffering the overlap); default a new array of the broadcast shape and of
    ``dtype`` (default ``numpy.result_type(*args)``, what a ufunc returns), laid out like the
    largest input of that shape, on one thread or many. Returns out. f sees every array with out's
    axes in memory order (SE's ``x * s``: 2x faster, docs/benchmarks.md#memory-order).
    """
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    big = max(arrays, key=lambda a: a.size, default=None)
    if out is not None and any(a is not out and np.may_share_memory(a, out) for a in arrays):
        return f(*args, out=out)           # x + x[::-1] into x: chunks would read what others wrote
    cut = big is not None and big.size >= 2 * MIN_CHUNK and get_num_threads() > 1
    if out is None and big is not None and (big.ndim > 1 or cut or dtype is not None):   # one layout, any threads
        out = _allocate_result(arrays, np.result_type(*args) if dtype is None else dtype)
    if not isinstance(out, np.ndarray) or any(a.ndim > out.ndim for a in arrays):   # CuPy, or NumPy's error
        return f(*args) if out is None else f(*args, out=out)
    result, order = out, backend.memory_order(out)
    args = [a[(None,) * (out.ndim - a.ndim)].transpose(order) if isinstance(a, np.ndarray) else a for a in args]
    out = out.transpose(order)             # the same elements, outermost axis in memory first
    if not cut:
        f(*args, out=out)
        return result
    axis = _split_axis(out.shape)

    def body(chunk):
        f(*(_chunk_of(a, axis, out.ndim, chunk) for a in args), out=out[(slice(None),) * axis + (chunk,)])

    parallel_for(out.shape[axis], body, out.size)
    return result


def reduce(method, x, axis, keepdims=False):
    """``x.sum(axis, keepdims=keepdims)`` (method ``"sum"``) or ``x.mean(axis, keepdims=keepdims,
    dtype=x.dtype)`` (``"mean"``), cut along axis 0 of x.

    axis: an int or a tuple of ints, which must not contain 0 for the call to be cut
    (otherwise it runs on one thread). x: a float array (other dtypes run on one thread,
    where NumPy promotes an integer sum to int64).
    """
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = tuple(a % x.ndim for a in axes)
    dtype = {"dtype": x.dtype} if method == "mean" else {}

    def call(a, **out):
        return getattr(a, method)(axis=axes, keepdims=keepdims, **dtype, **out)

    if (get_array_module(x) is not np or 0 in axes or x.dtype.kind != "f" or x.size < 2 * MIN_CHUNK
            or get_num_threads() == 1):
        return call(x)
    # NumPy lays the result out in x's memory order (x channel-major: the result too).
    out = np.empty_like(x[tuple(slice(0, 1) if i in axes else slice(None) for i in range(x.ndim))])
    if not keepdims:
        out = out.squeeze(axes)

    def body(chunk):
        call(x[chunk], out=out[chunk])

    parallel_for(x.shape[0], body, x.size)
    return out


# --- tiles: several steps of an op on a cache-sized piece, a piece per thread ----------------
def tile_ranges(n, bytes_per_item, like=None, min_per_tile=1):
    """Cut ``range(n)`` (images of a batch, channels) into tiles of about ``TILE_BYTES`` of
    working set each, none of more than ceil(n / MIN_TILES) items (so n >= 2 always gives
    several tiles): a list of (start, stop) pairs covering range(n) in order.

    The last tiles shrink by halves down to a quarter tile (14, ..., 14, 8, 4, 4 for 128 images of
    14 a tile), as OpenMP's ``schedule(guided)``: the thread that finishes first then waits for a
    small tile, not a whole one (it halved the threads' idle time in se_resnet20's convolutions;
    smaller tiles made 1 thread's GEMMs slower). bytes_per_item: the working set of one item
    (conv2d: one image's im2col columns). like: an array of the op; a CuPy array gets one tile.
    min_per_tile: at least this many items a tile but the last (conv2d's backward: its dW partial
    sums never outgrow their columns). The tiles depend on the shape only: the same numbers on
    any number of threads.
    """
    if like is not None and get_array_module(like) is not np:
        return [(0, n)]
    per_tile = min(TILE_BYTES // max(1, bytes_per_item), -(-n // MIN_TILES))
    per_tile = max(1, min_per_tile, per_tile)
    tiles, start, smallest = [], 0, max(min_per_tile, -(-per_tile // 4))
    while start < n:            # whole tiles while two remain, then half of what is left
        left = n - start
        size = min(left, per_tile if left >= 2 * per_tile else max(smallest, -(-left // 2)))
        size = left if left <= per_tile and left - size < smallest else size   # no tail under smallest
        tiles.append((start, start + size))
        start += size
    return tiles


_blas_lock = threading.Lock()
_blas_single = {"callers": 0, "threads": None}   # for_each_tile calls running, BLAS's count before


def _blas_on_one_thread(enter):
    """BLAS on one thread from the first running for_each_tile to the last; False: can't be set."""
    with _blas_lock:
        if enter:
            if _blas_single["callers"] == 0:
                _blas_single["threads"] = backend.blas_threads()
                if not backend.set_blas_threads(1):
                    return False
            _blas_single["callers"] += 1
        else:
            _blas_single["callers"] -= 1
            if _blas_single["callers"] == 0:
                backend.set_blas_threads(_blas_single["threads"] or get_num_threads())
        return True


def for_each_tile(count, body):
    """Call ``body(t)`` for every tile ``t`` in ``range(count)``, the tiles shared out among
    the threads: each thread takes the next tile not yet taken until none is left.

    body: computes tile t and writes its own part of the results (tiles never overlap). A tile
    does several steps of an op (conv2d: im2col AND its GEMM), so while tiles run on several
    threads BLAS runs each GEMM on one: the tiles are the parallelism, and a GEMM's rounding
    never depends on the thread count. A single tile runs on the calling thread with BLAS's
    threads; so do all tiles where minise cannot set BLAS's thread count (not OpenBLAS). No
    small-work cutoff (it would change which GEMMs run on one BLAS thread). An exception in a
    tile is raised here, once the other threads have finished the remaining tiles.
    """
    threads = 1 if in_worker_chunk() else min(get_num_threads(), count)
    if threads <= 1 or not _blas_on_one_thread(True):   # one thread, one tile (or none: an empty batch)
        for t in range(count):
            body(t)
        return
    # next() on an itertools.count is atomic under the GIL: no tile is taken twice. (A Python
    # without the GIL would need a lock here.)
    taken = itertools.count()

    def take_tiles(_):
        t = next(taken)
        while t < count:
            body(t)
            t = next(taken)

    try:
        _on_pool(take_tiles, [None] * threads, alone=None)
    finally:
        _blas_on_one_thread(False)
