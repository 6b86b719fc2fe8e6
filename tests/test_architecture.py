"""The package keeps its layers: imports go down the table of docs/architecture.md, never in a circle.

Oracle: the layer table in docs/architecture.md and every import statement in minise/ (read with
``ast``, including imports inside functions), resolved to the minise modules they name.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "minise"
MAX_LINES = 450


def _layers():
    """{top-level name: layer number} from the table in docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    layers = {}
    for number, names in re.findall(r"^\|\s*(\d+)\s*\|([^|]*)\|", text, flags=re.M):
        for name in re.findall(r"`([A-Za-z_]+)`", names):
            layers[name] = int(number)
    assert layers, "docs/architecture.md has no layer table"
    return layers


def _modules():
    """{dotted module name: path} for every .py file of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name, path, modules):
    """The minise modules that ``name`` imports (``from . import x`` resolves to the submodule x)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name.split(".")[0] == "minise")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "minise":
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                targets.add(sub if sub in modules else module)
    return {t for t in targets if t in modules and t != name}


def _top(name):
    parts = name.split(".")
    if len(parts) == 1:
        return "__init__"
    if len(parts) == 2 and parts[1] == "__main__":
        return "__main__"
    return parts[1]


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_module_belongs_to_a_layer_of_the_architecture_page():
    layers = _layers()
    homeless = sorted(name for name in _modules() if _top(name) not in layers)
    assert not homeless, f"modules in no layer of docs/architecture.md: {homeless}"


def test_no_module_imports_from_a_higher_layer():
    layers = _layers()
    upward = []
    for name, targets in _graph().items():
        for target in targets:
            if target == "minise" and _top(name) in ("__init__", "__main__", "train"):
                continue
            if layers.get(_top(target), 0) > layers.get(_top(name), 0):
                upward.append(f"{name} (layer {layers.get(_top(name))}) imports {target} "
                              f"(layer {layers.get(_top(target))})")
    assert not upward, "imports that go up the layers:\n" + "\n".join(sorted(upward))


def test_there_is_no_import_circle():
    graph = _graph()
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_the_checker_sees_a_circle_and_an_upward_import_when_there_is_one(tmp_path):
    """The oracle itself: a crafted pair of modules that import each other, one of them upwards."""
    modules = {"minise.tensor": tmp_path / "tensor.py", "minise.functional": tmp_path / "functional.py"}
    modules["minise.tensor"].write_text("from .functional import add\n")
    modules["minise.functional"].write_text("def f():\n    from .tensor import Tensor\n")
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph == {"minise.tensor": {"minise.functional"}, "minise.functional": {"minise.tensor"}}
    layers = _layers()
    assert layers[_top("minise.functional")] > layers[_top("minise.tensor")]


def test_no_file_of_the_package_is_longer_than_the_limit():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines (split them, one idea per file): {long}"


def test_training_code_draws_nothing_and_plots_do_not_import_training():
    training = [p for p in (PACKAGE / "training").rglob("*.py")] + [PACKAGE / "train.py"]
    for path in training:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import)\s+(matplotlib|\.+viz|minise\.viz)", text, flags=re.M), path
    for path in (PACKAGE / "viz").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*from\s+(\.\.+train(ing)?|minise\.train(ing)?)\b", text, flags=re.M), path
