"""The sample table of the differential harness (tests/test_opinfo.py), in the spirit of PyTorch's OpInfo.

One entry per public op of ``minise.functional`` and per Tensor method: the
minise call, the PyTorch call that should give the same numbers, and a list of
sample inputs. tests/test_opinfo.py runs every (op, sample) pair through both
libraries and compares value, dtype, shape and gradient, or the exception class
when PyTorch refuses the input (then minise must refuse it with the same class).

Adding an op is one entry::

    op("softplus", lambda x: F.softplus(x), lambda x: tF.softplus(x), unary_samples())

A sample's arrays become tensors (``requires_grad`` for floating ones when the op
has gradients); anything else (a number, a tuple, an axis) is passed as it is.
``Sample(..., no_grad="why")`` compares the values only, where minise differs
from PyTorch on purpose (the reason is listed in docs/differences.md).
"""

from dataclasses import dataclass, field

import numpy as np

import minise as ms
import minise.functional as F

try:
    import torch
    import torch.nn.functional as tF
except ImportError:  # the harness is skipped; the table still imports
    torch = tF = None

BOOL, INTS, FLOATS = ("bool",), ("uint8", "int32", "int64"), ("float16", "float32", "float64")
ALL = BOOL + INTS + FLOATS


@dataclass
class Sample:
    args: tuple
    kwargs: dict = field(default_factory=dict)
    desc: str = ""
    no_grad: str = ""          # compare values only, for this reason (a deliberate difference)


@dataclass
class OpInfo:
    name: str
    ms_fn: object
    torch_fn: object
    samples: list
    grad: bool = True          # differentiable: compare gradients of floating inputs


OPS = []


def op(name, ms_fn, torch_fn, samples, grad=True):
    OPS.append(OpInfo(name, ms_fn, torch_fn, list(samples), grad))


# --- sample makers ------------------------------------------------------------------
def make(shape, dtype="float32", kind="normal", seed=0):
    """A deterministic array: normal floats, small ints (0..9 for uint8), random bools,
    ``special`` floats (nan, inf, -inf, 0, 1, -1.5 repeated), ``positive`` floats in [0.5, 2.5)."""
    return np.asarray(_make(shape, dtype, kind, seed))


def _make(shape, dtype, kind, seed):
    rng = np.random.default_rng(seed + 7 * len(shape) + sum(shape))
    if kind == "special":
        values = np.resize(np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, -1.5]), int(np.prod(shape)))
        return values.reshape(shape).astype(dtype)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if np.dtype(dtype).kind in "iu":
        low = 0 if dtype == "uint8" else -5
        return rng.integers(low, 10 if dtype == "uint8" else 6, shape).astype(dtype)
    if kind == "positive":
        return (rng.random(shape) * 2 + 0.5).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def transposed(shape, dtype="float32", kind="normal"):
    """A non-contiguous view: made as reversed(shape), then transposed."""
    return make(tuple(reversed(shape)), dtype, kind).T


def flipped(shape, dtype="float32", kind="normal"):
    """A negative-stride view along the first axis."""
    return make(shape, dtype, kind)[::-1]


def unary_samples(dtypes=ALL, kind="normal"):
    out = []
    for dtype in dtypes:
        for shape in [(), (0,), (5,), (2, 3)]:
            out.append(Sample((make(shape, dtype, kind),), desc=f"{dtype}{list(shape)}"))
    out += [Sample((make((6,), dt, "special"),), desc=f"{dt} nan/inf") for dt in FLOATS if dt in dtypes]
    if "float32" in dtypes:
        out += [Sample((transposed((3, 4), kind=kind),), desc="float32 transposed view"),
                Sample((flipped((4, 3), kind=kind),), desc="float32 negative stride")]
    return out


MIXED = [("int64", "float32"), ("float16", "float32"), ("uint8", "int32"), ("bool", "int64"), ("int32", "int64"),
         ("float32", "float64"), ("int64", "float16"), ("bool", "float32"), ("uint8", "bool")]


def binary_samples(dtypes=ALL, kind="normal", scalars=(2, 2.5, True, -1)):
    out = []
    for dtype in dtypes:
        for sa, sb in [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1), (1, 3)), ((), (2, 3)), ((0, 3), (3,))]:
            out.append(Sample((make(sa, dtype, kind), make(sb, dtype, kind, seed=1)),
                              desc=f"{dtype}{list(sa)},{list(sb)}"))
    for da, db in MIXED:
        if da in dtypes and db in dtypes:
            out.append(Sample((make((2, 3), da, kind), make((2, 3), db, kind, 1)), desc=f"{da},{db}"))
    for da, db in [("float16", "float64"), ("int64", "float64"), ("int32", "int64")]:  # 0-d second operand
        if da in dtypes and db in dtypes:
            out.append(Sample((make((3,), da, kind), make((), db, kind, 1)), desc=f"{da}[3],0-d {db}"))
    for dtype in ("uint8", "int64", "float16", "float32", "bool"):
        if dtype in dtypes:
            for s in scalars:
                out.append(Sample((make((3,), dtype, kind), s), desc=f"{dtype},{s!r}"))
    if "float32" in dtypes:
        out += [Sample((make((6,), "float32", "special"), make((6,), "float32", kind, 1)), desc="nan/inf"),
                Sample((transposed((3, 4), kind=kind), flipped((3, 4), kind=kind)), desc="strided views")]
    return out


