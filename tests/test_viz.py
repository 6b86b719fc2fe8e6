"""Graph pictures (DOT text, rendered by Graphviz) and gradient-health plots.

Oracles: the ops the backward tracer sees on the same graph (every one must be
in the picture), Graphviz itself (the text must parse; its SVG must hold one
node per op and leaf), and the records the plot was given.
"""

import math
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import TinySENet

import minise as ms
import minise.functional as F
from minise import viz
from minise.debug import GradHealthRecord, write_grad_health_csv

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (dot) is not installed")


def se_net_loss(seed=0):
    ms.manual_seed(seed)
    net = TinySENet(stage="layer1")
    x = ms.tensor(np.random.default_rng(seed).standard_normal((2, 4, 3, 3)).astype(np.float32))
    return net, (net(x) ** 2).mean()


def op_nodes(dot):
    """{node id: first label line} of the op nodes (ellipses) in DOT text."""
    return dict(re.findall(r'^\s*(op\d+) \[label="([^"\\]+)', dot, flags=re.M))


def dot_svg(dot):
    proc = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def test_to_dot_draws_every_op_and_leaf_of_a_small_graph():
    x = ms.tensor([[1.0, 2.0]], requires_grad=True)
    w = ms.tensor([[3.0], [4.0]], requires_grad=True)
    x.name = "x"
    loss = F.relu(x @ w + 1.0).sum()
    dot = viz.to_dot(loss, params={"w": w})
    assert sorted(op_nodes(dot).values()) == ["Add", "MatMul", "ReLU", "Sum"]
    assert 'label="x\\n(1, 2)"' in dot and 'label="w\\n(2, 1)"' in dot
    assert 'label="const\\n= 1"' in dot  # the Python number became a constant leaf
    assert len(re.findall(r"->", dot)) == 6  # x -> MatMul <- w; MatMul -> Add <- 1; Add -> ReLU -> Sum
    assert "#c8f0b0" in dot.split("Sum")[1].split("\n")[0]  # the tensor drawn is highlighted


@needs_dot
def test_to_dot_of_an_se_network_parses_and_holds_every_op_backward_visits():
    net, loss = se_net_loss()
    dot = viz.to_dot(loss)
    with ms.trace_backward() as tr:
        loss.backward()
    ops = op_nodes(dot)
    assert sorted(ops.values()) == sorted(r.op for r in tr.records)
    svg = dot_svg(dot)
    n_leaves = len(re.findall(r"^\s*t\d+ \[", dot, flags=re.M))
    assert svg.count('class="node"') == len(ops) + n_leaves
    assert svg.count('class="cluster"') == len(re.findall(r"subgraph cluster_", dot))


def test_to_dot_groups_ops_into_nested_module_clusters_and_names_parameters():
    net, loss = se_net_loss()
    dot = viz.to_dot(loss)
    for path in ("layer1 (Sequential)", "layer1.0 (SEResidualBlock)", "layer1.1.se (SEBlock)",
                 "layer1.1.se.fc2 (Linear)"):
        assert f'label="{path}"' in dot
    # clusters nest: the fc2 cluster opens after (inside) the se cluster, which is inside layer1.1
    order = [dot.index(f'label="{p}"') for p in ("layer1 (Sequential)", "layer1.1 (SEResidualBlock)",
                                                  "layer1.1.se (SEBlock)", "layer1.1.se.fc2 (Linear)")]
    assert order == sorted(order)
    # parameters are named from their modules without params=
    for name in ("layer1.0.se.fc1.weight", "layer1.1.se.fc2.bias", "fc.weight"):
        assert f'label="{name}\\n' in dot
    block = dot[dot.index('label="layer1.1.se.fc2 (Linear)"'):]
    assert block.index("layer1.1.se.fc2.weight") < block.index("}")  # drawn inside its module


