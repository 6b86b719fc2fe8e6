"""``minise bench train``: the time of one training step of a CIFAR (SE-)ResNet, beside PyTorch.

    minise bench train [--model se_resnet20] [--batch-size 128] [--device cpu] [--threads N]
                       [--steps S] [--warmup W] [--compare torch] [--profile] [--malloc keep|default]

A training step is what ``minise train`` does for each batch: zero the
gradients, forward, cross-entropy loss, backward, SGD step (momentum 0.9,
weight decay 5e-4). An eval forward is the model in eval mode under
``no_grad``. Each time is the median of S steps after W warm-up steps, all on
one batch of the embedded dataset. The data pipeline is timed on its own
(the training DataLoader: random crop, flip and normalisation, per batch).

``--compare torch`` builds the same network in PyTorch (``minise.models.torch_twins``),
gives it the same thread count and times it in the same process, ALTERNATING
one minise step and one PyTorch step, so both see the same machine load.

``--profile`` re-runs a few steps with timing wrapped around every op's forward
and backward and prints each kind of work as a share of the step, with the
cores it kept busy (CPU time / wall time, see ``minise.bench.profile``): where
the step is serial. conv2d's tiles run im2col and GEMMs on every thread at
once; a last line splits their CPU time into im2col, col2im and the rest. The
wrappers are installed only for those steps: timing costs nothing when the
flag is off.

``--threads N`` calls ``minise.set_num_threads(N)`` (minise's pool and NumPy's
BLAS) and gives PyTorch the same count; the processor's name and vector ISA are
printed with the results, since the ratio depends on them.

Memory, measured on one minise step before any PyTorch step runs: the peak
resident set size of the whole process during the step (VmHWM after a reset
through ``/proc/self/clear_refs``; it includes Python, NumPy, the model, the
torch libraries when imported, and with ``--malloc keep`` freed memory the
allocator holds for reuse), and the peak memory the step itself allocated on
top of what already existed (``tracemalloc``, which NumPy reports its array
buffers to): the model's activations, saved tensors and temporaries.

``--malloc keep`` (the default) tells glibc to keep freed memory in the heap
instead of returning large blocks to the system, so big temporaries (im2col's
column matrices) are not page-faulted anew every step. It is applied to the
whole process, so PyTorch gets it too; ``--malloc default`` measures without it.
"""

import os
import statistics
import time

import numpy as np

import minise.functional as F

from .. import backend, data, models, optim
from ..autograd import no_grad
from ..backend import keep_freed_memory
from ..tensor import tensor
from .profile import OpProfiler, profile_steps
from .timing import blas_threads, use_threads

__all__ = ["MODELS", "OpProfiler", "data_seconds_per_batch", "embedded_loader", "keep_freed_memory",
           "peak_memory", "run_bench_train", "train_step", "twin_of"]

# minise model name -> keyword arguments of minise.models.torch_twins.torch_resnet
MODELS = {
    "resnet20": dict(n=3), "resnet32": dict(n=5), "resnet44": dict(n=7), "resnet56": dict(n=9),
    "se_resnet20": dict(n=3, reduction=16), "se_resnet32": dict(n=5, reduction=16),
    "se_resnet44": dict(n=7, reduction=16), "se_resnet56": dict(n=9, reduction=16),
}
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4


def twin_of(name):
    """The PyTorch twin of the minise model ``name`` (imports torch)."""
    from ..models.torch_twins import torch_resnet

    return torch_resnet(**MODELS[name])


# --- one step in each library -------------------------------------------------------
def train_step(model, optimizer, x, y):
    """One minise training step: zero_grad, forward, loss, backward, SGD step."""
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


def _eval_forward(model, x):
    with no_grad():
        return model(x)


def _torch_steps(torch, model, x, y):
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

    def train():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    def evaluate():
        with torch.no_grad():
            model(x)

    return train, evaluate


# --- timing ------------------------------------------------------------------------
def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _alternate(runs, steps, warmup, pause):
    """Median seconds of each of ``runs`` (name -> fn), run in turn, one call each per round."""
    times = {name: [] for name in runs}
    for i in range(warmup + steps):
        for name, fn in runs.items():
            elapsed = _timed(fn)
            if i >= warmup:
                times[name].append(elapsed)
            if pause and len(runs) > 1:
                time.sleep(pause)   # let the other library's spinning worker threads go idle
    return {name: statistics.median(t) for name, t in times.items()}