def scalar_first(samples):
    """The binary samples whose second operand is a Python number (for the reflected operators)."""
    return [s for s in samples if not isinstance(s.args[1], np.ndarray)]


def reduction_samples(dtypes=ALL):
    out = []
    for dtype in dtypes:
        x = make((3, 4), dtype, seed=2)
        for kw in [{}, {"axis": 0}, {"axis": -1}, {"axis": (0, 1)}, {"axis": 1, "keepdims": True},
                   {"axis": ()}]:
            out.append(Sample((x,), kw, desc=f"{dtype} {kw}"))
    out += [Sample((make((), "float32"),), {}, desc="0-d"),
            Sample((make((), "float32"),), {"axis": -1}, desc="0-d dim -1"),
            Sample((make((0, 3)),), {"axis": 1}, desc="empty, reduce the non-empty dim"),
            Sample((make((0, 3)),), {"axis": 0}, desc="empty, reduce the empty dim"),
            Sample((make((0, 3)),), {}, desc="empty, full"),
            Sample((make((2, 6), kind="special"),), {"axis": 1}, desc="nan/inf", no_grad="amax NaN gradient"),
            Sample((make((2, 6), kind="special"),), {}, desc="nan/inf full"),
            Sample((np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], np.float32),), {"axis": 1}, desc="ties"),
            Sample((transposed((3, 4)),), {"axis": 0}, desc="transposed view"),
            Sample((make((2, 3)),), {"axis": 2}, desc="error: dim out of range"),
            Sample((make((2, 3)),), {"axis": (0, 0)}, desc="error: repeated dim"),
            Sample((make((2, 3)),), {"axis": 1.5}, desc="error: float dim")]
    return out


def _torch_dims(kwargs):
    axis = kwargs.get("axis")
    return (() if axis is None else axis), kwargs.get("keepdims", False)


def torch_reduce(name):
    def run(x, axis=None, keepdims=False):
        if axis is None and not keepdims and name in ("max", "min"):
            return getattr(torch, name)(x)        # the full torch.max(): NaN shares the gradient
        fn = {"max": torch.amax, "min": torch.amin}.get(name) or getattr(torch, name)
        if isinstance(axis, float):
            return fn(x, axis)
        return fn(x, dim=() if axis is None else axis, keepdim=keepdims)
    return run


def torch_arg(name):
    def run(x, axis=None, keepdims=False):
        if axis is None:
            return getattr(torch, name)(x)
        return getattr(torch, name)(x, dim=axis, keepdim=keepdims)
    return run


def arg_samples():
    out = []
    for dtype in INTS + FLOATS:
        x = make((3, 4), dtype, seed=3)
        out += [Sample((x,), {}, desc=f"{dtype} flat"), Sample((x,), {"axis": 1}, desc=f"{dtype} dim 1"),
                Sample((x,), {"axis": -2, "keepdims": True}, desc=f"{dtype} dim -2 keepdim")]
    out += [Sample((make((2, 6), kind="special"),), {"axis": 1}, desc="nan wins"),
            Sample((np.array([[1.0, 3.0, 3.0]], np.float32),), {"axis": 1}, desc="ties: first"),
            Sample((make((0,)),), {}, desc="error: empty"), Sample((make((2, 3)),), {"axis": 2}, desc="error: dim"),
            Sample((make(()),), {"axis": 0}, desc="0-d dim 0")]
    return out


def matmul_samples():
    out = []
    for sa, sb in [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
                   ((2, 3), (5, 3, 4)), ((3,), (5, 3, 2)), ((5, 2, 3), (3,)), ((2, 1, 3, 4), (5, 4, 2)),
                   ((0, 3), (3, 2)), ((2, 0), (0, 3))]:
        out.append(Sample((make(sa), make(sb, seed=1)), desc=f"{list(sa)}@{list(sb)}"))
    for dtype in ("float16", "float64", "int64", "int32", "uint8"):
        out.append(Sample((make((2, 3), dtype), make((3, 2), dtype, seed=1)), desc=f"{dtype}"))
    out += [Sample((transposed((2, 3)), flipped((3, 2))), desc="strided views"),
            Sample((make((2, 3), "bool"), make((3, 2), "bool")), desc="error: bool"),
            Sample((make((2, 3), "int64"), make((3, 2))), desc="error: mixed dtypes"),
            Sample((make(()), make(())), desc="error: 0-d"),
            Sample((make((2, 3)), make((4, 2))), desc="error: inner sizes")]
    return out


# --- elementwise -------------------------------------------------------------------
UNARY = {
    "neg": (F.neg, torch.neg if torch else None, ALL, "normal"),
    "abs": (F.abs, torch.abs if torch else None, ALL, "normal"),
    "exp": (F.exp, torch.exp if torch else None, ALL, "normal"),
    "log": (F.log, torch.log if torch else None, ALL, "positive"),
    "sqrt": (F.sqrt, torch.sqrt if torch else None, ALL, "positive"),
    "relu": (F.relu, torch.relu if torch else None, ALL, "normal"),
    "sigmoid": (F.sigmoid, torch.sigmoid if torch else None, ALL, "normal"),
    "tanh": (F.tanh, torch.tanh if torch else None, ALL, "normal"),
}
for _name, (_ms, _torch, _dtypes, _kind) in UNARY.items():
    op(_name, _ms, _torch, unary_samples(_dtypes, _kind))
    if not hasattr(ms.Tensor, _name):
        continue
    op(f"Tensor.{_name}", lambda x, n=_name: getattr(x, n)(), lambda x, n=_name: getattr(x, n)(),
       unary_samples(_dtypes, _kind)[::3])
