"""Every array-module name minise calls exists in CuPy (and in NumPy), checked without a GPU.

The ops are written once against ``xp`` (NumPy or CuPy, whichever owns the inputs), so a name
NumPy has and CuPy lacks (``xp.lib.stride_tricks.sliding_window_view`` in old CuPy, say) only
fails on a GPU, which most runs of this suite never see. CuPy imports on a machine without
one, so its names can be checked anywhere it is installed.

The scan reads the package's source (``ast``) and collects every attribute chain that starts
at an array module: ``xp.<name>`` (also ``self.xp.<name>``, ``x.xp.<name>``),
``get_array_module(...).<name>``, and ``cupy.<name>`` / ``_cupy.<name>`` where backend and the
CLI use CuPy directly.
"""

import ast
from pathlib import Path

import numpy as np
import pytest

import minise

PACKAGE = Path(minise.__file__).parent
_MODULE_ROOTS = ("cupy", "_cupy")     # names that hold the cupy module itself
# Attributes that numpy.ndarray has and cupy.ndarray lacks, used in minise on something else:
_NOT_ARRAY_ATTRIBUTES = {
    "to_device": "backend.to_device(array, device), minise's own function",
}


def _chain(node):
    """``a.b.c`` -> (root, ["b", "c"]); root is a Name's id, "get_array_module()" for a call of it, or None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    parts.reverse()
    if isinstance(node, ast.Name):
        return node.id, parts
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name == "get_array_module":
            return "get_array_module()", parts
    return None, parts


def array_module_names():
    """{(kind, dotted name): ["file:line", ...]} for every array-module name minise uses.

    kind is "xp" (NumPy or CuPy) or "cupy" (CuPy only: backend's direct uses).
    """
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or id(node) in inner:
                continue                                   # only the outermost node of a chain
            root, parts = _chain(node)
            if root in _MODULE_ROOTS:
                kind, name = "cupy", parts
            elif root in ("xp", "get_array_module()"):
                kind, name = "xp", parts
            elif "xp" in parts[:-1]:                       # self.xp.zeros, x.xp.argmax
                kind, name = "xp", parts[parts.index("xp") + 1:]
            else:
                continue
            if name:
                where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                found.setdefault((kind, ".".join(name)), []).append(where)
    return found


def _missing(module, names):
    missing = {}
    for (_, name), where in names.items():
        obj = module
        for part in name.split("."):
            if not hasattr(obj, part):
                missing[name] = where
                break
            obj = getattr(obj, part)
    return missing


def test_the_scan_finds_the_calls_the_ops_are_known_to_make():
    names = {name for _, name in array_module_names()}
    # one of each form: xp.<f>, a nested module, a ufunc method, self.xp, get_array_module(),
    # and backend's direct cupy calls
    for expected in ("matmul", "lib.stride_tricks.as_strided", "add.at", "argmax", "take_along_axis",
                     "random.random", "cuda.runtime.getDeviceCount"):
        assert expected in names, f"the scan missed {expected!r}: found {sorted(names)}"


def test_numpy_has_every_xp_name_minise_calls():
    names = {key: where for key, where in array_module_names().items()
             if key[0] == "xp" and not key[1].startswith("cuda.")}   # xp.cuda: only on the GPU branch
    assert _missing(np, names) == {}


def test_cupy_has_every_array_module_name_minise_calls():
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (it imports without a GPU: "
                                              "pip install cupy-cuda12x to run this check)")
    missing = _missing(cupy, array_module_names())
    assert missing == {}, f"CuPy {cupy.__version__} lacks these names that minise calls: {missing}"


def test_cupy_arrays_have_every_numpy_array_attribute_minise_uses():
    """Any attribute name used in the package that numpy.ndarray has must exist on cupy.ndarray.

    A superset check (it cannot tell an array's ``.max`` from another object's), so a name
    that NumPy arrays have and CuPy arrays lack fails here unless it is listed, with the
    reason, in _NOT_ARRAY_ATTRIBUTES.
    """
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    used = set()
    for path in PACKAGE.rglob("*.py"):
        used |= {n.attr for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(n, ast.Attribute)}
    lacking = {a for a in used if hasattr(np.ndarray, a) and not hasattr(cupy.ndarray, a)}
    assert lacking - set(_NOT_ARRAY_ATTRIBUTES) == set()
    assert set(_NOT_ARRAY_ATTRIBUTES) <= lacking, "an entry of _NOT_ARRAY_ATTRIBUTES is no longer needed"
