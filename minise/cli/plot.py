"""``minise plot``: redraw a run's pictures; ``--excitations`` measures what the SE blocks learned."""

import csv
import json
import os
import zipfile
from pathlib import Path

from .. import models
from ..analysis import Excitations, excitations_per_class
from ..debug import read_grad_health_csv
from ..io import CheckpointError, SerializationError, printable
from ..io.text import describe_damage
from ..nn import SEBlock
from ..training import find_checkpoint, load_model, read_lr, read_metrics
from ..training.runs import checkpoint_test_loader
from ..viz import plot_curves, plot_excitations, plot_grad_health
from .common import bad_data_dir, bad_number_flag, check_writable, checkpoint_at, plot_text
from .common import error as _error
from .train import DATA_DIR_HELP

# files of a run folder that a user may type for the folder (`minise plot run/metrics.csv`)
_RUN_FILES = {"metrics.csv", "lr.csv", "grad_health.csv", "config.json", "excitations.npz", "curves.png",
              "grad_health.png", "excitations.png"}
# what to do about a damaged file of a run folder, {run} being the folder
REMEDIES = {"metrics.csv": "delete it: minise train --resume {run} writes it again from the checkpoint",
            "lr.csv": "move it away: minise plot draws without it (its rows are not in the checkpoint, so nothing "
                      "can write them again)",
            "excitations.npz": "delete it: minise plot --excitations {run} measures them again"}
REMEDIES["grad_health.csv"] = REMEDIES["lr.csv"]


def add(sub):
    p = sub.add_parser("plot", help="redraw a run's plots; --excitations: what the SE blocks learned",
                       description="Redraw curves.png (and grad_health.png, excitations.png when their numbers "
                                   "exist) of a run folder. With --excitations, only measure and draw what the SE "
                                   "blocks learned: run the test set through the trained SE model and plot the "
                                   "average excitation per channel for a few classes and all of them, one panel "
                                   "per stage (the paper's Figure 6); the numbers go to excitations.npz.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, or a .ckpt file in one (--excitations uses it)")
    p.add_argument("--excitations", action="store_true",
                   help="measure and plot SE excitations per class (needs a model with SE blocks)")
    p.add_argument("--checkpoint", choices=["best", "last"],
                   help="with --excitations and a run folder: its best.ckpt (default; else last.ckpt) or last.ckpt")
    p.add_argument("--classes", metavar="I,J,...",
                   help="class indices to draw in excitations.png, measured with --excitations or redrawn from "
                        "the run's excitations.npz (default: the four whose gates differ most at the last SE block)")
    p.add_argument("--data-dir", metavar="DIR", help="with --excitations: " + DATA_DIR_HELP)
    p.add_argument("--device", help="with --excitations: cpu (default), cuda or cuda:N")
    p.add_argument("--subset", type=int, metavar="N",
                   help="with --excitations: only the first N test images (default: as the run was trained; 0: all)")
    p.set_defaults(run=run)