# --- memory ------------------------------------------------------------------------
def _status_kib(field):
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_memory(fn):
    """(peak resident MiB of the whole process while ``fn()`` runs, peak MiB that ``fn`` allocated through
    Python and NumPy on top of what was already allocated, or None when unknown).

    The first: Linux resets the peak with ``/proc/self/clear_refs`` and reads VmHWM; elsewhere (or when
    the reset is refused) it is the peak since the process started (``ru_maxrss``). The second comes from
    ``tracemalloc``, which NumPy reports its array buffers to (PyTorch's tensors are not reported).
    """
    import tracemalloc

    reset = True
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        reset = False
    tracemalloc.start()
    try:
        fn()
        traced = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    peak = _status_kib("VmHWM") if reset else None
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024, traced


# --- the data pipeline ----------------------------------------------------------------
def embedded_loader(batch_size, batches, device="cpu"):
    """The training DataLoader (random crop + flip + normalise) over enough embedded images for
    ``batches`` batches (and a spare)."""
    train_set = data.SyntheticShapes(train=True, n_train=max(batch_size * (batches + 1), 64))
    return data.DataLoader(train_set, batch_size, shuffle=True, drop_last=True, seed=0, device=device,
                           transform=data.Compose([data.RandomCrop(32, padding=4), data.RandomHorizontalFlip(),
                                                   data.Normalize(*data.channel_stats("embedded"))]))


def data_seconds_per_batch(loader, batches):
    """Median seconds per batch of ``loader`` over ``batches`` batches, after one warm-up batch."""
    batches_iter = iter(loader)
    next(batches_iter)
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        next(batches_iter)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- the command -------------------------------------------------------------------
def _load():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "unknown"


def _row(name, minise_s, torch_s, compare=True):
    """A row of the table: ms for minise, and with ``compare`` (--compare torch ran) ms for torch and
    the ratio, ``-`` where torch has no number (the data pipeline)."""
    if not compare:
        return f"{name:<28} {1e3 * minise_s:10.1f}"
    t_text = f"{1e3 * torch_s:10.1f}" if torch_s else f"{'-':>10}"
    ratio = f"{minise_s / torch_s:7.2f}" if torch_s else f"{'-':>7}"
    return f"{name:<28} {1e3 * minise_s:10.1f} {t_text} {ratio}"


def _print_profile(profile, conv_split, data_s, threads):
    """The --profile table: per kind of work, ms per step, share, and cores busy (CPU time / wall time);
    then how conv2d's CPU time splits between im2col, col2im and the rest (the GEMMs)."""
    total = sum(seconds for seconds, _ in profile.values())
    print(f"\nprofile: time per kind of work in one minise train step ({1e3 * total:.0f} ms with the timers, "
          f"{threads} thread{'s' if threads > 1 else ''}; data: its own loader, not part of the step)")
    print(f"{'work':<28} {'ms':>8} {'share':>7} {'cores busy':>11}")
    for name, (seconds, busy) in sorted(profile.items(), key=lambda kv: -kv[1][0]):
        print(f"{name:<28} {1e3 * seconds:8.1f} {100 * seconds / total:6.1f}% {busy:11.2f}")
    print(f"{'data (per batch)':<28} {1e3 * data_s:8.1f} {'-':>7}   (outside the step: not in the shares)")
    cpu = sum(seconds * busy for seconds, busy in profile.values())
    line = f"cores busy over the step: {cpu / total:.2f} of {threads}"
    if threads > 1:   # Amdahl's serial share, as measured (below 1 core: other programs hold the CPU)
        serial = sum(seconds for seconds, busy in profile.values() if busy < 1.25)
        line += f"; work that kept about one core busy (< 1.25): {100 * serial / total:.0f}% of the step"
    print(line)
    if threads > 1 and cpu / total < 1.1:
        print(f"note: {threads} threads kept only about one core busy: another program is probably using "
              f"the CPU (see the load average above), so the tiles and chunks waited for a core. "
              f"Measure again on a quiet machine.")
    conv_cpu = conv_split["conv CPU"]
    if conv_cpu > 0:
        parts = [f"{kind} {100 * conv_split.get(kind, 0.0) / conv_cpu:.0f}%" for kind in ("im2col", "col2im")]
        rest = 100 * (conv_cpu - sum(conv_split.get(kind, 0.0) for kind in ("im2col", "col2im"))) / conv_cpu
        print(f"conv2d's CPU time ({1e3 * conv_cpu:.0f} ms, all threads): {', '.join(parts)}, "
              f"GEMMs and the rest {rest:.0f}%")


