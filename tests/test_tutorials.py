"""Every tutorial notebook runs top to bottom (in fast mode), so a broken notebook fails CI.

MINISE_FAST=1 tells the notebooks to shrink datasets and epochs. The notebooks check
themselves with asserts; an exception in any cell fails the test and shows the cell.
"""

import os
from pathlib import Path

import pytest
from helpers import notebook_errors

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))


def test_tutorial_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {TUTORIALS}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, monkeypatch, tmp_path):
    assert not notebook_errors(path, monkeypatch, tmp_path)
    assert os.path.getsize(path) < 1_000_000, f"{path.name} is over 1 MB: keep committed outputs small"