op("log of 0 and negatives", F.log, lambda x: torch.log(x), [Sample((np.array([0.0, -1.0, 2.0], np.float32),))])
op("Tensor.__neg__", lambda x: -x, lambda x: -x, unary_samples()[::2])
op("Tensor.__abs__", lambda x: abs(x), lambda x: abs(x), unary_samples()[::2])
op("Tensor.__pos__", lambda x: +x, lambda x: +x, unary_samples(INTS + FLOATS)[::3])

BINARY = {
    "add": (F.add, lambda a, b: torch.add(a, b) if isinstance(a, torch.Tensor) else b.__radd__(a), "normal"),
    "sub": (F.sub, lambda a, b: torch.sub(a, b) if isinstance(a, torch.Tensor) else b.__rsub__(a), "normal"),
    "mul": (F.mul, lambda a, b: torch.mul(a, b) if isinstance(a, torch.Tensor) else b.__rmul__(a), "normal"),
    "div": (F.div, lambda a, b: torch.div(a, b) if isinstance(a, torch.Tensor) else b.__rtruediv__(a), "normal"),
    "pow": (F.pow, lambda a, b: torch.pow(a, b), "positive"),
    "maximum": (F.maximum, lambda a, b: torch.maximum(a, b if isinstance(b, torch.Tensor) else torch.tensor(b)),
                "normal"),
    "minimum": (F.minimum, lambda a, b: torch.minimum(a, b if isinstance(b, torch.Tensor) else torch.tensor(b)),
                "normal"),
}
for _name, (_ms, _torch, _kind) in BINARY.items():
    _samples = binary_samples(kind=_kind)
    if _name in ("maximum", "minimum"):  # torch.maximum takes two tensors: no Python numbers
        _samples = [s for s in _samples if isinstance(s.args[1], np.ndarray)]
    op(_name, _ms, _torch, _samples)
op("maximum ties and nan", F.maximum, torch.maximum if torch else None,
   [Sample((np.array([1.0, np.nan, 3.0, np.nan], np.float32), np.array([np.nan, 2.0, 3.0, np.nan], np.float32)))])
op("minimum ties and nan", F.minimum, torch.minimum if torch else None,
   [Sample((np.array([1.0, np.nan, 3.0, np.nan], np.float32), np.array([np.nan, 2.0, 3.0, np.nan], np.float32)))])
op("pow of integers to negative powers", F.pow, lambda a, b: torch.pow(a, b),
   [Sample((np.array([2, 1, -1, -1, 0]), np.array([-1, -2, -1, -2, -1])), desc="tensor exponent"),
    Sample((np.array([2, 3]), -1), desc="error: Python exponent")])

