"""The Chinese tutorials stay in step with the English ones, and run.

Oracles: the English notebooks themselves (the zh twins must have the very same code cells, in the
same order; ``tools/sync_notebooks.py --write`` copies them), the glossary's fixed term list (from
the issue that asked for it), and hand-made label tables for ``minise.viz.chinese``.
"""

import importlib
import json
import re
import sys
from pathlib import Path

import pytest
from helpers import notebook_errors

ROOT = Path(__file__).resolve().parent.parent
EN_DIR = ROOT / "tutorials"
ZH_DIR = EN_DIR / "zh"
EN_NOTEBOOKS = sorted(EN_DIR.glob("[0-9][0-9]_*.ipynb"))
ZH_NOTEBOOKS = sorted(ZH_DIR.glob("[0-9][0-9]_*.ipynb"))
CJK = re.compile(r"[\u4e00-\u9fff]")
FIX = "run `python tools/sync_notebooks.py --write` (then `--execute NN` to refresh the outputs)"


def _sync_tool():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        return importlib.import_module("sync_notebooks")
    finally:
        sys.path.remove(str(ROOT / "tools"))


def _read(path):
    return json.loads(path.read_text(encoding="utf-8"))


# --- the twins ---------------------------------------------------------------------


def test_every_english_tutorial_has_a_zh_twin_and_no_zh_notebook_is_an_orphan():
    assert EN_NOTEBOOKS
    assert [p.name for p in ZH_NOTEBOOKS] == [p.name for p in EN_NOTEBOOKS], (
        "tutorials/zh/ must hold one notebook per English tutorial, with the same file name")


@pytest.mark.parametrize("en_path", EN_NOTEBOOKS, ids=[p.stem for p in EN_NOTEBOOKS])
def test_zh_notebook_has_the_same_code_cells_as_its_english_twin(en_path):
    tool = _sync_tool()
    zh_path = ZH_DIR / en_path.name
    assert zh_path.exists(), f"{zh_path.relative_to(ROOT)} is missing"
    same_shape, problems = tool.differences(_read(en_path), _read(zh_path))
    assert not problems, (
        f"tutorials/zh/{en_path.name} and tutorials/{en_path.name} differ in their code cells:\n"
        + "\n".join(problems) + "\n" + (FIX if same_shape else
        "a code cell was added or removed: add or remove it in the zh notebook by hand, with its "
        "Chinese prose, then " + FIX))


@pytest.mark.parametrize("zh_path", ZH_NOTEBOOKS, ids=[p.stem for p in ZH_NOTEBOOKS])
def test_zh_notebook_prose_is_chinese_and_outputs_are_committed_without_local_paths(zh_path):
    nb = _read(zh_path)
    markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    english = _read(EN_DIR / zh_path.name)
    assert len(markdown) == sum(c["cell_type"] == "markdown" for c in english["cells"]), (
        "each English markdown cell has its Chinese counterpart")
    untranslated = [i for i, c in enumerate(markdown) if not CJK.search("".join(c["source"]))]
    assert not untranslated, f"markdown cells without any Chinese text: {untranslated}"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("outputs") or c["execution_count"] for c in code), (
        f"{zh_path.name}: commit the notebook with its outputs ({FIX})")
    text = zh_path.read_text(encoding="utf-8")
    assert str(ROOT) not in text
    leaked = re.findall(r"(?:/work/|/home/|/root/|/tmp/|[A-Z]:\\\\Users)[^\s\"']*", text)
    assert not leaked, f"absolute paths of a machine in the committed outputs: {leaked[:3]}"
    assert zh_path.stat().st_size < 1_000_000, f"{zh_path.name} is over 1 MB: keep outputs small"