def run(args):
    """``minise plot RUN_DIR``: redraw curves.png (and grad_health.png, excitations.png when their numbers
    exist); ``--excitations`` measures the excitations per class and draws excitations.png, nothing else.

    Failures are one line and an exit code (:func:`minise.cli.common.guarded`, docs/files.md).
    """
    message = bad_number_flag(args, at_least_0=("subset",)) or _needs_excitations(args) or bad_data_dir(args)
    if message:
        return _error("plot", message)
    path = Path(args.run_dir)
    if path.is_file() and path.suffix != ".ckpt":     # metrics.csv, a .png: not quietly read as its folder
        folder = f": pass its folder, {path.parent}" if path.parent.is_dir() and path.name in _RUN_FILES else ""
        return _error("plot", f"RUN_DIR {args.run_dir} is a file but not a checkpoint (.ckpt); minise plot takes "
                              f"a run folder, or a .ckpt file in one{folder}")
    if not os.path.lexists(path):
        return _error("plot", f"no run folder at {path}")
    if not path.is_dir():
        path = checkpoint_at(path)                    # a device, a pipe, a broken link: refused, saying what it is
    elif path.suffix == ".ckpt" and not any(os.path.lexists(path / n) for n in ("best.ckpt", "last.ckpt",
                                                                                 "metrics.csv")):
        checkpoint_at(path)                           # a folder x.ckpt holding no run: refused as eval refuses it
    run_dir = path.parent if path.is_file() else path
    where = f"{run_dir} (the folder of {path})" if path.is_file() else run_dir
    if args.checkpoint is not None and path.is_file():
        return _error("plot", f"--checkpoint {args.checkpoint} chooses the checkpoint of a run folder, and {path} "
                              "is a checkpoint already: pass the run folder, or leave --checkpoint out")
    if args.classes is not None and not args.excitations and not (run_dir / "excitations.npz").exists():
        return _error("plot", f"--classes {args.classes} needs --excitations here: {where} has no "
                              "excitations.npz to redraw")
    check_writable(run_dir)
    classes = None
    if args.classes is not None:
        try:
            classes = [int(c) for c in args.classes.split(",")]
        except ValueError:
            return _error("plot", f"--classes takes comma-separated class indices like 0,3,7, got {args.classes!r}")
    numbers, config = run_dir / "excitations.npz", _config(run_dir / "config.json")
    wrote, run_model = [], None     # with --excitations: (the checkpoint's model, its name in messages)
    metrics = lr = health = None    # every file is read and checked before anything is drawn:
    if args.excitations:            # a damaged one leaves the run's pictures as they were
        ckpt = find_checkpoint(path, args.checkpoint or "best")
        model, state = load_model(ckpt, device=args.device or "cpu")
        run_model = (model, f"{state['config']['model']} (the model in {ckpt})")
        if not any(isinstance(m, SEBlock) for m in model.modules()):
            return _error("plot", f"--excitations needs a model with SE blocks; {ckpt} holds "
                                  f"{printable(state['config']['model'])}, which has none (train an se_ model, "
                                  "e.g. --model se_resnet20)")
        bad = [c for c in classes or () if not 0 <= c < len(state["classes"])]
        if bad:           # before the measurement, not after it
            return _error("plot", f"--classes {bad} out of range 0..{len(state['classes']) - 1}")
        loader = checkpoint_test_loader(state, args.device or "cpu", data_dir=args.data_dir, subset=args.subset)
        excitations = excitations_per_class(model, loader, classes=[printable(c) for c in state["classes"]])
        wrote.append(excitations.save(numbers))
        _print_excitation_summary(excitations)
    else:
        if (run_dir / "metrics.csv").exists():
            metrics = _read_log(run_dir / "metrics.csv", read_metrics)
            lr = _read_log(run_dir / "lr.csv", read_lr) if metrics else None
        if (run_dir / "grad_health.csv").exists():
            health = _read_log(run_dir / "grad_health.csv", _grad_health_records)
    excitations = None
    if numbers.exists():
        excitations = _read_log(numbers, Excitations.load)
        _check_run_model(excitations, numbers, run_model or _config_model(config, run_dir))
        bad = [c for c in classes or () if not 0 <= c < len(excitations.classes)]
        if bad:
            return _error("plot", f"--classes {bad} out of range 0..{len(excitations.classes) - 1}")
    if metrics:
        wrote.append(plot_curves(metrics, run_dir / "curves.png", title=_title(config), lr=lr))
    if health:
        wrote.append(plot_grad_health(health, run_dir / "grad_health.png"))
    if excitations is not None:
        excitations.classes = [plot_text(c) for c in excitations.classes]
        wrote.append(plot_excitations(excitations, run_dir / "excitations.png", classes=classes))
    if not wrote:
        return _error("plot", f"nothing to plot in {where}: no metrics.csv yet (and no excitations.npz; "
                              "--excitations measures them from a checkpoint)")
    for written in wrote:
        print(f"wrote {written}")
    return 0


