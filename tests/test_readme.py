"""The README's Python examples run as printed, and do what their comments say."""

import contextlib
import io
import math
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _run(code):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    return printed.getvalue()


def test_the_readme_has_its_python_examples():
    assert len(BLOCKS) >= 2 and any("optimizer.step()" in block for block in BLOCKS)


def test_the_autograd_example_prints_two_x():
    (block,) = [b for b in BLOCKS if "y.backward()" in b]
    printed = _run(block)
    assert printed.startswith("tensor(") and re.findall(r"\d+\.", printed) == ["2.", "4.", "6.", "8."]


def test_the_training_step_example_builds_the_model_and_takes_one_step():
    (block,) = [b for b in BLOCKS if "optimizer.step()" in b]
    namespace = {"__name__": "readme"}
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["model"].num_parameters() == 272_095  # the comment's count (DESIGN.md)
    loss = float(re.fullmatch(r"loss (\d+\.\d+)\n", printed.getvalue()).group(1))
    assert abs(loss - math.log(10)) < 0.5  # an untrained 10-class model: about ln(10), as the comment says
    assert all(p.grad is not None for p in namespace["model"].parameters())  # the step had gradients