OPERATORS = {
    "__add__": lambda a, b: a + b, "__radd__": lambda a, b: b + a,
    "__sub__": lambda a, b: a - b, "__rsub__": lambda a, b: b - a,
    "__mul__": lambda a, b: a * b, "__rmul__": lambda a, b: b * a,
    "__truediv__": lambda a, b: a / b, "__rtruediv__": lambda a, b: b / a,
    "__pow__": lambda a, b: a ** b, "__rpow__": lambda a, b: b ** a,
    "__eq__": lambda a, b: a == b, "__ne__": lambda a, b: a != b, "__lt__": lambda a, b: a < b,
    "__le__": lambda a, b: a <= b, "__gt__": lambda a, b: a > b, "__ge__": lambda a, b: a >= b,
}
for _name, _fn in OPERATORS.items():
    _kind = "positive" if "pow" in _name else "normal"
    _samples = binary_samples(kind=_kind)
    if _name.startswith("__r"):   # reflected: the Python number comes first
        _samples = scalar_first(_samples)
        if _name == "__rpow__":   # True ** tensor trips an internal assert in PyTorch 2.x
            _samples = [s for s in _samples if s.args[1] is not True]
    elif _name in ("__pow__",):
        _samples = [s for s in _samples if s.args[1] is not True]
    op(f"Tensor.{_name}", _fn, _fn, _samples[::2] if not _name.startswith("__r") else _samples,
       grad=_name not in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"))
op("Tensor.__matmul__", lambda a, b: a @ b, lambda a, b: a @ b, matmul_samples()[::2])
op("Tensor.__rmatmul__", lambda a, b: b.__rmatmul__(a), lambda a, b: b.__rmatmul__(a),
   [Sample((make((2, 3)), make((3, 4), seed=1)))])

CLIP = [({"min": 0.0}, "min only"), ({"max": 0.5}, "max only"), ({"min": -0.5, "max": 0.5}, "both"),
        ({"min": 2.0, "max": 1.0}, "min > max")]
_clip_samples = [Sample((make((3, 4), dt),), kw, desc=f"{dt} {d}") for dt in FLOATS for kw, d in CLIP]
_clip_samples += [Sample((make((6,), "float32", "special"),), {"min": -1.0, "max": 0.5}, desc="nan/inf"),
                  Sample((make((2, 3), "int64"),), {"min": 0.5, "max": 2.5}, desc="int with float bounds"),
                  Sample((make((2, 3), "int64"),), {"min": -1, "max": 2}, desc="int"),
                  Sample((make((3,), "uint8"),), {"min": -1, "max": 3}, desc="uint8 with -1"),
                  Sample((make((3,), "bool"),), {"min": 0, "max": 1}, desc="bool with int bounds"),
                  Sample((make((0, 2)),), {"min": 0.0}, desc="empty"),
                  Sample((make((3,)),), {}, desc="error: no bounds")]
op("clip", lambda x, **kw: F.clip(x, kw.get("min"), kw.get("max")),
   lambda x, **kw: torch.clamp(x, kw.get("min"), kw.get("max")), _clip_samples)
op("clamp", lambda x, **kw: F.clamp(x, **kw), lambda x, **kw: torch.clamp(x, **kw), _clip_samples[::2])
op("Tensor.clip", lambda x, **kw: x.clip(**kw), lambda x, **kw: x.clip(**kw), _clip_samples[1::2])
op("Tensor.clamp", lambda x, **kw: x.clamp(**kw), lambda x, **kw: x.clamp(**kw), _clip_samples[::3])

# --- reductions --------------------------------------------------------------------
for _name in ("sum", "mean", "max", "min"):
    _samples = reduction_samples()
    op(_name, getattr(F, _name), torch_reduce(_name), _samples)
    op(f"Tensor.{_name}", lambda x, n=_name, **kw: getattr(x, n)(**kw), torch_reduce(_name), _samples[::2])
op("sum with dim=/keepdim=", lambda x: x.sum(dim=1, keepdim=True), lambda x: x.sum(dim=1, keepdim=True),
   [Sample((make((2, 3)),))])
for _name in ("argmax", "argmin"):
    op(_name, getattr(F, _name), torch_arg(_name), arg_samples(), grad=False)
    op(f"Tensor.{_name}", lambda x, n=_name, **kw: getattr(x, n)(**kw), torch_arg(_name), arg_samples()[::2],
       grad=False)

# --- matmul ------------------------------------------------------------------------
op("matmul", F.matmul, lambda a, b: torch.matmul(a, b), matmul_samples())

# --- shape ops ---------------------------------------------------------------------
_shape_src = [("float32", (2, 3, 4)), ("int64", (2, 3, 4)), ("bool", (2, 3, 4)), ("float16", (2, 3, 4))]
_reshape = [Sample((make(s, dt),), {"shape": sh}, desc=f"{dt} -> {sh}") for dt, s in _shape_src
            for sh in [(6, 4), (-1,), (4, -1, 2)]]
_reshape += [Sample((make(()),), {"shape": (1, 1)}, desc="0-d"),
             Sample((make((0, 3)),), {"shape": (3, 0)}, desc="empty"),
             Sample((transposed((3, 4)),), {"shape": (12,)}, desc="transposed view"),
             Sample((make((2, 3)),), {"shape": (4, 2)}, desc="error: size"),
             Sample((make((0, 3)),), {"shape": (-1, 0)}, desc="error: -1 with 0 elements")]
op("reshape", lambda x, shape: F.reshape(x, *shape), lambda x, shape: x.reshape(shape), _reshape)
op("Tensor.reshape", lambda x, shape: x.reshape(shape), lambda x, shape: x.reshape(shape), _reshape[::2])
op("Tensor.view", lambda x, shape: x.view(*shape), lambda x, shape: x.reshape(*shape), _reshape[1::3])

_transpose = [Sample((make((2, 3, 4), dt),), {"dims": d}, desc=f"{dt} {d}") for dt in ("float32", "int64")
              for d in [(0, 1), (-1, 0), (2, 2)]]
_transpose += [Sample((make(()),), {"dims": (0, -1)}, desc="0-d"),
               Sample((make((0, 3)),), {"dims": (0, 1)}, desc="empty"),
               Sample((make((2, 3)),), {"dims": (0, 7)}, desc="error: dim out of range"),
               Sample((make((2, 3)),), {"dims": (0, 1.5)}, desc="error: float dim")]
op("transpose", lambda x, dims: F.transpose(x, *dims), lambda x, dims: torch.transpose(x, *dims), _transpose)
op("Tensor.transpose", lambda x, dims: x.transpose(*dims), lambda x, dims: x.transpose(*dims), _transpose[::2])

_permute = [Sample((make((2, 3, 4), dt),), {"dims": d}, desc=f"{dt} {d}") for dt in ("float32", "uint8", "float64")
            for d in [(2, 0, 1), (-1, -3, -2)]]
_permute += [Sample((make(()),), {"dims": ()}, desc="0-d"), Sample((make((0, 3)),), {"dims": (1, 0)}, desc="empty"),
             Sample((make((2, 3)),), {"dims": (0, 0)}, desc="error: duplicate"),
             Sample((make((2, 3)),), {"dims": (0, 2)}, desc="error: out of range"),
             Sample((make((2, 3)),), {"dims": (0,)}, desc="error: too few")]
op("permute", lambda x, dims: F.permute(x, *dims), lambda x, dims: x.permute(dims), _permute)
op("Tensor.permute", lambda x, dims: x.permute(dims), lambda x, dims: x.permute(dims), _permute[::2])
op("Tensor.T", lambda x: x.T, lambda x: x.T, [Sample((make((2, 3), dt),), desc=dt) for dt in ALL]
   + [Sample((make((3,)),), desc="1-D"), Sample((make(()),), desc="0-d")])

_flatten = [Sample((make((2, 3, 4, 5), dt),), {"start_dim": s, "end_dim": e}, desc=f"{dt} {s}..{e}")
            for dt in ("float32", "int32") for s, e in [(0, -1), (1, -1), (1, 2), (-2, -1), (2, 2)]]
_flatten += [Sample((make(()),), {"start_dim": 0, "end_dim": -1}, desc="0-d"),
             Sample((make((0, 3, 2)),), {"start_dim": 1, "end_dim": -1}, desc="empty batch"),
             Sample((make((2, 3, 4, 5)),), {"start_dim": 5, "end_dim": -1}, desc="error: start out of range"),
             Sample((make(()),), {"start_dim": 0, "end_dim": 1}, desc="error: 0-d end out of range"),
             Sample((make((2, 3, 4)),), {"start_dim": 2, "end_dim": 1}, desc="error: start after end")]
op("flatten", F.flatten, torch.flatten if torch else None, _flatten)
op("Tensor.flatten", lambda x, **kw: x.flatten(**kw), lambda x, **kw: x.flatten(**kw), _flatten[::2])

_items = [(1,), (slice(None), 0), (Ellipsis, slice(None, None, -1)) if False else (Ellipsis, slice(1, None)),
          (None, 0), (np.array([0, 0, 1]),), (np.array([True, False]),), (-1, slice(0, 2))]
_getitem = [Sample((make((2, 3), dt),), {"index": ix}, desc=f"{dt} {ix}") for dt in ("float32", "int64", "float16")
            for ix in _items]
_getitem += [Sample((make((2, 3)),), {"index": (5,)}, desc="error: out of bounds")]


def _torch_index(index):
    return tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i for i in index)


