"""``minise bench ops | train``: the benchmarks' command lines (the benchmarks live in ``minise/bench/``)."""

from .. import backend
from ..bench.ops import run_ops
from ..bench.train import MODELS, run_bench_train
from .common import bad_number_flag, device_message, error


def add(sub):
    p = sub.add_parser("bench", help="time minise against PyTorch on the CPU: `minise bench ops|train`",
                       description="Benchmarks, each a sub-command: `ops` times forward+backward of every op "
                                   "at SE-ResNet-20 shapes next to PyTorch with the same thread count; `train` "
                                   "times a training step and an eval forward of a whole network.")
    _add_subcommands(p)


def _add_ops(sub):
    p = sub.add_parser("ops", help="forward+backward time of each op at SE-ResNet-20 shapes, vs PyTorch",
                       description="Time forward+backward of each op (conv2d, batch norm, ReLU, pooling, the SE "
                                   "block...) at SE-ResNet-20's shapes; with PyTorch installed, next to PyTorch "
                                   "on the same thread count (docs/benchmarks.md).")
    p.add_argument("--batch-size", type=int, default=128, help="images per batch (default 128)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads for minise (ms.set_num_threads: its pool and NumPy's BLAS) and for PyTorch "
                        "(default: as many as NumPy's BLAS uses)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per op; the median is shown (default 5)")
    p.set_defaults(run=_checked(run_ops, at_least_1=("batch_size", "threads", "repeat")))


def _add_subcommands(parser):
    """Register ``minise bench <benchmark>`` on the ``bench`` parser."""
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")   # none: exit 2 (cli.main)
    _add_ops(sub)
    _add_train(sub)


def _add_train(sub):
    p = sub.add_parser("train", help="time of a training step and an eval forward of a CIFAR (SE-)ResNet, "
                                     "vs PyTorch",
                       description="Time a training step (forward, loss, backward, SGD step) and an eval forward "
                                   "of a CIFAR (SE-)ResNet on one batch; --compare torch times its PyTorch twin "
                                   "alternately, --profile splits the step by kind of work (docs/benchmarks.md).")
    p.add_argument("--model", default="se_resnet20", choices=sorted(MODELS), help="default se_resnet20")
    p.add_argument("--batch-size", type=int, default=128, help="images per batch (default 128)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads for minise (ms.set_num_threads: its pool and NumPy's BLAS) and for PyTorch "
                        "(default: as many as NumPy's BLAS uses)")
    p.add_argument("--steps", type=int, default=10, help="timed steps; the median is shown (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--compare", choices=["torch"], default=None, help="also time the PyTorch twin, alternating")
    p.add_argument("--profile", action="store_true", help="print the time per kind of work in a step")
    p.add_argument("--malloc", choices=["keep", "default"], default="keep",
                   help="keep: glibc keeps freed memory for reuse (both libraries; default); default: as is")
    p.add_argument("--pause", type=float, default=0.2,
                   help="seconds to sleep between alternating minise and torch steps (default 0.2)")
    p.set_defaults(run=_checked(run_bench_train, at_least_1=("batch_size", "threads", "steps"),
                                at_least_0=("warmup", "pause")))


def _checked(run, at_least_1=(), at_least_0=()):
    """``run``, after the numeric flags' check (``common.bad_number_flag``): a flag out of range is
    one line naming it, exit status 2. A device that is unknown or cannot be used is one line
    naming --device."""
    def run_checked(args):
        command = f"bench {args.benchmark}"
        message = bad_number_flag(args, at_least_1, at_least_0)
        if message:
            return error(command, message)
        try:
            return run(args)
        except backend.DeviceError as exc:
            return error(command, device_message(exc, getattr(args, "device", "cpu")))
    return run_checked