def run_bench_train(args):
    """``minise bench train``: time, print the table (and the profile with ``--profile``); returns 0."""
    if args.device != "cpu":
        backend.parse_device(args.device)
    if args.malloc == "keep" and not keep_freed_memory():
        print("note: --malloc keep needs glibc; running with the default allocator")
    torch = None
    if args.compare == "torch":
        try:
            import torch
        except ImportError:
            print("note: torch is not installed: no comparison")
    threads = use_threads(args.threads)             # minise's pool and NumPy's BLAS
    if torch is not None:
        torch.set_num_threads(threads)

    backend.manual_seed(0)
    N = args.batch_size
    loader = embedded_loader(N, max(args.steps, 3))
    # Every step trains on the same real batch (learnable labels: the loss stays finite for any --steps).
    images, labels = (t.numpy() for t in next(iter(loader)))
    model = models.get(args.model).to(args.device)
    optimizer = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    x, y = tensor(images, device=args.device), tensor(labels, device=args.device)
    xp = x.xp
    sync = xp.cuda.Device().synchronize if args.device != "cpu" else (lambda: None)   # GPU work is asynchronous

    def minise_train():
        model.train()
        train_step(model, optimizer, x, y)
        sync()

    def minise_eval():
        model.eval()
        _eval_forward(model, x)
        sync()

    train_runs, eval_runs = {"minise": minise_train}, {"minise": minise_eval}
    if torch is not None:
        torch_device = "cpu" if args.device == "cpu" else "cuda"   # on a GPU run, PyTorch runs on the GPU too
        twin = twin_of(args.model).to(torch_device)
        x_t, y_t = torch.tensor(images, device=torch_device), torch.tensor(labels, device=torch_device)
        torch_train, torch_eval = _torch_steps(torch, twin, x_t, y_t)
        torch_sync = torch.cuda.synchronize if torch_device == "cuda" else (lambda: None)

        def torch_train_mode():
            twin.train()
            torch_train()
            torch_sync()

        def torch_eval_mode():
            twin.eval()
            torch_eval()
            torch_sync()

        train_runs["torch"], eval_runs["torch"] = torch_train_mode, torch_eval_mode

    load_before = _load()
    minise_train()                                  # warm: the memory below is a steady-state step's
    peak, step_mem = peak_memory(minise_train)
    train = _alternate(train_runs, args.steps, args.warmup, args.pause)
    evals = _alternate(eval_runs, args.steps, args.warmup, args.pause)
    data_s = data_seconds_per_batch(loader, max(args.steps, 3))

    steps = f"{args.steps} step{'s' if args.steps != 1 else ''}"
    print(f"minise bench train: {args.model}, batch {N}, {args.device}, median of {steps} after "
          f"{args.warmup} warm-up{' (alternating with torch)' if torch is not None else ''}, float32")
    print(f"cpu: {backend.cpu_name()} ({backend.cpu_isa()}), {os.cpu_count()} cores")
    blas = blas_threads()
    print(f"minise threads: {threads}; numpy {np.__version__} BLAS threads: {blas if blas is not None else 'unknown'}"
          + (f"; torch {torch.__version__} threads: {torch.get_num_threads()}" if torch is not None else "")
          + f"; malloc: {args.malloc}; load average (1 min): {load_before} before, {_load()} after")
    compare = torch is not None     # without it, only the minise column: no columns of "-"
    header = f"{'':<28} {'minise ms':>10}" + (f" {'torch ms':>10} {'ratio':>7}" if compare else "")
    print(header)
    print("-" * len(header))
    t_train, t_eval = train.get("torch"), evals.get("torch")
    print(_row("train step", train["minise"], t_train, compare))
    print(_row("eval forward (no_grad)", evals["minise"], t_eval, compare))
    for name, minise_s, torch_s in (("train", train["minise"], t_train), ("eval", evals["minise"], t_eval)):
        print(f"{name + ' images/s':<28} {N / minise_s:10.0f}" + (f" {N / torch_s:10.0f}" if compare else ""))
    print(_row("data pipeline per batch", data_s, None, compare)
          + f"   ({100 * data_s / train['minise']:.1f}% of a minise train step)")
    print(f"{'peak resident MiB (process)':<28} {peak:10.0f}   (whole process during one minise step)")
    print(f"{'peak MiB the step allocated':<28} {step_mem:10.0f}   (tracemalloc: NumPy arrays, Python objects)")
    if torch is not None:
        print("ratio = minise ms / torch ms (lower is better; 1.00 = as fast as PyTorch)")

    if args.profile:
        profile, conv_split = profile_steps(model, optimizer, x, y, max(args.steps, 1), busy=True, conv_split=True)
        _print_profile(profile, conv_split, data_s, threads)
    return 0
