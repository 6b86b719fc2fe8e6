"""The run's pictures: they draw the numbers they are given, label their axes, and are written atomically."""

import os

import numpy as np
import pytest

from minise import viz
from minise.analysis import Excitations
from minise.viz import curves as viz_training
from minise.viz import excitations as viz_excitations

METRICS = [
    {"epoch": 1, "lr": 0.1, "train_loss": 2.0, "train_acc": 0.30, "test_loss": 1.8, "test_acc": 0.35},
    {"epoch": 2, "lr": 0.05, "train_loss": 1.2, "train_acc": 0.60, "test_loss": 1.3, "test_acc": 0.55},
    {"epoch": 3, "lr": 0.0, "train_loss": 0.8, "train_acc": 0.75, "test_loss": 1.0, "test_acc": 0.66},
]


@pytest.fixture
def figures(monkeypatch):
    """Capture the figures instead of writing them, to read back what was drawn."""
    drawn = []
    for module in (viz_training, viz_excitations):
        monkeypatch.setattr(module, "_save", lambda fig, path: drawn.append(fig) or path)
    return drawn


def _excitations():
    rng = np.random.default_rng(0)
    blocks = [f"layer{s}.{b}.se" for s in (1, 2, 3) for b in range(2)]
    means = {name: rng.uniform(0.05, 0.95, size=(4, 8 * int(name[5]))) for name in blocks}
    return Excitations(blocks, means, np.array([3, 5, 2, 6]), ["a", "b", "c", "d"])


def test_curves_draw_train_and_test_loss_and_accuracy_in_percent(figures):
    viz.plot_curves(METRICS, "unused.png", title="se_resnet20 on embedded")
    (fig,) = figures
    loss, acc, lr = fig.axes
    np.testing.assert_allclose(loss.lines[0].get_ydata(), [2.0, 1.2, 0.8])
    np.testing.assert_allclose(loss.lines[1].get_ydata(), [1.8, 1.3, 1.0])
    np.testing.assert_allclose(acc.lines[1].get_ydata(), [35, 55, 66])
    # without lr.csv: metrics' lr is the value at each epoch's start, drawn at that start
    np.testing.assert_allclose(lr.lines[0].get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(lr.lines[0].get_ydata(), [0.1, 0.05, 0.0])
    assert lr.get_title() == "Learning rate (at the start of each epoch)"
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() == "epoch" and ax.get_ylabel()
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["train", "test"]


def test_curves_draw_the_learning_rate_of_every_step_where_it_happened(figures):
    # a one-cycle-like schedule: 4 steps per epoch, peak in epoch 1, near 0 at the end
    rates = np.array([0.004, 0.05, 0.1, 0.09, 0.07, 0.05, 0.03, 0.02, 0.01, 0.005, 0.001, 0.0004])
    lr = [{"step": k + 1, "epoch": k // 4 + 1, "lr": rate} for k, rate in enumerate(rates)]
    viz.plot_curves(METRICS, "unused.png", lr=lr)
    line = figures[0].axes[2].lines[0]
    np.testing.assert_allclose(line.get_xdata(), [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75])
    np.testing.assert_allclose(line.get_ydata(), rates)
    assert figures[0].axes[2].get_title() == "Learning rate (per optimiser step)"


def test_the_curves_legends_cover_no_point(figures):
    viz.plot_curves(METRICS, "unused.png")
    fig = figures[0]
    fig.tight_layout()
    fig.canvas.draw()
    for ax in fig.axes[:2]:
        box = ax.get_legend().get_window_extent()
        for line in ax.lines:
            points = ax.transData.transform(np.column_stack([line.get_xdata(), line.get_ydata()]))
            assert not any(box.contains(x, y) for x, y in points), ax.get_title()


def test_curves_png_is_written_and_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "curves.png"
    viz.plot_curves(METRICS, path)
    good = path.read_bytes()
    assert good[:8] == b"\x89PNG\r\n\x1a\n"

    from matplotlib.figure import Figure

    def crash(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"half a PNG")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", crash)
    with pytest.raises(KeyboardInterrupt):
        viz.plot_curves(METRICS[:2], path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["curves.png"]


def test_confusion_matrix_shades_each_true_class_by_its_fraction(figures, tmp_path):
    matrix = np.array([[8, 2, 0], [1, 1, 2], [0, 0, 5]])
    viz.plot_confusion_matrix(matrix, ["x", "y", "z"], "unused.png")
    ax = figures[0].axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), matrix / matrix.sum(axis=1, keepdims=True))
    assert [t.get_text() for t in ax.texts] == [str(v) for v in matrix.ravel()]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    with pytest.raises(ValueError, match=r"expected a \(3, 3\) matrix for 3 classes, got \(2, 2\)"):
        viz.plot_confusion_matrix(np.eye(2), ["x", "y", "z"], tmp_path / "bad.png")


def test_excitation_plot_has_one_panel_per_stage_with_chosen_classes_and_the_mean(figures):
    exc = _excitations()
    viz.plot_excitations(exc, "unused.png", classes=[1, 3])
    axes = figures[0].axes
    for ax, name, channels in zip(axes, exc.stage_blocks(), (8, 16, 24)):
        spread = exc.means[name].std(axis=0).mean()  # std of the 4 class means per channel, averaged
        assert ax.get_title() == f"{name} ({channels} channels, class spread {spread:.3f})"
        b, d, everyone = ax.lines
        np.testing.assert_allclose(b.get_ydata(), exc.means[name][1])
        np.testing.assert_allclose(d.get_ydata(), exc.means[name][3])
        weighted = (exc.means[name] * exc.counts[:, None]).sum(axis=0) / exc.counts.sum()
        np.testing.assert_allclose(everyone.get_ydata(), weighted)
        assert ax.get_xlabel() == "channel index" and ax.get_ylabel() == "mean excitation"
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["b", "d", "all classes"]


def test_excitation_classes_by_default_are_those_whose_gates_differ_most():
    blocks = ["layer1.0.se", "layer2.0.se"]
    last = np.array([[0.5, 0.5], [0.9, 0.1], [0.5, 0.5], [0.2, 0.9], [0.52, 0.5]])
    exc = Excitations(blocks, {"layer1.0.se": np.full((5, 3), 0.5), "layer2.0.se": last},
                      np.array([2, 2, 2, 2, 2]), list("abcde"))
    # hand math: the mean of all is (0.524, 0.5); squared distances to it: class 1 0.301, class 3 0.265, so
    # class 1 first; then the farthest from it, class 3 (1.13); then the largest distance to the nearest chosen
    # class: class 4 0.262 > classes 0 and 2 0.25; class 2, the twin of class 0, comes last
    assert exc.distinct_classes(3) == [1, 3, 4]
    assert exc.distinct_classes(5) == [1, 3, 4, 0, 2]
    assert exc.class_spread("layer1.0.se") == 0.0
    assert exc.class_spread("layer2.0.se") == pytest.approx(last.std(axis=0).mean())


def test_excitation_plot_writes_a_png(tmp_path):
    path = viz.plot_excitations(_excitations(), tmp_path / "excitations.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
