"""``minise plot``: redraw a run's pictures; ``--excitations`` measures what the SE blocks learned."""

import json
import sys
from pathlib import Path

import numpy as np

from ..analysis import Excitations, excitations_per_class
from ..training import load_model, read_metrics
from ..training.runs import checkpoint_test_loader
from ..viz import plot_curves, plot_excitations, plot_grad_health


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
    their numbers exist); with ``--excitations``, first measure the excitations per class."""
    run_dir = Path(args.run_dir)
    if run_dir.is_file():
        run_dir = run_dir.parent
    if not run_dir.is_dir():
        print(f"minise plot: error: no run folder at {run_dir}", file=sys.stderr)
        return 2
    wrote = []
    if (run_dir / "metrics.csv").exists():
        metrics = read_metrics(run_dir / "metrics.csv")
        if metrics:
            title = None
            if (run_dir / "config.json").exists():
                config = json.loads((run_dir / "config.json").read_text())
                title = f"{config.get('model')} on {config.get('dataset')}"
            wrote.append(plot_curves(metrics, run_dir / "curves.png", title=title))
    health = run_dir / "grad_health.csv"
    if health.exists():
        wrote.append(plot_grad_health(health, run_dir / "grad_health.png"))
    numbers = run_dir / "excitations.npz"
    if args.excitations:
        ckpt = run_dir / f"{args.checkpoint}.ckpt"
        if not ckpt.exists() and args.checkpoint == "best":
            ckpt = run_dir / "last.ckpt"
        try:
            model, state = load_model(ckpt, device=args.device)
            loader = checkpoint_test_loader(state, args.device, data_dir=args.data_dir, subset=args.subset)
            excitations = excitations_per_class(model, loader, classes=list(state["classes"]))
        except (ValueError, TypeError, OSError) as exc:
            print(f"minise plot: error: {exc}", file=sys.stderr)
            return 2
        wrote.append(excitations.save(numbers))
        _print_excitation_summary(excitations)
    if numbers.exists():
        excitations = Excitations.load(numbers)
        classes = args.classes
        if classes is not None:
            classes = [int(c) for c in classes.split(",")]
            bad = [c for c in classes if not 0 <= c < len(excitations.classes)]
            if bad:
                print(f"minise plot: error: --classes {bad} out of range 0..{len(excitations.classes) - 1}",
                      file=sys.stderr)
                return 2
        wrote.append(plot_excitations(excitations, run_dir / "excitations.png", classes=classes))
    if not wrote:
        print(f"minise plot: error: nothing to plot in {run_dir} (no metrics.csv yet; "
              "--excitations needs a checkpoint)", file=sys.stderr)
        return 2
    for path in wrote:
        print(f"wrote {path}")
    return 0


def _print_excitation_summary(excitations):
    """Per stage: how far the per-class averages spread around the overall mean (class specificity)."""
    print("average excitation per stage (last SE block of each stage):")
    for name in excitations.stage_blocks():
        means = excitations.means[name]
        spread = np.abs(means - excitations.mean_all(name)[None, :]).mean()
        print(f"  {name:<16} {means.shape[1]:>3} channels  mean {means.mean():.3f}  "
              f"mean |class - all| {spread:.4f}")
