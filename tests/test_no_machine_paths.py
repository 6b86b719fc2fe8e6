"""Nothing committed for readers holds an absolute path of the machine that produced it.

A notebook's outputs, a docs page or the README that prints ``/home/alice/...`` or ``/tmp/...`` tells
every other reader about one machine, and goes stale the moment it is run elsewhere. The pattern is
the maintainers' (their before-stop hook uses it): a path that starts after a space, quote, bracket or
``=`` at /work, /tmp, /root, /home or /Users; here also when its next name starts with a dot
(``/root/.cache``).
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MACHINE_PATH = re.compile(r"(?<=[\s\"'(=])/(work|tmp|root|home|Users)/[A-Za-z._]")


def _notebook_outputs(path):
    """Every text a notebook's code cells put out (streams, text/plain, text/html, errors)."""
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []):
            yield "".join(output.get("text", ""))
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/"):
                    yield "".join(value)
            yield "\n".join(output.get("traceback", []))


NOTEBOOKS = sorted(ROOT.glob("tutorials/**/*.ipynb"))
PAGES = sorted(ROOT.glob("docs/**/*.md")) + sorted(ROOT.glob("README*.md"))


def _hits(texts):
    return sorted({m.group(0) for text in texts for m in MACHINE_PATH.finditer(" " + text)})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_notebook_output_holds_an_absolute_path_of_a_machine(path):
    assert _hits(_notebook_outputs(path)) == []


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_docs_page_or_readme_holds_an_absolute_path_of_a_machine(path):
    assert _hits([path.read_text(encoding="utf-8")]) == []


def test_the_pattern_finds_the_paths_it_is_meant_to_and_no_others():
    assert _hits(["run folders in /work/main/tutorials/runs", "CIFAR-10 not found in '/root/.cache/minise'",
                  "out=/tmp/x", "(/Users/me/data)"]) == ["/Users/m", "/root/.", "/tmp/x", "/work/m"]
    assert _hits(["/usr/share/datasets/fashion-mnist", "~/.cache/minise", "runs/07_se_resnet20", "a/tmp/b"]) == []
