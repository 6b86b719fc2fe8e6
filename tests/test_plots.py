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
    np.testing.assert_allclose(lr.lines[0].get_ydata(), [0.1, 0.05, 0.0])
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() == "epoch" and ax.get_ylabel()
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["train", "test"]


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
    assert [ax.get_title() for ax in axes] == ["layer1.1.se (8 channels)", "layer2.1.se (16 channels)",
                                               "layer3.1.se (24 channels)"]
    for ax, name in zip(axes, exc.stage_blocks()):
        b, d, everyone = ax.lines
        np.testing.assert_allclose(b.get_ydata(), exc.means[name][1])
        np.testing.assert_allclose(d.get_ydata(), exc.means[name][3])
        weighted = (exc.means[name] * exc.counts[:, None]).sum(axis=0) / exc.counts.sum()
        np.testing.assert_allclose(everyone.get_ydata(), weighted)
        assert ax.get_xlabel() == "channel index" and ax.get_ylabel() == "mean excitation"
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["b", "d", "all classes"]


def test_excitation_plot_writes_a_png(tmp_path):
    path = viz.plot_excitations(_excitations(), tmp_path / "excitations.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
