"""Dimension arguments, checked as PyTorch checks them.

Every op that takes a ``dim`` (or ``axis``) normalises it here, so a negative
dim counts from the end everywhere, a 0-d tensor accepts dims -1 and 0 (as in
PyTorch), and a dim out of range is the same IndexError everywhere::

    IndexError: flatten: Dimension out of range (expected to be in range of [-4, 3], but got 5)
"""

import numpy as np

__all__ = ["dim_index", "dim_tuple"]


def dim_index(dim, ndim, op):
    """``dim`` as an index in [0, ndim) (``ndim`` 0 counts as 1).

    IndexError if out of range, TypeError if not an int (1.5, True, a string).
    """
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__} ({dim!r})")
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"{op}: Dimension out of range (expected to be in range of [{-size}, {size - 1}], "
                         f"but got {dim})")
    return int(dim) % size


def dim_tuple(dims, ndim, op):
    """An int, a tuple/list of ints, or None (every dim) as a sorted tuple of indices.

    As PyTorch: an empty tuple also means every dim; a dim given twice is a RuntimeError.
    """
    if dims is None or (isinstance(dims, (tuple, list)) and len(dims) == 0):
        return tuple(range(ndim))
    if not isinstance(dims, (tuple, list)):
        dims = (dims,)
    out = [dim_index(d, ndim, op) for d in dims]
    if len(set(out)) != len(out):
        repeated = next(d for d in out if out.count(d) > 1)
        raise RuntimeError(f"{op}: dim {repeated} appears multiple times in the list of dims {tuple(dims)}")
    if ndim == 0:
        return ()
    return tuple(sorted(out))
