"""``minise train``: train a model into a run folder (or resume one)."""

import argparse
import csv
import re
import shlex
import sys
from pathlib import Path

from .. import backend, models, parallel
from ..io import CheckpointError, load_checkpoint, printable, refuse_non_regular, resolve_checkpoint_path
from ..io.text import describe_damage
from ..nn import SEBlock
from ..training import RESUME_OVERRIDES, TrainConfig, Trainer, default_run_dir, read_lr, write_metrics
from ..training.config import DATASET_DEFAULTS
from ..training.metrics import check_metric_rows, why_logs_lag
from ..viz import plot_curves, write_curves
from .common import (
    EXIT_INTERRUPTED,
    bad_data_dir,
    bad_number_flag,
    check_writable,
    plot_text,
    unwritable,
)
from .common import error as _error

DATA_DIR_HELP = ("the data folder: a dataset's files are read from DIR itself or from its subfolder "
                 "(DIR/fashion-mnist/; CIFAR-10: DIR/cifar-10-python.tar.gz or DIR/cifar-10-batches-py/), "
                 "and downloads go there. $MINISE_DATA means the same; default $MINISE_DATA, else ~/.cache/minise")


def _defaults_table():
    """The per-dataset defaults, one line per dataset, for ``minise train --help``."""
    lines = []
    for name, d in DATASET_DEFAULTS.items():
        momentum = TrainConfig.describe_momentum(d["schedule"], d["momentum"])
        schedule = TrainConfig.describe_schedule(d["schedule"], d["warmup_epochs"])
        lines.append(f"  {name:<14} {d['epochs']} epochs, batch {d['batch_size']}, {d['optimizer']} lr {d['lr']:g} "
                     f"momentum {momentum}{' nesterov' if d['nesterov'] else ''}, weight decay "
                     f"{d['weight_decay']:g}, schedule {schedule}, augment {d['augment']}")
    return "\n".join(lines)


def add(sub):
    p = sub.add_parser(
        "train", help="train a model, with a progress bar, curves and resumable checkpoints",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a model and write a run folder (config.json, metrics.csv, lr.csv, last.ckpt, best.ckpt, "
                    "curves.png).\nOptions left out take the dataset's defaults (below). Ctrl-C saves the last "
                    "completed epoch; --resume continues bit-identically.",
        epilog="defaults per dataset (a flag you pass replaces its default):\n" + _defaults_table() +
               "\n  with --schedule cosine, step or none instead of onecycle: momentum "
               f"{DATASET_DEFAULTS['embedded']['momentum']:g} (--momentum sets it)"
               "\n  with --optimizer adam: lr 0.001, weight decay 0; adamw: lr 0.001, weight decay 0.01\n\n"
               "models: " + ", ".join(models.list()))
    p.add_argument("--model", choices=models.list(), metavar="NAME",
                   help="the model to train (default se_resnet20; the list is below)")
    p.add_argument("--dataset", choices=["embedded", "cifar10", "fashion-mnist"],
                   help="default: embedded (offline, drawn shapes; not CIFAR-10)")
    p.add_argument("--epochs", type=int, help="default: the dataset's (below)")
    p.add_argument("--batch-size", type=int, help="default: the dataset's (below)")
    p.add_argument("--lr", type=float, help="(peak) learning rate")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    p.add_argument("--momentum", type=float,
                   help="SGD momentum (cosine, step and none schedules); the onecycle schedule cycles it "
                        "between 0.95 and 0.85 instead, as PyTorch's OneCycleLR does, so it refuses --momentum")
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None,
                   help="Nesterov momentum (SGD only; needs a momentum > 0)")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=["cosine", "step", "onecycle", "none"], help="stepped every batch")
    p.add_argument("--warmup-epochs", type=float,
                   help="linear warmup (cosine and step schedules; onecycle and none refuse it)")
    p.add_argument("--augment", choices=["crop+flip", "flip", "none"])
    p.add_argument("--device", help="cpu (default), cuda or cuda:N")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--out", metavar="RUN_DIR", help="default runs/<model>-<dataset>-<time>")
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    p.add_argument("--resume", nargs="?", const="", metavar="CKPT",
                   help="continue a run: --resume RUN_DIR/last.ckpt, or --resume with --out RUN_DIR")
    p.add_argument("--subset", type=int, metavar="N",
                   help="use only the first N training and N test images (a split with fewer: all of it, "
                        "and a note says so)")
    p.add_argument("--eval-batch-size", type=int)
    p.add_argument("--grad-health", type=int, nargs="?", const=50, metavar="N",
                   help="log gradient norms and update/weight ratios every N steps (default 50) to grad_health.csv")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar (epoch summaries only); the bar shows only when stderr is a terminal")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads (ms.set_num_threads: minise's pool and NumPy's BLAS; default all cores)")
    p.set_defaults(run=run)


