"""The ``minise`` command line: ``minise info | train | eval | bench | summary | plot``.

Each subcommand is registered by one small ``_add_<name>`` function below,
which declares its arguments and the function that runs it. The heavy
modules (training, plotting, benchmarks) are imported only when their
command runs, so ``minise --help`` stays instant.
"""

import argparse
import platform
import sys

from . import __version__, backend


def _info(args):
    """Print versions, the array backends available and whether a GPU is usable."""
    import numpy as np

    print(f"minise      {__version__}")
    print(f"python      {platform.python_version()} ({sys.executable})")
    print(f"numpy       {np.__version__}")
    if backend.cupy_available():
        import cupy

        print(f"cupy        {cupy.__version__}")
    else:
        print("cupy        not installed (pip install 'minise[gpu]' for GPU support)")
    try:
        import torch

        print(f"torch       {torch.__version__} (used only by the parity tests and `bench --compare torch`)")
    except ImportError:
        print("torch       not installed (optional: parity tests and benchmarks against PyTorch)")
    backends = ["numpy (cpu)"] + (["cupy (cuda)"] if backend.cupy_available() else [])
    print(f"backends    {', '.join(backends)}")
    if backend.gpu_available():
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        print(f"gpu         usable: {cupy.cuda.runtime.getDeviceCount()} device(s), cuda:0 = {name}")
    else:
        print("gpu         not usable (device='cpu' only)")
    return 0


def _add_info(sub):
    p = sub.add_parser("info", help="versions, backends and whether a GPU is usable")
    p.set_defaults(run=_info)


def _train(args):
    from .train import run_train_command

    backend.keep_freed_memory()  # reuse freed buffers across steps: no page faults (docs/benchmarks.md)
    return run_train_command(args)


def _add_train(sub):
    p = sub.add_parser(
        "train", help="train a model, with a progress bar, curves and resumable checkpoints",
        description="Train a model and write a run folder (config.json, metrics.csv, last.ckpt, best.ckpt, "
                    "curves.png). Options left out take the dataset's defaults (see minise.train.DATASET_DEFAULTS). "
                    "Ctrl-C saves the last completed epoch; --resume continues bit-identically.")
    p.add_argument("--model", help="a name from minise.models.list() (default se_resnet20)")
    p.add_argument("--dataset", choices=["embedded", "cifar10", "fashion-mnist"],
                   help="default: embedded (offline, drawn shapes; not CIFAR-10)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="(peak) learning rate")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    p.add_argument("--momentum", type=float)
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=["cosine", "step", "onecycle", "none"], help="stepped every batch")
    p.add_argument("--warmup-epochs", type=float, help="linear warmup (cosine and step schedules)")
    p.add_argument("--augment", choices=["crop+flip", "flip", "none"])
    p.add_argument("--device", help="cpu (default), cuda or cuda:N")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--out", metavar="RUN_DIR", help="default runs/<model>-<dataset>-<time>")
    p.add_argument("--data-dir", metavar="DIR", help="dataset folder (default $MINISE_DATA or ~/.cache/minise)")
    p.add_argument("--resume", nargs="?", const="", metavar="CKPT",
                   help="continue a run: --resume RUN_DIR/last.ckpt, or --resume with --out RUN_DIR")
    p.add_argument("--subset", type=int, metavar="N", help="use only the first N training and N test images")
    p.add_argument("--eval-batch-size", type=int)
    p.add_argument("--grad-health", type=int, nargs="?", const=50, metavar="N",
                   help="log gradient norms and update/weight ratios every N steps (default 50) to grad_health.csv")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar (epoch summaries only)")
    p.set_defaults(run=_train)


def _eval(args):
    from .train import run_eval_command

    return run_eval_command(args)