op("getitem", lambda x, index: F.getitem(x, index), lambda x, index: x[_torch_index(index)], _getitem)
op("Tensor.__getitem__", lambda x, index: x[index], lambda x, index: x[_torch_index(index)], _getitem[::2])

_cat = [Sample((make((2, 3), da), make((1, 3), db, seed=1)), {"axis": 0}, desc=f"{da},{db}")
        for da, db in [("float32", "float32"), ("int64", "float32"), ("float16", "float64"), ("bool", "uint8")]]
_cat += [Sample((make((2, 3)), make((2, 1))), {"axis": -1}, desc="dim -1"),
         Sample((make((0, 3)), make((2, 3))), {"axis": 0}, desc="empty piece"),
         Sample((make((2,)), make((2,))), {"axis": 1}, desc="error: dim out of range")]
op("cat", lambda *xs, axis: F.cat(list(xs), axis), lambda *xs, axis: torch.cat(xs, axis), _cat)
op("concatenate", lambda *xs, axis: F.concatenate(list(xs), axis=axis), lambda *xs, axis: torch.cat(xs, dim=axis),
   _cat[::2])
_stack = [Sample((make((2, 3), da), make((2, 3), db, seed=1)), {"axis": ax}, desc=f"{da},{db} dim {ax}")
          for da, db in [("float32", "float32"), ("int64", "float32"), ("float16", "float32")] for ax in (0, -1, 2)]
_stack += [Sample((make(()), make((), seed=1)), {"axis": 0}, desc="0-d"),
           Sample((make((2,)), make((2,))), {"axis": 3}, desc="error: dim out of range")]
op("stack", lambda *xs, axis: F.stack(list(xs), axis), lambda *xs, axis: torch.stack(xs, axis), _stack)


def _torch_pad(x, pad_width, value=0.0):
    flat = []
    for before, after in reversed(pad_width):
        flat += [before, after]
    return tF.pad(x, flat, value=value)


_pad = [Sample((make((2, 3), dt),), {"pad_width": ((1, 0), (2, 1))}, desc=dt) for dt in ("float32", "float64", "int64")]
_pad += [Sample((make((1, 2, 3, 3)),), {"pad_width": ((0, 0), (0, 0), (1, 1), (1, 1)), "value": -1.0}, desc="value"),
         Sample((make((0, 3)),), {"pad_width": ((0, 0), (1, 1))}, desc="empty")]
op("pad", F.pad, _torch_pad, _pad)

_casts = [Sample((make((2, 3), src),), {"dtype": dst}, desc=f"{src}->{dst}")
          for src, dst in [("float32", "float64"), ("float64", "float16"), ("float32", "int64"), ("int64", "float32"),
                           ("bool", "float32"), ("float16", "float32")]]


def _torch_dtype(name):
    return getattr(torch, np.dtype(name).name if name != "bool" else "bool")


