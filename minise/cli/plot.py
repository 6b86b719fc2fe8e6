"""``minise plot``: redraw a run's pictures; ``--excitations`` measures what the SE blocks learned."""

import json
from pathlib import Path

from ..analysis import Excitations, excitations_per_class
from ..nn import SEBlock
from ..training import find_checkpoint, load_model, read_lr, read_metrics
from ..training.runs import checkpoint_test_loader
from ..viz import plot_curves, plot_excitations, plot_grad_health
from .common import error
from .train import DATA_DIR_HELP


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
    p.add_argument("--checkpoint", choices=["best", "last"], default="best",
                   help="with --excitations and a run folder: its best.ckpt (default; else last.ckpt) or last.ckpt")
    p.add_argument("--classes", metavar="I,J,...",
                   help="class indices to draw (default: the four whose gates differ most at the last SE block)")
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    p.add_argument("--device", default="cpu")
    p.add_argument("--subset", type=int, metavar="N",
                   help="only the first N test images (default: as the run was trained; 0: all)")
    p.set_defaults(run=run)


def run(args):
    """``minise plot RUN_DIR``: redraw curves.png (and grad_health.png, excitations.png when their numbers
    exist); ``--excitations`` measures the excitations per class and draws excitations.png, nothing else."""
    path = Path(args.run_dir)
    run_dir = path.parent if path.is_file() else path
    if not run_dir.is_dir():
        return error("plot", f"no run folder at {path}")
    classes = None
    if args.classes is not None:
        try:
            classes = [int(c) for c in args.classes.split(",")]
        except ValueError:
            return error("plot", f"--classes takes comma-separated class indices like 0,3,7, got {args.classes!r}")
    numbers = run_dir / "excitations.npz"
    wrote = []
    if args.excitations:
        try:
            ckpt = find_checkpoint(path, args.checkpoint)
            model, state = load_model(ckpt, device=args.device)
            if not any(isinstance(m, SEBlock) for m in model.modules()):
                return error("plot", f"--excitations needs a model with SE blocks; {ckpt} holds "
                                     f"{state['config']['model']}, which has none (train an se_ model, e.g. "
                                     "--model se_resnet20)")
            loader = checkpoint_test_loader(state, args.device, data_dir=args.data_dir, subset=args.subset)
            excitations = excitations_per_class(model, loader, classes=list(state["classes"]))
        except (ValueError, TypeError, OSError) as exc:
            return error("plot", exc)
        wrote.append(excitations.save(numbers))
        _print_excitation_summary(excitations)
    else:
        metrics = read_metrics(run_dir / "metrics.csv") if (run_dir / "metrics.csv").exists() else []
        if metrics:
            title = None
            if (run_dir / "config.json").exists():
                config = json.loads((run_dir / "config.json").read_text())
                title = f"{config.get('model')} on {config.get('dataset')}"
            wrote.append(plot_curves(metrics, run_dir / "curves.png", title=title, lr=read_lr(run_dir)))
        if (run_dir / "grad_health.csv").exists():
            wrote.append(plot_grad_health(run_dir / "grad_health.csv", run_dir / "grad_health.png"))
    if numbers.exists():
        excitations = Excitations.load(numbers)
        bad = [c for c in classes or () if not 0 <= c < len(excitations.classes)]
        if bad:
            return error("plot", f"--classes {bad} out of range 0..{len(excitations.classes) - 1}")
        wrote.append(plot_excitations(excitations, run_dir / "excitations.png", classes=classes))
    if not wrote:
        return error("plot", f"nothing to plot in {run_dir}: no metrics.csv yet (and no excitations.npz; "
                      "--excitations measures them from a checkpoint)")
    for written in wrote:
        print(f"wrote {written}")
    return 0


def _print_excitation_summary(excitations):
    """Per stage: the mean gate and the class spread (tutorial 08's statistic: the standard deviation of the
    class means of each channel, averaged over channels; 0 when every class gets the same gates)."""
    print("average excitation per stage (last SE block of each stage); class spread: the standard deviation "
          "across classes of each channel's class mean, averaged over channels")
    for name in excitations.stage_blocks():
        means = excitations.means[name]
        print(f"  {name:<16} {means.shape[1]:>3} channels  mean gate {means.mean():.3f}  "
              f"class spread {excitations.class_spread(name):.4f}")
