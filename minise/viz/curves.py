"""Pictures of a training run: the curves (loss, accuracy, learning rate) and the confusion matrix.

Each function draws one figure and writes it atomically, so a half-written PNG
never replaces a good one.
"""

import numpy as np

from .figure import _figure, _save

__all__ = ["plot_curves", "plot_confusion_matrix", "write_curves"]


def plot_curves(metrics, path, title=None, lr=None):
    """Loss and accuracy per epoch, train and test, and the learning rate, to ``path`` (PNG).

    ``metrics``: a list of dicts with the columns of ``metrics.csv``
    (epoch, lr, train_loss, train_acc, test_loss, test_acc, ...); accuracies
    are fractions and are drawn in percent, at the end of their epoch.
    ``lr``: the rows of ``lr.csv`` (dicts with step, epoch, lr, as
    :func:`minise.training.read_lr` returns them): the learning rate of every optimiser step,
    drawn where the step happened (step k of n in epoch e at e - 1 + k / n), so a
    one-cycle schedule shows its peak and its fall. Without it (a run from
    before lr.csv), the panel draws ``metrics``' lr, the value at each epoch's start.
    The legends sit under the panels, where they cover no point.
    """
    epochs = [m["epoch"] for m in metrics]
    fig = _figure(figsize=(13, 4.2))
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    ax_loss.plot(epochs, [m["train_loss"] for m in metrics], "o-", label="train")
    ax_loss.plot(epochs, [m["test_loss"] for m in metrics], "s-", label="test")
    ax_loss.set(title="Cross-entropy loss", xlabel="epoch", ylabel="loss (nats per image)")
    ax_acc.plot(epochs, [100 * m["train_acc"] for m in metrics], "o-", label="train")
    ax_acc.plot(epochs, [100 * m["test_acc"] for m in metrics], "s-", label="test")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    if lr:
        step_epochs = np.array([int(r["epoch"]) for r in lr])
        ax_lr.plot(_step_positions(step_epochs), [float(r["lr"]) for r in lr], "-", color="tab:green")
        ax_lr.set(title="Learning rate (per optimiser step)")
    else:
        ax_lr.plot([e - 1 for e in epochs], [m["lr"] for m in metrics], "o-", color="tab:green")
        ax_lr.set(title="Learning rate (at the start of each epoch)")
    ax_lr.set(xlabel="epoch", ylabel="learning rate")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc, ax_lr):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if epochs:
        for ax in (ax_loss, ax_acc):
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        ax_lr.set_xlim(min(epochs) - 1, max(epochs))
    for ax in (ax_loss, ax_acc):
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _step_positions(epochs):
    """(S,) where each step happened, in epochs: step k (from 0) of the n steps of epoch e at e - 1 + k / n."""
    _, first, inverse, counts = np.unique(epochs, return_index=True, return_inverse=True, return_counts=True)
    within = np.arange(len(epochs)) - first[inverse]
    return epochs - 1 + within / counts[inverse]


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


def write_curves(trainer, metrics):
    """A Trainer log writer: draw ``curves.png`` in the trainer's run folder from ``metrics``
    and the trainer's per-step learning rates (the rows of ``lr.csv``).

        Trainer(config, log_writers=[minise.viz.write_curves]).fit()
    """
    if metrics:
        done = metrics[-1]["epoch"]  # after Ctrl-C: the steps of the completed epochs only, as in metrics
        plot_curves(metrics, trainer.run_dir / "curves.png",
                    lr=[r for r in getattr(trainer, "lr_rows", ()) if int(r["epoch"]) <= done],
                    title=f"{trainer.config.model} on {trainer.config.dataset}")