CLI_FIELDS = ("model", "dataset", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay",
              "nesterov", "schedule", "warmup_epochs", "augment", "device", "seed", "out", "data_dir",
              "subset", "eval_batch_size", "grad_health", "progress")


def flag_message(exc):
    """The library's message in the words of the command line: ``TrainConfig: batch_size must ...`` becomes
    ``--batch-size must ...`` (the Python API keeps the field names its users typed)."""
    text = str(exc)
    if not text.startswith("TrainConfig: "):
        return text
    fields = "|".join(sorted(CLI_FIELDS, key=len, reverse=True))
    text = re.sub(rf"\b({fields})\b", lambda m: "--" + m.group(1).replace("_", "-"), text[len("TrainConfig: "):])
    return text.replace("--nesterov True", "--nesterov").replace("--nesterov False", "--no-nesterov")


def _epochs(n):
    return f"{n} epoch" + ("" if n == 1 else "s")


def run(args):
    """``minise train``: exit status 0 when finished, 130 after Ctrl-C, 1 when training diverged; the other
    failures are mapped to one line and an exit code by :func:`minise.cli.common.guarded` (docs/files.md)."""
    backend.keep_freed_memory()  # reuse freed buffers across steps: no page faults (docs/benchmarks.md)
    message = bad_number_flag(args, at_least_1=("threads",)) or bad_data_dir(args)  # the others: TrainConfig's
    if message:
        return _error("train", message)
    if args.threads is not None:
        parallel.set_num_threads(args.threads)
    given = {name: getattr(args, name) for name in CLI_FIELDS if getattr(args, name, None) is not None}
    try:
        trainer = _resume(args, given) if args.resume is not None else _new_run(given)
    except KeyboardInterrupt:
        print("\ninterrupted before the first epoch started: nothing was saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(trainer, int):  # an exit code: nothing to train
        return trainer
    result = trainer.fit()
    if result.status == "interrupted":
        return EXIT_INTERRUPTED
    print_next(next_steps(result.run_dir, result.model))
    return 0


def next_steps(run_dir, model, evaluate=True):
    """The commands worth running next on a run, as (command, what it does): only those that work for this
    run: ``eval`` of its best.ckpt (unless ``evaluate=False``), ``plot`` when it has metrics.csv,
    ``plot --excitations`` when the model has SE blocks."""
    run_dir = Path(run_dir)
    run = shlex.quote(str(run_dir))
    steps = []
    if evaluate and (run_dir / "best.ckpt").is_file():
        steps.append((f"minise eval {shlex.quote(str(run_dir / 'best.ckpt'))}", "accuracy and confusion matrix"))
    if (run_dir / "metrics.csv").is_file():
        steps.append((f"minise plot {run}", "redraw curves.png"))
    if any(isinstance(m, SEBlock) for m in model.modules()):
        steps.append((f"minise plot --excitations {run}", "what the SE blocks learned"))
    return steps


def print_next(steps):
    """``next: <command>   # <what>``, one line per step, aligned (nothing when there is no step)."""
    if not steps:
        return
    width = max(len(command) for command, _ in steps)
    for i, (command, what) in enumerate(steps):
        print(f"{'next:' if i == 0 else '':<6} {command:<{width}}   # {what}")


def _new_run(given):
    """A Trainer for a new run, after checking (in a second, before any data or model) that --out is writable;
    an exit code when it is not."""
    config = TrainConfig(**given)
    try:
        resolved = config.resolved()  # bad values fail here, before anything is built
    except ValueError as exc:  # in the words of the command line: the flag, not the field
        raise ValueError(flag_message(exc)) from None
    config.out = config.out or str(default_run_dir(resolved))
    what = f"--out {given['out']}" if "out" in given else f"--out (default {config.out})"
    return unwritable("train", what, config.out) or Trainer(config, log_writers=[write_curves])


def _resume(args, given):
    """A Trainer that continues a saved run, or an exit code when there is nothing to train."""
    path = args.resume or given.get("out")
    if not path:
        return _error("train", "--resume needs a checkpoint or run folder: "
                               "--resume RUN_DIR/last.ckpt, or --resume --out RUN_DIR")
    refuse_non_regular(path, "(its last.ckpt)")    # named as typed; a link to /dev/zero said "no checkpoint at"
    ckpt = resolve_checkpoint_path(path)
    state = load_checkpoint(ckpt)
    run_dir = ckpt.parent
    saved = state["config"]
    dataset = given.get("dataset")
    if dataset is not None and dataset != saved["dataset"]:
        return _error("train", f"--dataset {dataset}: the run in {run_dir} was trained on "
                               f"{printable(saved['dataset'])}, and resuming cannot change it")
    wrong_length = TrainConfig.resume_epochs_error(saved, given.get("epochs"))
    if wrong_length:  # whether or not the run is complete
        raise ValueError(wrong_length)
    ignored = sorted(set(given) - set(RESUME_OVERRIDES) - {"out", "dataset"})
    if args.resume and "out" in given and Path(given["out"]).resolve() != run_dir.resolve():
        ignored.append("out")  # --resume CKPT names the run; an --out elsewhere would be dropped
    if ignored:
        print(f"note: resuming uses the run's saved settings; ignoring --{', --'.join(ignored)}".replace("_", "-"))
    planned = given.get("epochs", saved["epochs"])
    if state["epoch"] >= planned:
        for name, why in _catch_up_logs(run_dir, state):
            print(f"rewrote {run_dir / name} from the checkpoint ({why})")
        longer = ("pass --epochs N to train longer" if saved["schedule"] == "none" else
                  "its learning-rate schedule has ended; start a new run to train longer")
        done = (f"{state['epoch']} of {_epochs(planned)}" if state["epoch"] == planned else
                f"{_epochs(state['epoch'])}, more than --epochs {planned}")
        print(f"{Path(path)} already completed {done}; {longer}")
        return 0
    check_writable(run_dir)
    # the dataset is downloaded only when the user named it (--dataset), never on the checkpoint's say-so
    return Trainer.from_checkpoint(path, log_writers=[write_curves], download=dataset is not None,
                                   **{k: v for k, v in given.items() if k in RESUME_OVERRIDES})


def _catch_up_logs(run_dir, state):
    """Rewrite metrics.csv and curves.png of a completed run from its checkpoint when they lag or are
    missing or damaged: (name, why) for each. A damaged lr.csv (the curves' learning-rate panel) is
    refused as plot refuses it: its rows are not in the checkpoint."""
    metrics = state["metrics"]
    check_metric_rows(metrics, run_dir / "last.ckpt")
    why = why_logs_lag(run_dir, metrics)
    curves = "it was missing" if not (run_dir / "curves.png").exists() else why
    if not metrics or not (why or curves):
        return []
    try:
        lr = read_lr(run_dir)
    except (OSError, ValueError, csv.Error) as exc:
        raise CheckpointError(f"{describe_damage(run_dir / 'lr.csv', exc)}; move it away: the curves are drawn "
                              "without it (its rows are not in the checkpoint, so nothing can write them "
                              "again)") from None
    check_writable(run_dir)
    wrote = []
    if why:
        write_metrics(run_dir / "metrics.csv", metrics)
        wrote.append(("metrics.csv", why))
    config = state["config"]
    plot_curves(metrics, run_dir / "curves.png", title=plot_text(f"{config['model']} on {config['dataset']}"), lr=lr)
    return wrote + [("curves.png", curves)]