def _add_eval(sub):
    p = sub.add_parser("eval", help="test accuracy and confusion matrix of a checkpoint",
                       description="Rebuild the model of a checkpoint, report its test accuracy and confusion "
                                   "matrix, and plot the matrix to <checkpoint>-confusion.png (or --out).")
    p.add_argument("checkpoint", metavar="CKPT", help="a .ckpt file, or a run folder (its best.ckpt)")
    p.add_argument("--dataset", choices=["embedded", "cifar10", "fashion-mnist"],
                   help="default: the checkpoint's")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--subset", type=int, metavar="N",
                   help="only the first N test images (default: as the run was trained; 0: all)")
    p.add_argument("--out", metavar="PNG", help="where to write the confusion-matrix plot")
    p.set_defaults(run=_eval)


def _plot(args):
    from .plots import run_plot_command

    return run_plot_command(args)


def _add_plot(sub):
    p = sub.add_parser("plot", help="redraw a run's plots; --excitations: what the SE blocks learned",
                       description="Redraw curves.png (and grad_health.png) of a run folder. With --excitations, "
                                   "run the test set through the trained SE model and plot the average "
                                   "excitation per channel for a few classes and all of them, one panel per "
                                   "stage (the paper's Figure 6); the numbers go to excitations.npz.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--excitations", action="store_true", help="measure and plot SE excitations per class")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best")
    p.add_argument("--classes", metavar="I,J,...", help="class indices to draw (default the first four)")
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--device", default="cpu")
    p.add_argument("--subset", type=int, metavar="N",
                   help="only the first N test images (default: as the run was trained; 0: all)")
    p.set_defaults(run=_plot)


def _add_bench(sub):
    from . import bench  # light: numpy and minise only; torch is imported when a benchmark runs

    p = sub.add_parser("bench", help="time minise against PyTorch on the CPU: `minise bench ops|train`",
                       description="Benchmarks, each a sub-command: `ops` times forward+backward of every op "
                                   "at SE-ResNet-20 shapes next to PyTorch with the same thread count; `train` "
                                   "times a training step and an eval forward of a whole network.")
    bench.add_subcommands(p)


def _summary(args):
    from . import models
    from .summary import summary

    try:
        shape = tuple(int(n) for n in args.input_shape.split(","))
    except ValueError:
        print(f"minise summary: --input-shape must be comma-separated ints like 1,3,32,32, got {args.input_shape!r}",
              file=sys.stderr)
        return 2
    if len(shape) != 4:
        print(f"minise summary: --input-shape must be N,C,H,W (4 numbers), got {args.input_shape!r}", file=sys.stderr)
        return 2
    kwargs = {"num_classes": args.num_classes, "in_channels": shape[1]}
    if args.name.startswith("se_"):
        kwargs["reduction"] = args.reduction
    elif args.reduction is not None and args.reduction != 16:
        print(f"minise summary: --reduction applies to SE models only, not {args.name}", file=sys.stderr)
        return 2
    if args.name not in models.list():
        print(f"minise summary: unknown model {args.name!r}; choose from {', '.join(models.list())}",
              file=sys.stderr)
        return 2
    print(summary(models.get(args.name, **kwargs), shape, max_depth=args.depth))
    return 0


def _add_summary(sub):
    p = sub.add_parser("summary", help="per-layer table of output shapes, parameters and MACs of a model",
                       description="Run one forward pass of MODEL and print each module's output shape, "
                                   "parameters and multiply-accumulates, the totals, and for SE models the "
                                   "SE parameter overhead checked against the paper's formula.")
    p.add_argument("name", metavar="MODEL", help="a name from minise.models.list(), e.g. se_resnet20")
    p.add_argument("--input-shape", default="1,3,32,32", metavar="N,C,H,W",
                   help="input shape (default 1,3,32,32); C sets the model's in_channels")
    p.add_argument("--reduction", type=int, default=16, help="SE reduction ratio r (SE models, default 16)")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--depth", type=int, default=None, help="show modules only down to this depth")
    p.set_defaults(run=_summary)


COMMANDS = [_add_info, _add_train, _add_eval, _add_plot, _add_bench, _add_summary]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minise",
        description="Squeeze-and-Excitation networks from scratch on NumPy/CuPy.",
    )
    parser.add_argument("--version", action="version", version=f"minise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    return args.run(args) or 0


if __name__ == "__main__":
    raise SystemExit(main())