def test_zh_only_cells_are_the_figure_setup_and_come_before_any_figure():
    figure = re.compile(r"plt\.(subplots|figure|show)\(|plot_excitations\(")
    for path in ZH_NOTEBOOKS:
        cells = _read(path)["cells"]
        zh_only = [k for k, c in enumerate(cells) if "zh-only" in c.get("metadata", {}).get("tags", [])]
        draws = [k for k, c in enumerate(cells) if c["cell_type"] == "code" and k not in zh_only
                 and figure.search("".join(c["source"]))]
        if draws:               # a notebook that draws figures turns their labels into Chinese first
            assert zh_only and zh_only[0] < draws[0], f"{path.name}: no zh-only use_chinese cell before the figures"
        for k in zh_only:
            assert "use_chinese(" in "".join(cells[k]["source"]), f"{path.name}: zh-only cell {k} is not the setup"


# --- the sync tool -------------------------------------------------------------------


def _nb(*cells):
    out = []
    for kind, src, *tags in cells:
        cell = {"cell_type": kind, "metadata": {"tags": tags} if tags else {}, "source": src, "id": src[:8]}
        if kind == "code":
            cell.update(outputs=[{"output_type": "stream", "name": "stdout", "text": "old\n"}], execution_count=1)
        out.append(cell)
    return {"cells": out}


def test_sync_copies_english_code_by_position_keeps_zh_prose_and_clears_stale_outputs():
    tool = _sync_tool()
    en = _nb(("markdown", "# Title"), ("code", "x = 1"), ("markdown", "text"), ("code", "print(x + 1)"))
    zh = _nb(("markdown", "# 标题"), ("code", "use_chinese({})", "zh-only"), ("code", "x = 1"),
             ("markdown", "正文"), ("code", "print(x)"))
    same_shape, problems = tool.differences(en, zh)
    assert same_shape and problems == ["code cell 1 differs (first at line 1)"]
    assert tool.sync(en, zh) == [1]
    assert [c["source"] for c in zh["cells"]] == ["# 标题", "use_chinese({})", "x = 1", "正文", "print(x + 1)"]
    assert zh["cells"][4]["outputs"] == [] and zh["cells"][4]["execution_count"] is None
    assert zh["cells"][2]["outputs"], "an unchanged cell keeps its outputs"
    assert tool.differences(en, zh) == (True, [])


def test_sync_reports_an_added_english_cell_instead_of_shifting_code_under_the_wrong_prose():
    tool = _sync_tool()
    en = _nb(("code", "a = 1"), ("code", "b = 2"), ("code", "c = 3"))
    zh = _nb(("code", "a = 1"), ("code", "c = 3"))
    same_shape, problems = tool.differences(en, zh)
    assert not same_shape
    assert problems[0] == "3 code cells in English, 2 in zh (besides zh-only cells)"
    assert any("English code cell 1" in p and "'b = 2'" in p for p in problems)


def test_scrub_paths_makes_this_machines_paths_relative():
    tool = _sync_tool()
    folder = ZH_DIR
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "stream", "text": [f"run folders in {folder}/runs\n"]},
        {"output_type": "execute_result", "data": {"text/plain": f"'{tool.ROOT}/data'"}},
        {"output_type": "stream", "text": f"CIFAR-10 not found in {Path.home()}/.cache/minise\n"}]}]}
    tool.scrub_paths(nb, folder)
    assert nb["cells"][0]["outputs"][0]["text"] == "run folders in runs\n"
    assert nb["cells"][0]["outputs"][1]["data"]["text/plain"] == "'data'"
    assert nb["cells"][0]["outputs"][2]["text"] == "CIFAR-10 not found in ~/.cache/minise\n"


# --- Chinese figure labels ---------------------------------------------------------------


def test_translate_replaces_whole_words_longest_first_and_exact_labels_whole():
    from minise.viz.chinese import translate

    table = {"ring": "圆环", "train": "训练", "training images": "训练图像", "epoch": "轮次",
             "loss": "损失", "Loss": "损失曲线", "$z_c$": "BAD"}
    assert translate("ring", table) == "圆环"
    assert translate("1600 training images", table) == "1600 训练图像"        # longest key first
    assert translate("training set", table) == "training set"                # "train" is not a whole word here
    assert translate("resnet20 train", table) == "resnet20 训练"
    assert translate("Loss", table) == "损失曲线"                             # exact match wins
    assert translate("loss per epoch", table) == "损失 per 轮次"
    assert translate("", table) == "" and translate("loss", {}) == "loss"