op("cast", lambda x, dtype: F.cast(x, dtype), lambda x, dtype: x.to(_torch_dtype(dtype)), _casts)
op("Tensor.astype", lambda x, dtype: x.astype(dtype), lambda x, dtype: x.to(_torch_dtype(dtype)), _casts[::2])
op("Tensor.float", lambda x: x.float(), lambda x: x.float(), [Sample((make((2,), dt),), desc=dt) for dt in ALL])
op("Tensor.double", lambda x: x.double(), lambda x: x.double(), [Sample((make((2,), dt),), desc=dt) for dt in ALL])
op("to_device", lambda x: F.to_device(x, "cpu"), lambda x: x.to("cpu"), unary_samples(("float32", "int64")))
op("Tensor.to", lambda x: x.to("cpu"), lambda x: x.to("cpu"), unary_samples(("float32",))[:2])
op("Tensor.cpu", lambda x: x.cpu(), lambda x: x.cpu(), unary_samples(("float32",))[:2])
op("Tensor.detach", lambda x: x.detach(), lambda x: x.detach(), unary_samples(("float32", "int64"))[::2], grad=False)

# --- conversions to Python -----------------------------------------------------------
_one = [Sample((make((), dt),), desc=f"0-d {dt}") for dt in ALL] + [Sample((make((1, 1)),), desc="(1, 1)"),
                                                                  Sample((make((2,)),), desc="error: 2 elements"),
                                                                  Sample((make((0,)),), desc="error: empty")]
op("Tensor.item", lambda x: x.item(), lambda x: x.item(), _one, grad=False)
op("Tensor.__float__", lambda x: float(x), lambda x: float(x), _one[:7], grad=False)
op("Tensor.__int__", lambda x: int(x), lambda x: int(x), _one[1:7], grad=False)
op("Tensor.__bool__", lambda x: bool(x), lambda x: bool(x), _one, grad=False)
op("Tensor.tolist", lambda x: x.tolist(), lambda x: x.tolist(), unary_samples(("bool", "int64", "float64")), grad=False)
op("Tensor.numpy", lambda x: x.numpy(), lambda x: x.detach().numpy(), unary_samples(ALL)[::3], grad=False)
op("Tensor.__len__", lambda x: len(x), lambda x: len(x), [Sample((make((3, 2)),)), Sample((make((0,)),)),
                                                          Sample((make(()),), desc="error: 0-d")], grad=False)

# --- activations and losses ------------------------------------------------------------
_softmax = [Sample((make((3, 4), dt),), {"axis": ax}, desc=f"{dt} dim {ax}") for dt in FLOATS for ax in (-1, 0)]
_softmax += [Sample((np.array([[1000.0, 0.0, -1000.0]], np.float32),), {"axis": 1}, desc="large logits"),
             Sample((make(()),), {"axis": 0}, desc="0-d"), Sample((make((0, 3)),), {"axis": 1}, desc="empty"),
             Sample((make((2, 3)),), {"axis": 2}, desc="error: dim"), Sample((make((2, 3), "int64"),), {"axis": 1},
                                                                            desc="error: int64")]
for _name in ("softmax", "log_softmax"):
    op(_name, lambda x, axis, n=_name: getattr(F, n)(x, axis), lambda x, axis, n=_name: getattr(tF, n)(x, axis),
       _softmax)
    op(f"{_name} with dim=", lambda x, axis, n=_name: getattr(F, n)(x, dim=axis),
       lambda x, axis, n=_name: getattr(tF, n)(x, dim=axis), _softmax[:2])

_labels = np.array([0, 2, 1])
_ce = [Sample((make((3, 4), dt),), {}, desc=dt) for dt in FLOATS]
_ce += [Sample((make((3, 4)),), {"reduction": r}, desc=r) for r in ("sum", "none")]
_ce += [Sample((make((3, 4)),), {"label_smoothing": 0.1}, desc="label smoothing"),
        Sample((make((3, 4), "int64"),), {}, desc="error: int64 logits")]
op("cross_entropy", lambda x, **kw: F.cross_entropy(x, _labels, **kw),
   lambda x, **kw: tF.cross_entropy(x, torch.from_numpy(_labels), **kw), _ce)
op("cross_entropy of an empty batch", lambda x: F.cross_entropy(x, np.zeros(0, np.int64)),
   lambda x: tF.cross_entropy(x, torch.zeros(0, dtype=torch.long)), [Sample((make((0, 4)),))], grad=False)

_dropout = [Sample((make((3, 4), dt),), {"p": p, "training": t}, desc=f"{dt} p={p} training={t}")
            for dt in FLOATS for p, t in [(0.0, True), (0.5, False), (1.0, True)]]
_dropout += [Sample((make((3,), "int64"),), {"p": 0.5, "training": True}, desc="error: int64")]
op("dropout", F.dropout, tF.dropout if tF else None, _dropout)

# --- layers ----------------------------------------------------------------------------------
_linear = [Sample((make((4, 3), dt), make((2, 3), dt, seed=1), make((2,), dt, seed=2)), desc=dt) for dt in FLOATS]
_linear += [Sample((make((3,)), make((2, 3), seed=1), make((2,), seed=2)), desc="1-D input"),
            Sample((make((5, 4, 3)), make((2, 3), seed=1), make((2,), seed=2)), desc="3-D input"),
            Sample((make((0, 3)), make((2, 3), seed=1), make((2,), seed=2)), desc="empty batch"),
            Sample((transposed((4, 3)), make((2, 3), seed=1), make((2,), seed=2)), desc="transposed input")]
