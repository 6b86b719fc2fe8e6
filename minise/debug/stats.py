"""Statistics of one array and aligned text tables: what the tracers print."""

import math

from .. import backend
from ..tensor import Tensor


def _as_float64(a):
    xp = backend.get_array_module(a)
    return a.astype(xp.float64, copy=False)


def _norm_array(a):
    """The L2 norm of the whole array as a 0-d float64 array on a's device (no GPU sync)."""
    a = _as_float64(a)
    return backend.get_array_module(a).sqrt((a * a).sum())


def _norm(a):
    """The L2 norm of the whole array, as a Python float (accumulated in float64)."""
    return float(_norm_array(a))


def _mean_absmax(a):
    if a.size == 0:
        return math.nan, math.nan
    xp = backend.get_array_module(a)
    a = _as_float64(a)
    return float(a.mean()), float(xp.abs(a).max())


def _shape_str(shape):
    return str(tuple(int(n) for n in shape))


def _num(value):
    """A statistic for the tables: 3 significant digits, '-' for a missing one."""
    if value is None:
        return "-"
    return f"{value:.3e}"


def _format_table(headers, rows, numeric=()):
    """Rows of strings as an aligned text table; the columns in ``numeric`` are right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row)]

    def line(cells, align_numbers=True):
        parts = [cell.rjust(w) if (align_numbers and i in numeric) else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    out = [line(headers, False), line(["-" * w for w in widths], False)]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def _name_map(params):
    """{id(tensor): (name, tensor)} from a dict name -> tensor or an iterable of (name, tensor) pairs.

    Holding the tensor keeps it alive, so its id cannot be reused by another one.
    """
    if params is None:
        return {}
    items = params.items() if hasattr(params, "items") else params
    names = {}
    for name, t in items:
        if not isinstance(t, Tensor):
            raise TypeError(f"params: expected name -> Tensor pairs (e.g. dict(model.named_parameters())), "
                            f"got {type(t).__name__} for {name!r}")
        names[id(t)] = (str(name), t)
    return names


def _tensor_name(t, names, fn=None):
    """``params`` name, else the parameter's name in the module that ran ``fn``, else ``t.name``, else ""."""
    entry = names.get(id(t))
    if entry is not None:
        return entry[0]
    stack = getattr(fn, "module_stack", ())
    own = getattr(stack[-1], "_parameters", None) if stack else None
    if isinstance(own, dict):
        for key, p in own.items():
            if p is t:
                return f"{fn.module_path}.{key}" if fn.module_path else key
    return t.name or ""
