"""``minise bench``: how fast minise is, side by side with PyTorch on the same CPU.

    minise bench ops [--batch-size 128] [--threads N] [--repeat R]

times forward + backward of every op of a CIFAR SE-ResNet-20 at its real
shapes (the convolutions of each stage, batch norm, the pools, the SE squeeze)
and, when torch is installed, the same op in PyTorch with the same number of
threads, in the same run. Each time is the median of R runs after a warm-up.

The command line (``minise/cli/bench.py``) registers it; torch is imported
only when a benchmark runs.
"""

import time

import numpy as np

import minise.functional as F

from ..tensor import tensor
from .timing import blas_threads, time_ms, use_threads

__all__ = ["ops_rows", "run_ops"]


# --- the ops benchmark --------------------------------------------------------------
# SE-ResNet-20 on CIFAR-10: (in, out, image size, stride) of each distinct 3x3 conv.
CONV_SHAPES = [
    (3, 16, 32, 1, "stem"),
    (16, 16, 32, 1, "stage 1"),
    (16, 32, 32, 2, "stage 2 down"),
    (32, 32, 16, 1, "stage 2"),
    (32, 64, 16, 2, "stage 3 down"),
    (64, 64, 8, 1, "stage 3"),
]
STAGES = [(16, 32), (32, 16), (64, 8)]  # (channels, image size)


def _case(name, shape, inputs, minise_fn, torch_fn):
    """One row: ``inputs`` (name -> (array, requires_grad)), and the op in each library."""
    return {"name": name, "shape": shape, "inputs": inputs, "minise": minise_fn, "torch": torch_fn}


def ops_rows(batch_size):
    """The benchmark cases at the shapes of SE-ResNet-20 for one batch size."""
    rng = np.random.default_rng(0)
    N = batch_size

    def randn(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    rows = []
    for c_in, c_out, size, stride, where in CONV_SHAPES:
        x = (randn(N, c_in, size, size), c_in != 3)            # the stem's input is images: no gradient
        w = (randn(c_out, c_in, 3, 3) * np.float32(0.1), True)
        rows.append(_case(
            f"conv2d 3x3 s{stride}", f"{c_in}->{c_out} @ {size}x{size} ({where})", {"x": x, "w": w},
            lambda F_, x, w, s=stride: F_.conv2d(x, w, stride=s, padding=1),
            lambda tF, x, w, s=stride: tF.conv2d(x, w, stride=s, padding=1)))
    for c, size in STAGES:
        rows.append(_case(
            "batch_norm (train)", f"{c} @ {size}x{size}",
            {"x": (randn(N, c, size, size), True), "weight": (1 + 0.1 * randn(c), True), "bias": (randn(c), True),
             "running_mean": (np.zeros(c, np.float32), False), "running_var": (np.ones(c, np.float32), False)},
            lambda F_, x, weight, bias, running_mean, running_var: F_.batch_norm(
                x, running_mean, running_var, weight, bias, training=True),
            lambda tF, x, weight, bias, running_mean, running_var: tF.batch_norm(
                x, running_mean, running_var, weight, bias, training=True)))
    x16 = randn(N, 16, 32, 32)
    for name, args in [("max_pool2d 2x2", (2,)), ("max_pool2d 3x3 s2 p1", (3, 2, 1)), ("avg_pool2d 2x2", (2,)),
                       ("avg_pool2d 3x3 s2 p1", (3, 2, 1))]:
        fn = name.split()[0]
        rows.append(_case(name, "16 @ 32x32", {"x": (x16, True)},
                          lambda F_, x, fn=fn, args=args: getattr(F_, fn)(x, *args),
                          lambda tF, x, fn=fn, args=args: getattr(tF, fn)(x, *args)))
    for c, size in STAGES:
        rows.append(_case("global_avg_pool2d", f"{c} @ {size}x{size}", {"x": (randn(N, c, size, size), True)},
                          lambda F_, x: F_.global_avg_pool2d(x),
                          lambda tF, x: tF.adaptive_avg_pool2d(x, 1).flatten(1)))
    return rows


def _runner(row, make_tensor, functional, grad_of):
    """A closure running the row's op forward and backward once (gradients reset each time)."""
    tensors = {k: make_tensor(a, g) for k, (a, g) in row["inputs"].items()}
    leaves = [t for k, t in tensors.items() if row["inputs"][k][1]]
    out = row[functional[0]](functional[1], **tensors)
    gy = grad_of(out)

    def run():
        for t in leaves:
            t.grad = None
        row[functional[0]](functional[1], **tensors).backward(gy)

    return run


def _minise_runner(row):
    if row["name"].startswith("batch_norm") and not hasattr(F, "batch_norm"):
        return None
    rng = np.random.default_rng(1)

    def grad_of(out):
        # The output gradient in the memory layout of the output itself (conv2d's is channel-major),
        # as the next op's backward hands it over in a network; torch's gy is likewise in its own layout.
        gy = np.empty_like(out.data)
        gy[...] = rng.standard_normal(out.shape, dtype=np.float32)
        return tensor(gy)

    return _runner(row, lambda a, g: tensor(a, requires_grad=g), ("minise", F), grad_of)


def _torch_runner(row, torch):
    rng = np.random.default_rng(1)
    return _runner(row, lambda a, g: torch.tensor(a, requires_grad=g), ("torch", torch.nn.functional),
                   lambda out: torch.tensor(rng.standard_normal(tuple(out.shape), dtype=np.float32)))


def run_ops(args):
    try:
        import torch
    except ImportError:
        torch = None
    threads = use_threads(args.threads)             # minise's pool and NumPy's BLAS
    threads_numpy = blas_threads()
    if torch is not None:
        torch.set_num_threads(threads)

    rows = ops_rows(args.batch_size)
    # Every minise row first, then every torch row: each library's idle worker threads
    # keep spinning for a moment after a call and would slow the other one down.
    minise_ms = []
    for row in rows:
        run = _minise_runner(row)
        minise_ms.append(None if run is None else time_ms(run, args.repeat))
    torch_ms = [None] * len(rows)
    if torch is not None:
        time.sleep(0.5)
        torch_ms = [time_ms(_torch_runner(row, torch), args.repeat) for row in rows]

    print(f"minise bench ops: forward + backward, batch {args.batch_size}, median of {args.repeat} "
          f"after a warm-up, float32, CPU")
    print(f"minise threads: {threads}; "
          f"numpy {np.__version__} BLAS threads: {threads_numpy if threads_numpy is not None else 'unknown'}; "
          + (f"torch {torch.__version__} threads: {torch.get_num_threads()}" if torch is not None
             else "torch not installed: no comparison"))
    compare = torch is not None     # without torch, only the minise column: no columns of "-"
    header = f"{'op':<22} {'shape':<30} {'minise ms':>10}" + (f" {'torch ms':>10} {'ratio':>7}" if compare else "")
    print(header)
    print("-" * len(header))
    for row, m, t in zip(rows, minise_ms, torch_ms):
        if m is None:
            print(f"{row['name']:<22} {row['shape']:<30} {'skipped: F.batch_norm is not available yet':>30}")
            continue
        t_text = f"{t:10.2f}" if t is not None else f"{'-':>10}"
        ratio = f"{m / t:7.2f}" if t else f"{'-':>7}"
        print(f"{row['name']:<22} {row['shape']:<30} {m:10.2f}" + (f" {t_text} {ratio}" if compare else ""))
    if compare:
        print("ratio = minise ms / torch ms (lower is better; 1.00 = as fast as PyTorch)")
    return 0