def test_use_chinese_without_a_cjk_font_warns_and_keeps_english_labels(monkeypatch):
    pytest.importorskip("matplotlib")
    import minise.viz.chinese as pz

    monkeypatch.setattr(pz, "find_cjk_font", lambda: None)
    with pytest.warns(UserWarning, match="fonts-noto-cjk"):
        assert pz.use_chinese({"loss": "损失"}) is None
    assert pz.translate("loss") == "loss"


def test_use_chinese_routes_every_matplotlib_text_through_the_table(monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import minise.viz.chinese as pz

    monkeypatch.setattr(pz, "find_cjk_font", lambda: "DejaVu Sans")     # any installed font will do here
    before = list(matplotlib.rcParams["font.sans-serif"])
    try:
        assert pz.use_chinese({"epoch": "轮次", "train loss": "训练损失", "Loss": "损失"}) == "DejaVu Sans"
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0], label="train loss")
        ax.set_xlabel("epoch")
        ax.set_title("Loss")
        ax.set_xticks([0, 1], ["epoch", "other"])
        legend = ax.legend()
        assert (ax.get_xlabel(), ax.get_title()) == ("轮次", "损失")
        assert [t.get_text() for t in legend.get_texts()] == ["训练损失"]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["轮次", "other"]
        plt.close(fig)
    finally:
        pz._state["table"] = None
        matplotlib.rcParams["font.sans-serif"] = before


def test_find_cjk_font_names_a_font_matplotlib_can_draw_chinese_with():
    pytest.importorskip("matplotlib")
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    from minise.viz.chinese import find_cjk_font

    name = find_cjk_font()
    if name is None:
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    path = font_manager.findfont(font_manager.FontProperties(family=name), fallback_to_default=False)
    charmap = FT2Font(path).get_charmap()
    assert all(ord(ch) in charmap for ch in "挤压激励重标定")


# --- the glossary ---------------------------------------------------------------------

GLOSSARY_TERMS = ["张量", "自动微分", "计算图", "反向传播", "卷积", "池化", "全局平均池化", "批归一化",
                  "全连接层", "挤压", "激励", "重标定", "重加权", "降维比", "门控", "残差"]


def test_glossary_fixes_every_term_the_tutorials_use_with_its_english_name():
    glossary = (ROOT / "docs" / "glossary.zh.md").read_text(encoding="utf-8")
    rows = [r for r in glossary.splitlines() if r.startswith("|") and CJK.search(r)]
    missing = [t for t in GLOSSARY_TERMS if not any(t in r for r in rows)]
    assert not missing, f"docs/glossary.zh.md has no table row for: {missing}"
    without_english = [r for r in rows if not re.search(r"[A-Za-z]{3,}", r)]
    assert not without_english, f"glossary rows without the English term: {without_english}"
    prose = "".join("".join(c["source"]) for p in ZH_NOTEBOOKS for c in _read(p)["cells"]
                    if c["cell_type"] == "markdown")
    unused = [t for t in ["张量", "自动微分", "计算图", "反向传播", "卷积", "池化", "挤压", "激励", "重标定",
                          "降维比", "门控", "残差"] if t not in prose]
    assert not unused, f"glossary terms the Chinese tutorials never use: {unused}"


# --- the notebooks run ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("path", ZH_NOTEBOOKS, ids=[p.stem for p in ZH_NOTEBOOKS])
def test_zh_notebook_runs_top_to_bottom(path, monkeypatch, tmp_path):
    assert not notebook_errors(path, monkeypatch, tmp_path)