def test_to_dot_collapses_modules_into_one_node_each():
    net, loss = se_net_loss()
    full = viz.to_dot(loss)
    top = viz.to_dot(loss, collapse_modules=True)
    blocks = viz.to_dot(loss, collapse_modules=2)
    n_ops = len(op_nodes(full))
    for dot, groups in ((top, ["layer1: Sequential", "fc: Linear"]),
                        # fc is shallower: its op stays
                        (blocks, ["layer1.0: SEResidualBlock", "layer1.1: SEResidualBlock"])):
        labels = re.findall(r'^\s*g\d+ \[label="([^"]+)"', dot, flags=re.M)
        assert sorted(lab.split("\\n")[0] for lab in labels) == sorted(groups)
        counted = sum(int(re.search(r"\\n(\d+) ops?:", lab).group(1)) for lab in labels)
        assert counted + len(op_nodes(dot)) == n_ops  # every op is in exactly one node
    assert "layer1.0.se.fc1.weight" not in top  # parameters fold into their module's node
    labels = dict(re.findall(r'label="(\w+): \w+\\n[^"]*\\n(\d+) params?"', top))
    assert labels == {"layer1": "8", "fc": "2"}  # 2 SE blocks x (fc1, fc2) x (weight, bias); fc's own two


@needs_dot
def test_collapsed_pictures_parse():
    _, loss = se_net_loss()
    for depth in (True, 2, 3):
        assert "<svg" in dot_svg(viz.to_dot(loss, collapse_modules=depth))


def test_to_dot_after_backward_without_retain_graph_explains_what_to_do():
    _, loss = se_net_loss()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        viz.to_dot(loss)


def test_to_dot_after_retained_backward_shows_gradient_statistics():
    x = ms.tensor([[1.0, -2.0, 3.0]], requires_grad=True)
    y = x * 2.0
    y.retain_grad()
    loss = (y ** 2).sum()
    with ms.trace_backward() as tr:
        loss.backward(retain_graph=True)
    dot = viz.to_dot(loss, params={"x": x}, trace=tr)
    gx = 8 * np.array([1.0, -2.0, 3.0])  # d/dx sum((2x)^2) = 8x
    assert f"|grad| {np.linalg.norm(gx):.3g}  max {np.abs(gx).max():.3g}" in dot
    mul_line = next(line for line in dot.splitlines() if 'label="Mul' in line)
    assert f"|grad_out| {np.linalg.norm(4 * np.array([1.0, -2.0, 3.0])):.3g}" in mul_line  # gy = 2y = 4x
    pow_line = next(line for line in dot.splitlines() if 'label="Pow' in line)
    assert f"|grad_out| {np.linalg.norm(np.ones(3)):.3g}" in pow_line
    without = viz.to_dot(loss, show_grad=False)
    assert "|grad" not in without


def test_to_dot_draws_a_non_finite_gradient_in_red():
    x = ms.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * 3.0).sum()
    loss.backward(retain_graph=True)
    x.grad = ms.tensor([np.nan, 1.0])
    line = next(line for line in viz.to_dot(loss).splitlines() if line.strip().startswith("t") and "input" in line)
    assert "#d00000" in line


def test_to_dot_rejects_bad_arguments():
    with pytest.raises(TypeError, match="to_dot"):
        viz.to_dot(np.ones(3))
    with pytest.raises(ValueError, match="collapse_modules"):
        viz.to_dot(ms.tensor([1.0]), collapse_modules=-1)


def test_to_dot_of_a_leaf_is_one_highlighted_box():
    dot = viz.to_dot(ms.tensor([1.0, 2.0], requires_grad=True))
    assert re.findall(r"^\s*(\w+) \[label", dot, flags=re.M) == ["t0"]
    assert 'label="input\\n(2,)"' in dot and "penwidth=2" in dot and "->" not in dot


def test_to_dot_escapes_quotes_in_names():
    x = ms.tensor([1.0], requires_grad=True)
    x.name = 'the "input"'
    dot = viz.to_dot((x * 2.0).sum())
    assert 'label="the \\"input\\"\\n(1,)"' in dot