def _grad_health_records(path):
    """The records of a run's grad_health.csv; ValueError when it holds none (nothing to draw)."""
    records = read_grad_health_csv(path)
    if not records:
        raise ValueError("no records")
    return records


def _needs_excitations(args):
    """The message for the first flag given that only ``--excitations`` reads (the checkpoint, the data and
    the device of the measurement); None when there is none or ``--excitations`` is given."""
    if args.excitations:
        return None
    for dest in ("checkpoint", "data_dir", "device", "subset"):
        if getattr(args, dest) is not None:
            return (f"--{dest.replace('_', '-')} {getattr(args, dest)} needs --excitations: without it, minise "
                    "plot only redraws the run's pictures from the numbers it saved")
    return None


def _remedy(path):
    """What to do about the damaged run file ``path`` (:data:`REMEDIES`), naming its folder."""
    return REMEDIES[Path(path).name].format(run=Path(path).parent)


def _read_log(path, read):
    """``read(path)``; a damaged file (bad numbers, missing columns, a broken npz) is a bad file (exit 3),
    its message ending with what to do about it (:func:`_remedy`). A folder or a device (a symlink to
    /dev/zero) is refused before it is opened: it could be read forever."""
    if Path(path).exists() and not Path(path).is_file():
        raise CheckpointError(f"{path} is not a regular file; {_remedy(path)}")
    try:
        return read(path)
    except SerializationError as exc:      # names the file and says what is wrong already
        raise CheckpointError(f"{exc}; {_remedy(path)}") from None
    except (ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile, csv.Error) as exc:
        raise CheckpointError(f"{describe_damage(path, exc)}; {_remedy(path)}") from None


def _config_model(config, run_dir):
    """(the model config.json names, its name in messages); None when config.json is unreadable or
    names no model minise has (nothing to compare excitations.npz with)."""
    if config is None or config.get("model") not in models.list():
        return None
    return models.get(config["model"]), f"{config['model']} (the model in {run_dir / 'config.json'})"


def _check_run_model(excitations, path, run_model):
    """Raise CheckpointError (exit 3) when the SE blocks of excitations.npz are not those of
    ``run_model`` ((model, its name in messages): the checkpoint's with --excitations, else
    :func:`_config_model`'s); nothing to check when it is None."""
    if run_model is None:
        return
    try:
        excitations.check_model(*run_model)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}: it was measured on another model; {_remedy(path)}") from None


def _config(config_path):
    """The run's config.json as a dict; None when unreadable, not a regular file, not a JSON object,
    or over 1 MiB (minise writes a few hundred bytes)."""
    try:
        if not config_path.is_file():           # follows symlinks: /dev/zero is not a file
            return None
        with open(config_path, "rb") as f:
            data = f.read((1 << 20) + 1)
        if len(data) > 1 << 20:
            return None
        config = json.loads(data.decode("utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def _title(config):
    """``<model> on <dataset>`` from the run's config.json (:func:`_config`), escaped for a plot; None
    when it cannot be read."""
    return None if config is None else plot_text(f"{config.get('model')} on {config.get('dataset')}")


def _print_excitation_summary(excitations):
    """Per stage: the mean gate and the class spread (tutorial 08's statistic: the standard deviation of the
    class means of each channel, averaged over channels; 0 when every class gets the same gates)."""
    print("average excitation per stage (last SE block of each stage); class spread: the standard deviation "
          "across classes of each channel's class mean, averaged over channels")
    for name in excitations.stage_blocks():
        means = excitations.means[name]
        print(f"  {name:<16} {means.shape[1]:>3} channels  mean gate {means.mean():.3f}  "
              f"class spread {excitations.class_spread(name):.4f}")
