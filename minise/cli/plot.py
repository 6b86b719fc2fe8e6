"""``minise plot``: redraw a run's pictures; ``--excitations`` measures what the SE blocks learned."""

import csv
import json
import zipfile
from pathlib import Path

import numpy as np

from ..analysis import Excitations, excitations_per_class
from ..io import CheckpointError, printable
from ..training import load_model, read_metrics
from ..training.runs import checkpoint_test_loader
from ..viz import plot_curves, plot_excitations, plot_grad_health
from .common import check_writable, plot_text
from .common import error as _error


def add(sub):
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
    p.set_defaults(run=run)


def run(args):
    """``minise plot RUN_DIR``: redraw curves.png (and grad_health.png, excitations.png when
    their numbers exist); with ``--excitations``, first measure the excitations per class.

    Failures are one line and an exit code (:func:`minise.cli.common.guarded`, docs/files.md).
    """
    run_dir = Path(args.run_dir)
    if run_dir.is_file():
        run_dir = run_dir.parent
    if not run_dir.is_dir():
        return _error("plot", f"no run folder at {run_dir}")
    check_writable(run_dir)
    wrote = []
    if (run_dir / "metrics.csv").exists():
        metrics = _read_log(run_dir / "metrics.csv", read_metrics)
        if metrics:
            wrote.append(plot_curves(metrics, run_dir / "curves.png", title=_title(run_dir / "config.json")))
    health = run_dir / "grad_health.csv"
    if health.exists():
        wrote.append(_read_log(health, lambda path: plot_grad_health(path, run_dir / "grad_health.png")))
    numbers = run_dir / "excitations.npz"
    if args.excitations:
        ckpt = run_dir / f"{args.checkpoint}.ckpt"
        if not ckpt.exists() and args.checkpoint == "best":
            ckpt = run_dir / "last.ckpt"
        model, state = load_model(ckpt, device=args.device)
        loader = checkpoint_test_loader(state, args.device, data_dir=args.data_dir, subset=args.subset)
        excitations = excitations_per_class(model, loader, classes=[printable(c) for c in state["classes"]])
        wrote.append(excitations.save(numbers))
        _print_excitation_summary(excitations)
    if numbers.exists():
        excitations = _read_log(numbers, Excitations.load)
        classes = args.classes
        if classes is not None:
            classes = [int(c) for c in classes.split(",")]
            bad = [c for c in classes if not 0 <= c < len(excitations.classes)]
            if bad:
                return _error("plot", f"--classes {bad} out of range 0..{len(excitations.classes) - 1}")
        excitations.classes = [plot_text(c) for c in excitations.classes]
        wrote.append(plot_excitations(excitations, run_dir / "excitations.png", classes=classes))
    if not wrote:
        return _error("plot", f"nothing to plot in {run_dir} (no metrics.csv yet; --excitations needs a checkpoint)")
    for path in wrote:
        print(f"wrote {path}")
    return 0


def _read_log(path, read):
    """``read(path)``; a damaged file (bad numbers, missing columns, a broken npz) is a bad file (exit 3)."""
    try:
        return read(path)
    except (ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile, csv.Error) as exc:
        raise CheckpointError(f"{path} is damaged ({type(exc).__name__}: {exc}); delete it, or redraw it "
                              "from the checkpoint with minise train --resume") from None


def _title(config_path):
    """``<model> on <dataset>`` from the run's config.json, escaped for a plot; None when unreadable."""
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    return plot_text(f"{config.get('model')} on {config.get('dataset')}")


def _print_excitation_summary(excitations):
    """Per stage: how far the per-class averages spread around the overall mean (class specificity)."""
    print("average excitation per stage (last SE block of each stage):")
    for name in excitations.stage_blocks():
        means = excitations.means[name]
        spread = np.abs(means - excitations.mean_all(name)[None, :]).mean()
        print(f"  {name:<16} {means.shape[1]:>3} channels  mean {means.mean():.3f}  "
              f"mean |class - all| {spread:.4f}")