# --- render ---------------------------------------------------------------------
@needs_dot
def test_render_writes_svg_and_png_and_leaves_no_temporary_file(tmp_path):
    _, loss = se_net_loss()
    dot = viz.to_dot(loss, collapse_modules=2)
    svg = viz.render(dot, tmp_path / "graph.svg")
    png = viz.render(dot, tmp_path / "graph.png")
    assert open(svg).read().lstrip().startswith("<?xml") and "<svg" in open(svg).read()
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.png", "graph.svg"]


def test_render_as_dot_text_needs_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    text = viz.to_dot((ms.tensor([1.0], requires_grad=True) * 2.0).sum())
    path = viz.render(text, tmp_path / "graph.dot")
    assert open(path).read() == text


def test_render_without_graphviz_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(viz.GraphvizNotFoundError, match="apt-get install graphviz") as info:
        viz.render("digraph { a -> b; }", tmp_path / "graph.svg")
    assert "brew install graphviz" in str(info.value) and "conda" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@needs_dot
def test_render_reports_a_dot_syntax_error_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "graph.svg"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="dot failed"):
        viz.render("digraph { a -> ; }", target)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.svg"]


def test_render_rejects_a_format_that_contradicts_the_file_name(tmp_path):
    with pytest.raises(ValueError, match="format"):
        viz.render("digraph {}", tmp_path / "graph.svg", format="png")
    with pytest.raises(ValueError, match="format"):
        viz.render("digraph {}", tmp_path / "graph.jpg2", format="jpg2")


# --- gradient health plots ------------------------------------------------------
def health_records():
    rows = []
    for step in range(1, 6):
        rows.append(GradHealthRecord(0, step, "conv.weight", 1.0 / step, 1e-3 * step))
        rows.append(GradHealthRecord(0, step, "conv.bias", 0.5 / step, math.nan))
    return rows


def test_grad_health_figure_draws_one_line_per_parameter_with_titles_and_labels():
    fig = viz.grad_health_figure(health_records(), title="run 1")
    ax_grad, ax_ratio = fig.axes[:2]
    assert ax_grad.get_title() == "Gradient norm per parameter"
    assert ax_ratio.get_title() == "Update / weight ratio per parameter"
    assert ax_ratio.get_xlabel() == "optimizer step"
    assert "log scale" in ax_grad.get_ylabel() and "log scale" in ax_ratio.get_ylabel()
    assert fig._suptitle.get_text() == "run 1"
    lines = {line.get_label(): line for line in ax_grad.lines}
    np.testing.assert_allclose(lines["conv.weight"].get_ydata(), [1.0 / s for s in range(1, 6)])
    np.testing.assert_allclose(lines["conv.bias"].get_xdata(), range(1, 6))
    ratio_labels = [line.get_label() for line in ax_ratio.lines]
    assert ratio_labels == ["conv.weight", "1e-3 (rule of thumb)"]  # the NaN ratios of the bias are left out


def test_grad_health_figure_filters_parameters():
    fig = viz.grad_health_figure(health_records(), params=["bias"])
    assert [line.get_label() for line in fig.axes[0].lines] == ["conv.bias"]
    with pytest.raises(ValueError, match="no records"):
        viz.grad_health_figure(health_records(), params="nothing")


def test_plot_grad_health_from_a_csv_writes_a_png(tmp_path):
    csv_path = write_grad_health_csv(health_records(), tmp_path / "grad_health.csv")
    out = viz.plot_grad_health(csv_path, tmp_path / "grad_health.png")
    assert open(out, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grad_health.csv", "grad_health.png"]


def test_plot_grad_health_with_many_parameters_uses_a_colour_bar(tmp_path):
    rows = [GradHealthRecord(0, s, f"layer{k}.weight", 1.0 + k, 1e-3) for k in range(12) for s in range(3)]
    fig = viz.grad_health_figure(rows)
    assert len(fig.axes) == 3 and "layer0.weight" in fig.axes[2].get_ylabel()


def test_importing_minise_does_not_import_matplotlib():
    code = "import sys, minise; minise.viz; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