op("linear", F.linear, tF.linear if tF else None, _linear)
op("linear without bias", lambda x, w: F.linear(x, w), lambda x, w: tF.linear(x, w),
   [Sample(s.args[:2], desc=s.desc) for s in _linear])

_conv = [Sample((make((2, 3, 6, 6), dt), make((4, 3, 3, 3), dt, seed=1), make((4,), dt, seed=2)), kw,
                desc=f"{dt} {kw}")
         for dt in ("float32", "float64")
         for kw in [{}, {"stride": 2, "padding": 1}, {"stride": (1, 2), "padding": (0, 1)}]]
_conv += [Sample((make((1, 2, 5, 5), "float16"), make((2, 2, 3, 3), "float16", seed=1), make((2,), "float16", seed=2)),
                 desc="float16"),
          Sample((make((3, 6, 6)), make((4, 3, 3, 3), seed=1), make((4,), seed=2)), {"padding": 1}, desc="unbatched"),
          Sample((make((0, 3, 6, 6)), make((4, 3, 3, 3), seed=1), make((4,), seed=2)), desc="empty batch"),
          Sample((make((1, 1, 4, 4), "int64"), make((1, 1, 2, 2), "int64", seed=1), make((1,), "int64")), desc="int64"),
          Sample((transposed((2, 3, 5, 5)), make((2, 3, 3, 3), seed=1), make((2,), seed=2)), desc="transposed view")]
op("conv2d", F.conv2d, tF.conv2d if tF else None, _conv)


def _pool_samples(op_name):
    out = [Sample((make((2, 3, 6, 6), dt),), kw, desc=f"{dt} {kw}") for dt in ("float32", "float64", "float16")
           for kw in [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
                      {"kernel_size": (2, 3), "stride": 1}]]
    out += [Sample((np.array([[[[1.0, np.nan, np.nan, 2.0], [0.0, 5.0, 5.0, -np.inf]]]], np.float32),),
                   {"kernel_size": 2}, desc="nan and ties"),
            Sample((make((3, 6, 6)),), {"kernel_size": 2}, desc="unbatched"),
            Sample((make((0, 3, 4, 4)),), {"kernel_size": 2}, desc="empty batch"),
            Sample((flipped((2, 3, 4, 4)),), {"kernel_size": 2}, desc="negative stride"),
            Sample((make((1, 2, 4, 4), "int64"),), {"kernel_size": 2}, desc="int64"),
            Sample((make((1, 2, 4, 4), "int64"),), {"kernel_size": 3, "stride": 1, "padding": 1}, desc="int64 padded"),
            Sample((make((1, 2, 4, 4), "uint8"),), {"kernel_size": 2}, desc="uint8"),
            Sample((make((1, 2, 4, 4), "bool"),), {"kernel_size": 2}, desc="bool")]
    if op_name == "avg_pool2d":
        out.append(Sample((np.full((1, 1, 64, 64), 100, np.float16),), {"kernel_size": 64}, desc="float16 sum > 65504"))
    return out


for _name in ("max_pool2d", "avg_pool2d"):
    op(_name, getattr(F, _name), lambda x, n=_name, **kw: getattr(tF, n)(x, **kw), _pool_samples(_name))

_global = [Sample((make((2, 3, 4, 5), dt),), desc=dt) for dt in FLOATS + ("int64",)]
_global += [Sample((np.full((1, 1, 64, 64), 100, np.float16),), desc="float16 sum > 65504"),
            Sample((np.array([[[[1.0, np.nan], [np.nan, 2.0]]]], np.float32),), desc="nan"),
            Sample((np.array([[[[1.0, 3.0], [3.0, 2.0]]]], np.float32),), desc="ties"),
            Sample((make((0, 3, 4, 4)),), desc="empty batch"), Sample((make((2, 3, 4, 5), "bool"),), desc="bool")]
op("global_avg_pool2d", F.global_avg_pool2d, lambda x: x.mean((2, 3)), _global)
op("global_max_pool2d", F.global_max_pool2d, lambda x: tF.max_pool2d(x, x.shape[2:]).flatten(2).squeeze(-1), _global)


def _bn(training, stats=True):
    def ms_fn(x, w, b):
        c = x.shape[1]
        rm = ms.tensor(np.full(c, 0.3, x.dtype if x.dtype.kind == "f" else np.float32)) if stats else None
        rv = ms.tensor(np.full(c, 2.0, x.dtype if x.dtype.kind == "f" else np.float32)) if stats else None
        return F.batch_norm(x, rm, rv, w, b, training)

    def torch_fn(x, w, b):
        c = x.shape[1]
        dtype = x.dtype if x.dtype.is_floating_point else torch.float32
        rm = torch.full((c,), 0.3, dtype=dtype) if stats else None
        rv = torch.full((c,), 2.0, dtype=dtype) if stats else None
        return tF.batch_norm(x, rm, rv, w, b, training)
    return ms_fn, torch_fn


_bn_samples = [Sample((make((4, 3, 2, 2), dt), make((3,), dt, seed=1), make((3,), dt, seed=2)), desc=dt)
               for dt in FLOATS]
