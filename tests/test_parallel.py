"""minise.parallel: the thread pool, its chunks and its tiles.

Oracles: NumPy's own call on the whole array (every helper must give the same bits,
in the same memory layout, whatever the thread count), hand counts for parallel_for
and the tiles, the plain-loop reference convolution, and a whole SE-ResNet-20 training
step run on 1 thread (bit for bit whatever ``set_num_threads`` says, BLAS's threads
included; within float32 rounding where BLAS splits a GEMM: a conv on a single image).
"""

import os
import threading

import numpy as np
import pytest

import minise as ms
import minise.functional as F
from minise import backend, models, optim, parallel
from minise.functional import reference

THREADS = (1, 2, 3, 4)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Split even the small arrays of a test (and restore the thread counts afterwards)."""
    monkeypatch.setattr(parallel, "MIN_CHUNK", 256)
    threads, blas = parallel.get_num_threads(), backend.blas_threads()
    yield
    parallel.set_num_threads(threads)
    if blas is not None:
        backend.set_blas_threads(blas)


def _channel_major(rng, shape):
    """An (N, C, H, W) array stored (C, N, H, W) in memory, as conv2d returns it."""
    n, c, h, w = shape
    return rng.standard_normal((c, n, h, w), dtype=np.float32).transpose(1, 0, 2, 3)


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.strides == b.strides, "the memory layout changed"
    np.testing.assert_array_equal(a, b)


# --- the thread count ---------------------------------------------------------------
def test_set_num_threads_sets_minise_and_blas_threads_like_torch():
    ms.set_num_threads(3)
    assert ms.get_num_threads() == 3
    if backend.blas_threads() is not None:    # OpenBLAS: NumPy's wheels
        assert backend.blas_threads() == 3
    ms.set_num_threads(1)
    assert ms.get_num_threads() == 1


@pytest.mark.parametrize("bad", [0, -2, 2.5, "4", True, None])
def test_set_num_threads_rejects_anything_but_a_positive_int(bad):
    with pytest.raises(ValueError, match="set_num_threads: expected a positive int"):
        ms.set_num_threads(bad)


def test_set_num_threads_beyond_what_the_system_can_start_raises_and_keeps_the_old_count(monkeypatch):
    parallel.set_num_threads(2)
    start = threading.Thread.start
    started = []

    def start_at_most_three(thread):           # the system's limit: 3 more threads of ours
        if thread.name.startswith("minise-"):
            if len(started) == 3:
                raise RuntimeError("can't start new thread")
            started.append(thread)
        return start(thread)

    monkeypatch.setattr(threading.Thread, "start", start_at_most_three)
    with pytest.raises(ValueError, match=r"set_num_threads: the system started only 4 of the 10 threads "
                                         r"asked for \(can't start new thread\); use fewer"):
        ms.set_num_threads(10)
    assert ms.get_num_threads() == 2
    for thread in started:                     # the threads that did start were ended
        thread.join(5)
        assert not thread.is_alive()
    monkeypatch.setattr(threading.Thread, "start", start)
    parallel.for_each_tile(4, lambda t: None)  # and the pool works again


# --- parallel_for ---------------------------------------------------------------------
@pytest.mark.parametrize("threads", THREADS)
def test_parallel_for_covers_every_index_once_in_one_slice_per_thread(threads):
    parallel.set_num_threads(threads)
    hits, slices = np.zeros(10, int), []

    def body(chunk):
        slices.append(chunk)
        hits[chunk] += 1

    parallel.parallel_for(10, body, 10 * parallel.MIN_CHUNK)
    np.testing.assert_array_equal(hits, 1)
    assert len(slices) == threads


def test_parallel_for_keeps_small_work_on_one_thread():
    parallel.set_num_threads(4)
    slices = []
    parallel.parallel_for(10, slices.append, parallel.MIN_CHUNK)   # under 2 chunks' worth
    assert slices == [slice(0, 10)]


def test_parallel_for_never_cuts_work_on_a_gpu_array():
    class GpuArray:               # what parallel_for sees of a cupy.ndarray: not a numpy.ndarray
        size = 10**9

    parallel.set_num_threads(4)
    slices = []
    parallel.parallel_for(10, slices.append, GpuArray())
    assert slices == [slice(0, 10)]


def test_parallel_for_raises_a_workers_exception_after_every_slice_ran():
    parallel.set_num_threads(2)
    done = []

    def body(chunk):
        if chunk.start > 0:
            raise KeyError("from the worker")
        done.append(chunk)

    with pytest.raises(KeyError, match="from the worker"):
        parallel.parallel_for(4, body, 4 * parallel.MIN_CHUNK)
    assert done == [slice(0, 2)]


def test_a_parallel_call_inside_a_chunk_runs_on_that_thread():
    parallel.set_num_threads(2)
    dst = np.zeros((4, 64, 64), np.float32)

    def body(chunk):   # a nested call must not wait for the (busy) pool: it runs serially
        parallel.copyto(dst[chunk], np.float32(1))

    parallel.parallel_for(4, body, dst)
    np.testing.assert_array_equal(dst, 1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_starts_a_pool_of_its_own():
    # The child of os.fork() has none of the parent's worker threads: it waited forever for them.
    parallel.set_num_threads(2)
    x = np.arange(8 * 256 * 256, dtype=np.float32).reshape(8, 256, 256)
    parallel.copyto(np.empty_like(x), x)                  # the parent's pool is running
    pid = os.fork()
    if pid == 0:                                          # the child: report by exit status only
        code = 1
        try:
            y = np.empty_like(x)
            parallel.copyto(y, x + 1)                     # 2 M elements: cut in two, on a new pool
            code = 0 if np.array_equal(y, x + 1) and parallel._pool is not None else 2
        finally:
            os._exit(code)
    for _ in range(600):                                  # up to 60 s
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        threading.Event().wait(0.1)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung in parallel.copyto")
    assert os.waitstatus_to_exitcode(status) == 0


def _exit_code_of_a_forked_child(child, seconds=30):
    """Fork; the child runs ``child()`` (its result: the exit status, an exception: 1); the child's exit
    status, or pytest.fail when it has not ended within ``seconds`` (then it is killed)."""
    pid = os.fork()
    if pid == 0:                                          # the child: report by exit status only
        code = 1
        try:
            code = child()
        finally:
            os._exit(code)
    for _ in range(seconds * 10):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        threading.Event().wait(0.1)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_child_forked_while_a_worker_counts_its_cpu_time_does_not_hang():
    # _worker_cpu_lock, which a worker takes after each chunk, stayed held in the child when a worker (of
    # another program thread's call) held it at the fork: the child's first pooled call waited forever
    parallel.set_num_threads(2)
    x = np.arange(8 * 64 * 64, dtype=np.float32).reshape(8, 64, 64)
    taken, forked = threading.Event(), threading.Event()

    def worker_counting():
        with parallel._worker_cpu_lock:
            taken.set()
            forked.wait(10)

    holder = threading.Thread(target=worker_counting)
    holder.start()
    taken.wait(10)
    try:
        def child():
            y = np.empty_like(x)
            parallel.copyto(y, x + 1)
            return 0 if np.array_equal(y, x + 1) else 2

        code = _exit_code_of_a_forked_child(child)
    finally:
        forked.set()
        holder.join()
    assert code == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
@pytest.mark.skipif(backend.blas_threads() is None, reason="needs a BLAS whose thread count minise can set")
def test_a_child_forked_during_another_threads_tiles_gets_blas_threads_back():
    # for_each_tile puts BLAS on one thread until its last caller leaves; a caller on another thread does
    # not exist in the child, which kept BLAS on one thread for good (its next for_each_tile restored 1)
    parallel.set_num_threads(2)
    inside, forked = threading.Event(), threading.Event()

    def tile(t):
        inside.set()
        forked.wait(10)

    caller = threading.Thread(target=parallel.for_each_tile, args=(2, tile))
    caller.start()
    inside.wait(10)
    try:
        assert backend.blas_threads() == 1                # the tiles' GEMMs run on one BLAS thread

        def child():
            parallel.for_each_tile(4, lambda t: None)
            return 0 if backend.blas_threads() == 2 else 2

        code = _exit_code_of_a_forked_child(child)
    finally:
        forked.set()
        caller.join()
    assert code == 0
    assert backend.blas_threads() == 2                    # the parent's caller left: restored there too


def test_two_program_threads_can_use_the_pool_at_once():
    import threading

    parallel.set_num_threads(2)
    x = np.arange(64 * 64 * 8, dtype=np.float32).reshape(8, 64, 64)
    results, errors = [None] * 4, []

    def work(i):
        try:
            for _ in range(50):
                results[i] = parallel.elementwise(np.multiply, x, np.float32(i))
        except Exception as exc:   # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r, x * np.float32(i))


def test_changing_the_thread_count_stops_the_old_workers():
    import threading

    parallel.set_num_threads(3)
    parallel.copyto(np.empty((4, 64, 64), np.float32), np.float32(0))     # starts 2 workers
    parallel.set_num_threads(2)
    parallel.copyto(np.empty((4, 64, 64), np.float32), np.float32(0))     # 1 new worker
    for _ in range(100):
        names = [t.name for t in threading.enumerate() if t.name.startswith("minise-")]
        if len(names) == 1:
            break
        threading.Event().wait(0.01)
    assert len(names) == 1, names


# --- the helpers against NumPy ----------------------------------------------------------
@pytest.mark.parametrize("threads", THREADS)
def test_copyto_equals_numpy_assignment(threads):
    parallel.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = _channel_major(rng, (6, 5, 8, 8))
    dst = np.zeros((5, 6, 10, 10), np.float32).transpose(1, 0, 2, 3)[:, :, 1:9, 1:9]   # conv's padding
    parallel.copyto(dst, x)
    np.testing.assert_array_equal(dst, x)
    small_n = np.zeros((2, 8, 16, 16), np.float32)        # axis 0 too short: cut along axis 1
    parallel.copyto(small_n, x[:1, :1, :1, :1].reshape(1, 1, 1, 1) * np.ones((1, 8, 1, 1), np.float32))
    np.testing.assert_array_equal(small_n, np.broadcast_to(x[0, 0, 0, 0], small_n.shape))


@pytest.mark.parametrize("threads", THREADS)
def test_elementwise_gives_numpys_bits_laid_out_like_its_largest_input(threads):
    rng = np.random.default_rng(1)
    x = _channel_major(rng, (8, 6, 8, 8))
    s = rng.standard_normal((8, 6, 1, 1), dtype=np.float32)
    c = rng.standard_normal((8, 6, 8, 8), dtype=np.float32)
    x3, s3 = x.reshape(8, 6, -1), s.reshape(8, 6, 1)
    # (f, args, the input whose layout the result takes: the largest of the result's shape, the first of equals)
    cases = [(np.maximum, (x, 0), x), (np.multiply, (x, s), x), (np.add, (x, c), x), (np.subtract, (c, x), c),
             (np.multiply, (x3, s3), x3), (np.add, (x, np.float64(0.5)), x), (np.multiply, (s, x), x)]
    parallel.set_num_threads(threads)
    for f, args, like in cases:
        got = parallel.elementwise(f, *args)
        np.testing.assert_array_equal(got, f(*args))
        steps = [stride // got.itemsize for stride in got.strides]
        assert got.dtype == f(*args).dtype and steps == [stride // like.itemsize for stride in like.strides], f
    # NumPy itself lays x * s out batch-major (its "K" order weighs s's strides too): the SE block's
    # reweighting would turn conv2d's channel-major activations around, and every op after it read two layouts.
    assert (x * s).strides != x.strides
    # A broadcast view (stride 0, what sum's backward hands on) of the result's shape is no template.
    for ones in (np.broadcast_to(np.float32(1), x.shape), np.broadcast_to(np.ones((8, 1, 8, 8), np.float32), x.shape)):
        got = parallel.elementwise(np.multiply, ones, x)
        assert got.strides == x.strides
        np.testing.assert_array_equal(got, x)
    # 1-D, cut across threads (it crashed above 2 * MIN_CHUNK with a new result).
    v, w = rng.standard_normal(5000, dtype=np.float32), rng.standard_normal(5000, dtype=np.float32)
    _same(parallel.elementwise(np.add, v, w), v + w)
    _same(parallel.elementwise(np.maximum, v, 0), np.maximum(v, 0))
    # No input of the result's shape: NumPy's layout.
    a, b = rng.standard_normal((8, 1), dtype=np.float32), rng.standard_normal((1, 600), dtype=np.float32).T.copy().T
    _same(parallel.elementwise(np.add, a, b), np.add(a, b))
    inplace, expected = x.copy(order="K"), x * s
    parallel.elementwise(np.multiply, inplace, s, out=inplace)
    np.testing.assert_array_equal(inplace, expected)
    # out overlapping an input through another view: one thread, NumPy buffering the overlap
    # (cut into chunks, one chunk would read what another had already written).
    for other in (lambda a: a[::-1], lambda a: a[:1], lambda a: a[0]):
        a = np.arange(8 * 600, dtype=np.float64).reshape(8, 600)
        expected = a + other(a)
        parallel.elementwise(np.add, a, other(a), out=a)
        np.testing.assert_array_equal(a, expected)


@pytest.mark.parametrize("threads", THREADS)
def test_elementwise_hands_f_every_array_with_the_results_axes_in_memory_order(threads):
    # NumPy walks a channel-major x * s batch by batch, jumping through memory, unless it is shown
    # the arrays as (C, N, H, W): elementwise hands f views in the result's memory order.
    rng = np.random.default_rng(4)
    x = _channel_major(rng, (8, 6, 8, 8))
    s = rng.standard_normal((8, 6, 1, 1), dtype=np.float32)
    b = rng.standard_normal((6, 1, 1), dtype=np.float32)          # fewer axes: broadcast from the right
    seen = []

    def recording(f):
        def g(*arrays, out):
            seen.append([a.strides for a in arrays if isinstance(a, np.ndarray) and a.ndim == 4] + [out.strides])
            return f(*arrays, out=out)
        return g

    parallel.set_num_threads(threads)
    for f, args in ((np.multiply, (x, s)), (np.add, (x, b)), (np.maximum, (x, 0))):
        seen.clear()
        got = parallel.elementwise(recording(f), *args)
        np.testing.assert_array_equal(got, f(*args))
        assert got.strides == x.strides and got.shape == x.shape        # handed back as (N, C, H, W)
        assert len(seen) == threads                                     # one call a chunk, cut by channel
        for strides in seen:
            out_strides = strides[-1]
            assert list(out_strides) == sorted(out_strides, reverse=True), "out is not in memory order"
            assert strides[0] == out_strides                           # x is seen the same way


@pytest.mark.parametrize("threads", THREADS)
def test_elementwise_keeps_the_dtype_asked_for_and_numpys_errors_on_every_thread_count(threads):
    parallel.set_num_threads(threads)
    v = np.arange(3000, dtype=np.float32)                   # 1-D, cut (MIN_CHUNK is 256 here) or not
    for w in (v, v[:100]):
        got = parallel.elementwise(np.add, w, w, dtype=np.float64)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, w.astype(np.float64) * 2)
    with pytest.raises(ValueError, match="non-broadcastable output operand"):   # NumPy's own words
        parallel.elementwise(np.add, np.ones((2, 3)), 1, out=np.empty(3))


def test_elementwise_writes_a_given_out_of_any_layout_on_the_device(device):
    xp = np if device == "cpu" else backend._import_cupy()
    x = xp.asarray(np.arange(24.0).reshape(2, 3, 4))
    out = xp.empty((3, 2, 4)).transpose(1, 0, 2)             # channel-major, as conv2d's outputs
    assert parallel.elementwise(xp.add, x, 1.0, out=out) is out
    np.testing.assert_array_equal(backend.to_numpy(out), np.arange(24.0).reshape(2, 3, 4) + 1)


@pytest.mark.parametrize("threads", THREADS)
def test_reduce_gives_numpys_sum_and_mean_bits_and_layout(threads):
    x = _channel_major(np.random.default_rng(2), (8, 6, 8, 8))
    parallel.set_num_threads(threads)
    _same(parallel.reduce("sum", x, (2, 3)), x.sum(axis=(2, 3)))
    _same(parallel.reduce("sum", x, (2, 3), keepdims=True), x.sum(axis=(2, 3), keepdims=True))
    _same(parallel.reduce("mean", x, (2, 3)), x.mean(axis=(2, 3), dtype=x.dtype))
    _same(parallel.reduce("sum", x, (0, 2)), x.sum(axis=(0, 2)))     # axis 0 reduced: one thread
    ints = np.arange(8 * 6 * 64, dtype=np.int32).reshape(8, 6, 64)
    _same(parallel.reduce("sum", ints, 2), ints.sum(axis=2))           # NumPy's int64 sum


# --- the ops and a training step -----------------------------------------------------------
def _op_results(threads):
    """Forward outputs and input gradients of every parallelised op, on ``threads`` minise threads."""
    parallel.set_num_threads(threads)
    backend.set_blas_threads(1)        # BLAS's own threads change a GEMM's rounding: pinned here
    rng = np.random.default_rng(4)
    x = ms.tensor(_channel_major(rng, (4, 6, 10, 10)), requires_grad=True)
    w = ms.tensor(rng.standard_normal((6, 6, 3, 3), dtype=np.float32), requires_grad=True)
    g, b = (ms.tensor(rng.standard_normal(6, dtype=np.float32), requires_grad=True) for _ in range(2))
    rm, rv = ms.tensor(np.zeros(6, np.float32)), ms.tensor(np.ones(6, np.float32))
    y1 = F.conv2d(x, w, padding=1)                                 # im2col, padding, dgrad by convolution
    y2 = F.conv2d(x, w, stride=2, padding=1)                       # col2im
    y3 = F.relu(F.batch_norm(y1, rm, rv, g, b, training=True))     # batch norm, relu
    y4 = y3 * F.sigmoid(F.global_avg_pool2d(y3)).reshape(4, 6, 1, 1) + x   # SE reweight, residual add
    y5 = F.batch_norm(y4, rm, rv, g, b, training=False)
    loss = (y5 * y5).sum() + (y2 * y2).sum()
    loss.backward()
    return [t.numpy() for t in (y1, y2, y3, y4, y5, x.grad, w.grad, g.grad, b.grad, rm, rv)]


def test_every_parallel_op_gives_the_same_bits_on_1_2_3_and_4_threads():
    reference = _op_results(1)
    for threads in THREADS[1:]:
        for expected, got in zip(reference, _op_results(threads)):
            np.testing.assert_array_equal(got, expected)


def _train(threads, pin_blas):
    parallel.set_num_threads(threads)
    if pin_blas:
        backend.set_blas_threads(1)
    ms.manual_seed(0)
    model = models.se_resnet20()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    x = ms.tensor(rng.standard_normal((8, 3, 32, 32), dtype=np.float32))
    y = ms.tensor(rng.integers(0, 10, 8))
    for _ in range(2):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    with ms.no_grad():
        logits = model(x).numpy()
    return [loss.numpy(), logits] + [v.numpy() for v in model.state_dict().values()]


def test_se_resnet20_training_is_bit_identical_whatever_minises_thread_count():
    reference = _train(1, pin_blas=True)
    for threads in (2, 4):
        for expected, got in zip(reference, _train(threads, pin_blas=True)):
            np.testing.assert_array_equal(got, expected)


def _gradients(threads):
    parallel.set_num_threads(threads)          # minise's pool and BLAS's threads
    ms.manual_seed(0)
    model = models.se_resnet20()
    rng = np.random.default_rng(0)
    x = ms.tensor(rng.standard_normal((1, 3, 32, 32), dtype=np.float32))
    loss = F.cross_entropy(model(x), ms.tensor(rng.integers(0, 10, 1)))
    loss.backward()
    return loss.item(), [p.grad.numpy() for p in model.parameters()]


def test_se_resnet20_gradients_of_a_single_image_agree_within_float32_rounding():
    """One image is one tile: its GEMMs run on BLAS's threads, and OpenBLAS splits a GEMM
    differently for each thread count, so its sums are added in another order
    (docs/benchmarks.md#several-cores): not bit for bit, but within float32 rounding."""
    loss_1, grads_1 = _gradients(1)
    loss_2, grads_2 = _gradients(2)
    assert loss_2 == pytest.approx(loss_1, rel=1e-6)
    for g1, g2 in zip(grads_1, grads_2):
        # + 1e-8: the SE block's excitation weights of one image get gradients of ~1e-9, rounding noise
        np.testing.assert_allclose(g2, g1, rtol=0, atol=1e-4 * np.abs(g1).max() + 1e-8)


# --- tiles -------------------------------------------------------------------------------
def _tiles_of(sizes):
    """(start, stop) pairs of consecutive tiles of the given sizes, from 0."""
    bounds = np.cumsum([0, *sizes]).tolist()
    return list(zip(bounds[:-1], bounds[1:]))


@pytest.mark.parametrize("n, item_bytes, expected", [
    (128, 590_000, _tiles_of([3] * 41 + [3, 1, 1])),          # 3 images fill 2 MiB; 5 left: 3, 1, 1
    (128, 147_456, _tiles_of([14] * 8 + [8, 4, 4])),          # 16 left: halves, down to a quarter tile
    (128, 1000, _tiles_of([16] * 7 + [8, 4, 4])),             # tiny images: still 16 a tile at most
    (100, 147_456, _tiles_of([13] * 6 + [11, 6, 5])),         # 22 left (< 2 * 13): 11, 6, and 5 (4 + 1 < 4)
    (5, 10, _tiles_of([1] * 5)),
    (1, 10**9, [(0, 1)]),                                     # one huge image: one tile
    (0, 100, []),
])
def test_tile_ranges_cut_by_bytes_never_into_fewer_than_min_tiles_and_shrink_at_the_end(n, item_bytes, expected):
    assert parallel.TILE_BYTES == 2 << 20 and parallel.MIN_TILES == 8
    tiles = parallel.tile_ranges(n, item_bytes)
    assert tiles == expected
    for threads in THREADS:      # the shape decides, never the thread count
        parallel.set_num_threads(threads)
        assert parallel.tile_ranges(n, item_bytes) == tiles


@pytest.mark.parametrize("threads", THREADS)
def test_for_each_tile_runs_every_tile_once_on_every_thread_with_blas_on_one(threads):
    if backend.blas_threads() is None:
        pytest.skip("this NumPy's BLAS does not say its thread count")
    parallel.set_num_threads(threads)
    count = 10
    barrier = threading.Barrier(threads, timeout=10)   # the first tiles wait for each other
    done, blas, who = [], [], set()

    def body(t):
        if t < threads:
            barrier.wait()       # raises BrokenBarrierError if some thread never took a tile
        done.append(t)
        blas.append(backend.blas_threads())
        who.add(threading.get_ident())

    parallel.for_each_tile(count, body)
    assert sorted(done) == list(range(count))
    assert len(who) == threads
    assert set(blas) == {1}                           # each tile's GEMM: one BLAS thread
    assert backend.blas_threads() == threads          # and BLAS's own count is back


def test_tile_ranges_keep_min_per_tile_items_whatever_the_bytes():
    # se_resnet50's 512-channel 3x3 conv at 7x7: 225 KiB of columns an image would give 2-image
    # tiles, each with a 9 MiB dW partial; 11 images a tile keep the partials under the columns.
    tiles = parallel.tile_ranges(128, 512 * 9 * 49 * 4, min_per_tile=-(-512 // 49))
    assert tiles == _tiles_of([11] * 10 + [11, 7])     # the shrinking tail stops at 11 too
    # 24 images, 3 a tile, at least 2: the tail never leaves a tile of 1 (3 -> 2 + 1 would).
    assert parallel.tile_ranges(24, 128 * 9 * 64 * 4, min_per_tile=2) == _tiles_of([3] * 8)
    for n in range(0, 300):     # every n: the tiles cover range(n) in order, within [min, cap]
        for per_item, least in [(147_456, 1), (590_000, 1), (128 * 9 * 64 * 4, 2), (1000, 5)]:
            sizes = [b - a for a, b in parallel.tile_ranges(n, per_item, min_per_tile=least)]
            assert sum(sizes) == n and all(0 < size for size in sizes)
            assert all(size >= min(least, n) for size in sizes[:-1] or sizes)


def test_two_program_threads_running_tiles_at_once_leave_blas_as_they_found_it():
    if backend.blas_threads() is None:
        pytest.skip("this NumPy's BLAS does not say its thread count")
    parallel.set_num_threads(2)
    first_inside, second_done = threading.Event(), threading.Event()

    def slow_tiles():
        def body(t):
            first_inside.set()
            second_done.wait(10)      # the other program thread runs its tiles meanwhile
        parallel.for_each_tile(2, body)

    other = threading.Thread(target=slow_tiles)
    other.start()
    assert first_inside.wait(10)
    seen = []
    parallel.for_each_tile(3, lambda t: seen.append(backend.blas_threads()))
    second_done.set()
    other.join(10)
    assert seen == [1, 1, 1]                     # the pool was busy: this caller ran its tiles itself
    assert backend.blas_threads() == 2           # and BLAS is back to 2 once both are done


def test_for_each_tile_runs_on_the_calling_thread_where_blas_cannot_be_set(monkeypatch):
    parallel.set_num_threads(2)
    monkeypatch.setattr(backend, "set_blas_threads", lambda n: False)   # e.g. MKL: minise can't set it
    who = []
    parallel.for_each_tile(4, lambda t: who.append((t, threading.get_ident())))
    assert who == [(t, threading.get_ident()) for t in range(4)]


def test_tiled_conv2d_adds_float16_bias_and_weight_gradients_in_float32(monkeypatch):
    monkeypatch.setattr(parallel, "TILE_BYTES", 1)            # one image a tile: 8 partial sums
    rng = np.random.default_rng(10)
    x64, w64 = rng.standard_normal((8, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    gy64 = rng.standard_normal((8, 4, 6, 6))
    x = ms.tensor(x64.astype(np.float16), requires_grad=True)
    w = ms.tensor(w64.astype(np.float16), requires_grad=True)
    b = ms.tensor(np.zeros(4, np.float16), requires_grad=True)
    F.conv2d(x, w, b, padding=1).backward(ms.tensor(gy64.astype(np.float16)))
    assert b.grad.dtype == ms.float16 and w.grad.dtype == ms.float16
    db = gy64.astype(np.float16).astype(np.float64).sum(axis=(0, 2, 3))
    np.testing.assert_allclose(b.grad.numpy(), db, rtol=2**-11, atol=2**-14)   # one float16 rounding: half an ulp
    _, dw, _ = reference.conv2d_reference_backward(x64.astype(np.float16).astype(np.float64),
                                                   w64.astype(np.float16).astype(np.float64),
                                                   gy64.astype(np.float16).astype(np.float64), 1, 1)
    np.testing.assert_allclose(w.grad.numpy(), dw, rtol=2e-3, atol=2e-2)


def test_for_each_tile_raises_a_tiles_error_after_the_others_finish():
    parallel.set_num_threads(2)
    done = []

    def body(t):
        if t == 3:
            raise ValueError("tile 3 failed")
        done.append(t)

    with pytest.raises(ValueError, match="tile 3 failed"):
        parallel.for_each_tile(6, body)
    assert sorted(done) == [0, 1, 2, 4, 5]
    parallel.for_each_tile(2, lambda t: done.append(10 + t))    # the pool still works
    assert sorted(done)[-2:] == [10, 11]


@pytest.mark.parametrize("stride, padding, bias", [(1, 1, True), (2, 1, False), (1, 0, True), (2, 0, False)])
def test_tiled_conv2d_gives_the_same_bits_on_every_thread_count_and_matches_the_loops(monkeypatch, stride,
                                                                                     padding, bias):
    monkeypatch.setattr(parallel, "TILE_BYTES", 5 * 9 * 49 * 4 * 2)    # two images a tile: 4 tiles of 7 images
    rng = np.random.default_rng(7)
    x64 = rng.standard_normal((7, 5, 7, 7))
    w64, b64 = rng.standard_normal((6, 5, 3, 3)), rng.standard_normal(6)
    results = []
    for threads in THREADS:
        parallel.set_num_threads(threads)
        x = ms.tensor(x64.astype(np.float32), requires_grad=True)
        w = ms.tensor(w64.astype(np.float32), requires_grad=True)
        b = ms.tensor(b64.astype(np.float32), requires_grad=True) if bias else None
        y = F.conv2d(x, w, b, stride=stride, padding=padding)
        (y * y).sum().backward()
        results.append([y.numpy(), x.grad.numpy(), w.grad.numpy()] + ([b.grad.numpy()] if bias else []))
    for got in results[1:]:
        for expected, value in zip(results[0], got):
            np.testing.assert_array_equal(value, expected)
    y_ref = reference.conv2d_reference(x64, w64, b64 if bias else None, stride, padding)
    dx_ref, dw_ref, db_ref = reference.conv2d_reference_backward(x64, w64, 2 * y_ref, stride, padding)
    np.testing.assert_allclose(results[0][0], y_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(results[0][1], dx_ref, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(results[0][2], dw_ref, rtol=1e-4, atol=1e-3)


def test_tiled_conv2d_in_float64_equals_the_plain_loops_whatever_the_tiles(monkeypatch):
    rng = np.random.default_rng(8)
    x64, w64 = rng.standard_normal((9, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    gy = rng.standard_normal((9, 4, 6, 6))
    dx_ref, dw_ref, _ = reference.conv2d_reference_backward(x64, w64, gy, 1, 1)
    for tile_bytes in (1, 3 * 9 * 36 * 8 * 4, 1 << 30):    # 1 image a tile, 4 images, 2 (MIN_TILES)
        monkeypatch.setattr(parallel, "TILE_BYTES", tile_bytes)
        parallel.set_num_threads(2)
        x, w = ms.tensor(x64, requires_grad=True), ms.tensor(w64, requires_grad=True)
        y = F.conv2d(x, w, padding=1)
        y.backward(ms.tensor(gy))
        np.testing.assert_allclose(y.numpy(), reference.conv2d_reference(x64, w64, None, 1, 1), rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(x.grad.numpy(), dx_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(w.grad.numpy(), dw_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_cut_by_channels_gives_the_same_bits_on_every_thread_count(training):
    """Every pass of batch norm over a thread's channels runs on that thread (small_chunks: 256
    elements a chunk, so 10 channels of 150 values are cut among up to 4 threads)."""
    rng = np.random.default_rng(9)
    x64 = _channel_major(rng, (6, 10, 5, 5))
    results = []
    for threads in THREADS:
        parallel.set_num_threads(threads)
        x = ms.tensor(x64, requires_grad=True)
        g = ms.tensor(np.linspace(0.5, 2, 10, dtype=np.float32), requires_grad=True)
        b = ms.tensor(np.linspace(-1, 1, 10, dtype=np.float32), requires_grad=True)
        rm, rv = ms.tensor(np.full(10, 0.1, np.float32)), ms.tensor(np.full(10, 2.0, np.float32))
        y = F.batch_norm(x, rm, rv, g, b, training=training)
        (y * y).sum().backward()
        results.append([t.numpy() for t in (y, x.grad, g.grad, b.grad, rm, rv)])
    for got in results[1:]:
        for expected, value in zip(results[0], got):
            np.testing.assert_array_equal(value, expected)


def test_se_resnet20_training_is_bit_identical_whatever_set_num_threads_says():
    """Tiles run each conv GEMM on one BLAS thread: even BLAS's thread count changes no bit."""
    reference_run = _train(1, pin_blas=False)
    for threads in (2, 3):
        for expected, got in zip(reference_run, _train(threads, pin_blas=False)):
            np.testing.assert_array_equal(got, expected)


# --- the processor, as `minise info` and the benchmarks print it ------------------------------
@pytest.mark.parametrize("flags, isa", [("fpu sse2 avx avx2 fma avx512f avx512bw", "AVX-512"),
                                        ("fpu sse2 avx avx2 fma", "AVX2"), ("fpu sse2", "SSE"), ("", "unknown")])
def test_cpu_isa_is_the_widest_vector_extension_in_proc_cpuinfo(monkeypatch, flags, isa):
    text = f"processor\t: 0\nmodel name\t: AMD EPYC 9454 48-Core Processor\nflags\t\t: {flags}\n"
    monkeypatch.setattr(backend, "_cpuinfo", lambda: text)
    assert backend.cpu_isa() == isa
    assert backend.cpu_name() == "AMD EPYC 9454 48-Core Processor"


def test_minise_info_prints_the_processor_its_isa_and_the_thread_count(capsys, monkeypatch):
    from minise import cli

    monkeypatch.setattr(backend, "_cpuinfo", lambda: "model name\t: Test CPU 3000\nflags\t\t: sse2 avx avx2\n")
    parallel.set_num_threads(2)
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "Test CPU 3000 (AVX2)" in out
    assert "threads: 2 (ms.set_num_threads)" in out


def test_minise_train_rejects_a_thread_count_below_one(capsys):
    from minise import cli

    assert cli.main(["train", "--threads", "0", "--subset", "8", "--epochs", "1"]) == 2
    assert "--threads must be a positive integer, got 0" in capsys.readouterr().err


def test_set_num_threads_refuses_a_count_too_big_to_count_out_and_keeps_the_old_one():
    before = parallel.get_num_threads()
    with pytest.raises(ValueError, match=r"set_num_threads: 100000000000000000000 threads cannot even be counted"):
        parallel.set_num_threads(10**20)          # was an OverflowError traceback from the pool's lists
    assert parallel.get_num_threads() == before
