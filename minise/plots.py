"""Pictures of a training run: curves, a confusion matrix, SE excitations per class.

Each function draws one figure with matplotlib's Agg renderer (no window, works
on a server, leaves pyplot and a notebook's backend alone) and writes it atomically, so a half-written PNG never replaces a
good one. matplotlib is imported inside the functions: ``import minise`` does
not pay for it.
"""

import numpy as np

from .checkpoint import atomic_path

__all__ = ["plot_curves", "plot_confusion_matrix", "plot_excitations"]


def _figure(**kwargs):
    """A matplotlib Figure drawn by Agg, outside pyplot: no window, no global state,
    and a notebook's own backend is left alone."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    """Write ``fig`` to ``path`` as PNG through a temporary file."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


def plot_curves(metrics, path, title=None):
    """Loss, accuracy and learning rate per epoch, train and test, to ``path`` (PNG).

    ``metrics``: a list of dicts with the columns of ``metrics.csv``
    (epoch, lr, train_loss, train_acc, test_loss, test_acc, ...); accuracies
    are fractions and are drawn in percent.
    """
    epochs = [m["epoch"] for m in metrics]
    fig = _figure(figsize=(13, 3.8))
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    ax_loss.plot(epochs, [m["train_loss"] for m in metrics], "o-", label="train")
    ax_loss.plot(epochs, [m["test_loss"] for m in metrics], "s-", label="test")
    ax_loss.set(title="Cross-entropy loss", xlabel="epoch", ylabel="loss (nats per image)")
    ax_acc.plot(epochs, [100 * m["train_acc"] for m in metrics], "o-", label="train")
    ax_acc.plot(epochs, [100 * m["test_acc"] for m in metrics], "s-", label="test")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    ax_lr.plot(epochs, [m["lr"] for m in metrics], "o-", color="tab:green")
    ax_lr.set(title="Learning rate (at the start of each epoch)", xlabel="epoch", ylabel="learning rate")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc, ax_lr):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if epochs:
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    ax_loss.legend()
    ax_acc.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_matrix(matrix, classes, path, title="Confusion matrix"):
    """A (K, K) confusion matrix (rows: true class, columns: predicted) as a PNG.

    Cells are shaded by the fraction of each true class and labelled with counts.
    """
    matrix = np.asarray(matrix)
    k = len(classes)
    if matrix.shape != (k, k):
        raise ValueError(f"plot_confusion_matrix: expected a ({k}, {k}) matrix for {k} classes, got {matrix.shape}")
    per_row = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig = _figure(figsize=(1.0 + 0.62 * k, 0.6 + 0.55 * k))
    ax = fig.subplots()
    image = ax.imshow(per_row, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                    color="white" if per_row[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    return _save(fig, path)


def plot_excitations(excitations, path, classes=None, title=None):
    """The paper's Figure 6: average excitation per channel, per class, one panel per stage.

    ``excitations``: a :class:`minise.train.Excitations`. Each panel shows the
    last SE block of one stage: a line per class in ``classes`` (indices; the
    first four classes by default) and the mean over all classes in black.
    """
    names = excitations.stage_blocks()
    if classes is None:
        classes = list(range(min(4, len(excitations.classes))))
    fig = _figure(figsize=(9, 2.6 * len(names)))
    axes = fig.subplots(len(names), 1, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        means = excitations.means[name]                       # (K, C)
        channels = np.arange(means.shape[1])
        for c in classes:
            ax.plot(channels, means[c], lw=1.0, alpha=0.85, label=excitations.classes[c])
        ax.plot(channels, excitations.mean_all(name), color="black", lw=2.0, label="all classes")
        ax.set(title=f"{name} ({means.shape[1]} channels)", xlabel="channel index",
               ylabel="mean excitation", ylim=(-0.02, 1.02), xlim=(-0.5, means.shape[1] - 0.5))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="lower right", fontsize=8, ncol=min(5, len(classes) + 1))
    fig.suptitle(title or "Average SE excitation per channel, by class (last SE block of each stage)")
    return _save(fig, path)


# --- `minise plot` (argparse in minise/cli.py) ------------------------------------------
def run_plot_command(args):
    """``minise plot RUN_DIR``: redraw curves.png (and grad_health.png, excitations.png when
    their numbers exist); with ``--excitations``, first measure the excitations per class."""
    import sys
    from pathlib import Path

    from . import train

    run_dir = Path(args.run_dir)
    if run_dir.is_file():
        run_dir = run_dir.parent
    if not run_dir.is_dir():
        print(f"minise plot: error: no run folder at {run_dir}", file=sys.stderr)
        return 2
    wrote = []
    if (run_dir / "metrics.csv").exists():
        metrics = train.read_metrics(run_dir / "metrics.csv")
        if metrics:
            title = None
            if (run_dir / "config.json").exists():
                import json

                config = json.loads((run_dir / "config.json").read_text())
                title = f"{config.get('model')} on {config.get('dataset')}"
            wrote.append(plot_curves(metrics, run_dir / "curves.png", title=title))
    health = run_dir / "grad_health.csv"
    if health.exists():
        from . import viz

        if hasattr(viz, "plot_grad_health"):
            wrote.append(viz.plot_grad_health(health, run_dir / "grad_health.png") or run_dir / "grad_health.png")
        else:
            print(f"note: {health} exists but this minise has no viz.plot_grad_health to draw it")
    numbers = run_dir / "excitations.npz"
    if args.excitations:
        ckpt = run_dir / f"{args.checkpoint}.ckpt"
        if not ckpt.exists() and args.checkpoint == "best":
            ckpt = run_dir / "last.ckpt"
        try:
            model, state = train.load_model(ckpt, device=args.device)
            loader = train.checkpoint_test_loader(state, args.device, data_dir=args.data_dir, subset=args.subset)
            excitations = train.excitations_per_class(model, loader, classes=list(state["classes"]))
        except (ValueError, TypeError, OSError) as exc:
            print(f"minise plot: error: {exc}", file=sys.stderr)
            return 2
        wrote.append(excitations.save(numbers))
        _print_excitation_summary(excitations)
    if numbers.exists():
        excitations = train.Excitations.load(numbers)
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
