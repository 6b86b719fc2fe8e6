"""Every "next:" hint `minise train` and `minise eval` print is a command that works: run each one.

A tiny run (64 images, batch 16, one epoch) of a model without SE blocks and of one with them; the hints
are read from what the commands printed and run through ``minise.cli.main`` as they are.
"""

import contextlib
import io
import os
import shlex

import pytest

from minise.cli import main

TINY = ["--dataset", "embedded", "--subset", "64", "--batch-size", "16", "--epochs", "1", "--no-progress"]


def _run(argv):
    """``(exit code, stdout)`` of ``minise ARGV``."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(argv)
    return code, printed.getvalue()


def _hints(printed):
    """The commands of the ``next:`` block: the line starting with "next:" and the indented lines after it."""
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("next:"))
    commands = []
    for line in lines[start:]:
        if not (line.startswith("next:") or line.startswith(" ") and line.lstrip().startswith("minise ")):
            break
        commands.append(shlex.split(line.removeprefix("next:").split("#")[0]))
    return commands


@pytest.mark.parametrize("model, has_se", [("resnet20", False), ("se_resnet20", True)])
def test_every_next_hint_after_train_and_eval_runs_and_succeeds(model, has_se, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the hints name the run folder as the user typed it: a relative path
    code, printed = _run(["train", "--model", model, *TINY, "--out", "run"])
    assert code == 0
    hints = _hints(printed)
    assert [h[:2] for h in hints] == [["minise", "eval"], ["minise", "plot"]] + [["minise", "plot"]] * has_se
    assert any("--excitations" in h for h in hints) == has_se  # no SE block, no excitations hint
    for hint in hints:
        code, printed = _run(hint[1:])
        assert code == 0, hint
        if hint[1] == "eval":
            eval_hints = _hints(printed)
            assert eval_hints and all(h[1] == "plot" for h in eval_hints)
            for eval_hint in eval_hints:
                assert _run(eval_hint[1:])[0] == 0, eval_hint
    assert os.path.isfile("run/excitations.png") == has_se
    if not has_se:  # the hint left out would fail, saying why
        code, _ = _run(["plot", "--excitations", "run"])
        assert code == 2


def test_an_eval_of_a_checkpoint_outside_a_run_folder_hints_only_what_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _run(["train", "--model", "resnet20", *TINY, "--out", "run"])[0] == 0
    os.mkdir("loose")
    os.replace("run/best.ckpt", "loose/model.ckpt")  # no metrics.csv beside it, and no SE blocks
    code, printed = _run(["eval", "loose/model.ckpt"])
    assert code == 0 and "next:" not in printed