_bn_samples += [Sample((make((5, 3)), make((3,), seed=1), make((3,), seed=2)), desc="(N, C)"),
                Sample((make((0, 3, 2, 2)), make((3,), seed=1), make((3,), seed=2)), desc="empty batch"),
                Sample((transposed((4, 3, 2, 2)), make((3,), seed=1), make((3,), seed=2)), desc="transposed view"),
                Sample((make((2, 1, 1, 1), "int64"), make((1,), seed=1), make((1,), seed=2)), desc="error: int64")]
for _training in (True, False):
    op(f"batch_norm training={_training}", *_bn(_training), _bn_samples)
op("batch_norm with batch statistics only", *_bn(True, stats=False), _bn_samples[:3])
op("batch_norm of float16 ones", *_bn(True), [Sample((np.ones((16, 2, 32, 32), np.float16), np.ones(2, np.float16),
                                                       np.zeros(2, np.float16)), desc="sum 16384 per channel")])

# --- im2col / col2im and the helpers ----------------------------------------------------------


def _torch_im2col(x, kernel_size, stride=1, padding=0):
    col = tF.unfold(x, kernel_size, stride=stride, padding=padding)     # (N, C*kh*kw, L)
    return col.permute(1, 0, 2).reshape(col.shape[1], -1)


def _torch_col2im(col, x_shape, kernel_size, stride=1, padding=0):
    n = x_shape[0]
    col = col.reshape(col.shape[0], n, -1).permute(1, 0, 2)
    return tF.fold(col, x_shape[2:], kernel_size, stride=stride, padding=padding)


_im2col = [Sample((make((2, 3, 5, 5), dt),), kw, desc=f"{dt} {kw}") for dt in ("float32", "float64")
           for kw in [{"kernel_size": (3, 3)}, {"kernel_size": (2, 3), "stride": 2, "padding": 1}]]
op("im2col", F.im2col, _torch_im2col, _im2col, grad=False)
_col2im = [Sample((make((27, 50), dt),), {"x_shape": (2, 3, 7, 7), "kernel_size": (3, 3)}, desc=dt)
           for dt in FLOATS[1:]]
_col2im += [Sample((make((18, 18)),), {"x_shape": (2, 3, 5, 5), "kernel_size": (2, 3), "stride": 2, "padding": 1},
                   desc="strided, padded")]
op("col2im", lambda col, **kw: ms.tensor(F.col2im(col.data, **kw)), _torch_col2im, _col2im, grad=False)
op("sum_to", lambda g, shape: ms.tensor(F.sum_to(g.data, shape)), lambda g, shape: g.sum_to_size(shape),
   [Sample((make((4, 3)),), {"shape": sh}, desc=str(sh)) for sh in [(3,), (1, 3), (4, 1), (4, 3), ()]], grad=False)

# the plain-loop references (minise.functional.reference), against PyTorch too
R = F.reference
op("reference.conv2d_reference",
   lambda x, w, **kw: ms.tensor(R.conv2d_reference(x.numpy(), w.numpy(), **kw)),
   lambda x, w, **kw: tF.conv2d(x, w, **kw),
   [Sample((make((1, 2, 5, 5), "float64"), make((3, 2, 3, 3), "float64", seed=1)), kw) for kw in
    [{}, {"stride": 2, "padding": 1}]], grad=False)
for _name in ("max_pool2d", "avg_pool2d"):
    op(f"reference.{_name}_reference",
       lambda x, n=_name, **kw: ms.tensor(getattr(R, f"{n}_reference")(x.numpy(), **kw)),
       lambda x, n=_name, **kw: getattr(tF, n)(x, **kw),
       [Sample((make((1, 2, 6, 6), "float64"),), kw) for kw in [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2,
                                                                                    "padding": 1}]], grad=False)


def _torch_grads(fn, *xs):
    """The gradients of sum(fn(*xs) * g) for PyTorch, g = the deterministic upstream gradient."""
    xs = [x.detach().requires_grad_(True) for x in xs]
    y = fn(*xs)
    g = torch.from_numpy(upstream(tuple(y.shape), np.float64))
    return torch.autograd.grad(y, xs, g)


def upstream(shape, dtype):
    """The gradient the harness feeds backward: distinct values in (-1, 1), deterministic."""
    n = int(np.prod(shape))
    return np.linspace(-0.9, 1.1, n).reshape(shape).astype(dtype) if n else np.zeros(shape, dtype)


op("reference.conv2d_reference_backward",
   lambda x, w, b, **kw: tuple(ms.tensor(a) for a in R.conv2d_reference_backward(
       x.numpy(), w.numpy(), upstream((1, 3, 3, 3), np.float64), **kw)),
   lambda x, w, b, **kw: _torch_grads(lambda *a: tF.conv2d(*a, **kw), x, w, b),
   [Sample((make((1, 2, 5, 5), "float64"), make((3, 2, 3, 3), "float64", seed=1), make((3,), "float64")),
           {"stride": 1, "padding": 0})],
   grad=False)
for _name in ("max_pool2d", "avg_pool2d"):
    op(f"reference.{_name}_reference_backward",
       lambda x, n=_name, **kw: ms.tensor(getattr(R, f"{n}_reference_backward")(x.numpy(), upstream((1, 2, 3, 3),
                                                                                                   np.float64), **kw)),
       lambda x, n=_name, **kw: _torch_grads(lambda a: getattr(tF, n)(a, **kw), x)[0],
       [Sample((make((1, 2, 6, 6), "float64"),), {"kernel_size": 2})], grad=False)
