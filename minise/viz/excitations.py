"""The paper's Figure 6 as a picture: average SE excitation per channel and class, per stage."""

import numpy as np

from .figure import _figure, _save

__all__ = ["plot_excitations"]


def plot_excitations(excitations, path, classes=None, title=None):
    """The paper's Figure 6: average excitation per channel, per class, one panel per stage.

    ``excitations``: a :class:`minise.analysis.Excitations`. Each panel shows the
    last SE block of one stage: a line per class in ``classes`` (indices; by
    default the four classes whose gates differ most at the last block,
    :meth:`~minise.analysis.Excitations.distinct_classes`) and the mean over all
    classes in black; its title gives the block's class spread
    (:meth:`~minise.analysis.Excitations.class_spread`).
    """
    names = excitations.stage_blocks()
    if classes is None:
        classes = excitations.distinct_classes(4)
    fig = _figure(figsize=(9, 2.6 * len(names)))
    axes = fig.subplots(len(names), 1, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        means = excitations.means[name]                       # (K, C)
        channels = np.arange(means.shape[1])
        for c in classes:
            ax.plot(channels, means[c], lw=1.0, alpha=0.85, label=excitations.classes[c])
        ax.plot(channels, excitations.mean_all(name), color="black", lw=2.0, label="all classes")
        ax.set(title=f"{name} ({means.shape[1]} channels, class spread {excitations.class_spread(name):.3f})",
               xlabel="channel index",
               ylabel="mean excitation", ylim=(-0.02, 1.02), xlim=(-0.5, means.shape[1] - 0.5))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)  # off the lines
    fig.suptitle(title or "Average SE excitation per channel, by class (last SE block of each stage)")
    return _save(fig, path)
