"""Reductions (sum, mean, max, min over dims, argmax, argmin), each with its backward.

Dtypes follow PyTorch: ``sum`` of bools and integers gives int64; ``mean`` of
them is a RuntimeError (PyTorch cannot infer a float dtype for it); float16 is
summed in float32 and returned as float16. Dims are checked by
:mod:`minise.functional.dims` (negative dims count from the end; ``axis=()``
reduces every dim, as ``dim=()`` does in PyTorch).
"""

import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..dtypes import accumulate_dtype
from ..tensor import Tensor, as_tensor
from .dims import dim_tuple


def _expand_reduced(g, shape, axes):
    """Put back the reduced axes (size 1) so ``g`` broadcasts against the input."""
    keep = [1 if i in axes else n for i, n in enumerate(shape)]
    return g.reshape(keep)


def _sum_dtype(dtype):
    """What sum returns: int64 for bool and integers (as PyTorch), else the input dtype."""
    return np.dtype(np.int64) if dtype.kind in "biu" else dtype


class Sum(Function):
    """y = sum of x over ``axis``.   dy/dx = 1: the gradient is copied to every summed element."""

    op = "sum"

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = dim_tuple(self.axis, x.ndim, self.op)
        self.save_for_backward(x.shape)
        acc = accumulate_dtype(_sum_dtype(x.dtype))          # float16 sums in float32
        y = x.sum(axis=self.axes, keepdims=self.keepdims, dtype=acc)
        return get_array_module(x).asarray(y).astype(_sum_dtype(x.dtype), copy=False)

    def backward(self, gy):
        (shape,) = self.saved
        xp = get_array_module(gy)
        return xp.broadcast_to(_expand_reduced(gy, shape, self.axes), shape)


class Mean(Sum):
    """y = mean of x over ``axis``.   dy/dx = 1 / (number of elements averaged).

    x must be floating point (RuntimeError otherwise, as PyTorch); the mean of
    no elements is nan.
    """

    op = "mean"

    def forward(self, x):
        self.axes = dim_tuple(self.axis, x.ndim, self.op)
        self.count = int(np.prod([x.shape[a] for a in self.axes])) if self.axes else 1
        self.save_for_backward(x.shape)
        with np.errstate(invalid="ignore", divide="ignore"):    # 0 / 0 = nan for an empty mean
            y = x.sum(axis=self.axes, keepdims=self.keepdims, dtype=accumulate_dtype(x.dtype))
            y = get_array_module(x).asarray(y / self.count if self.count else y * np.nan)
        return y.astype(x.dtype, copy=False)

    def backward(self, gy):
        return super().backward(gy / self.count if self.count else gy * 0)


class Max(Function):
    """y = max of x over ``axis``; NaN propagates (a NaN in a slice makes its max NaN).

    dy/dx = 1 at the maximum. With ties the gradient is shared evenly among the
    tied elements, and a NaN maximum shares it among the NaNs (as the full
    ``torch.max()``; see docs/differences.md for ``torch.amax``).
    Empty input: a full reduction raises RuntimeError, a reduction over a
    zero-size dim IndexError, as PyTorch.
    """

    reduce = "max"

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = dim_tuple(self.axis, x.ndim, self.reduce)
        _check_nonempty(x, self.axis, self.axes, self.reduce)
        y = getattr(x, self.reduce)(axis=self.axes, keepdims=True)
        self.save_for_backward(x, y)
        return y if self.keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, gy):
        x, y = self.saved
        mask = x == y
        if y.dtype.kind == "f":
            nan_y = y != y
            if nan_y.any():
                mask |= (x != x) & nan_y
        mask = mask.astype(gy.dtype)
        mask /= mask.sum(axis=self.axes, keepdims=True)
        return _expand_reduced(gy, x.shape, self.axes) * mask


class Min(Max):
    """y = min of x over ``axis``; the gradient goes to the minimum (ties share it; NaN propagates)."""

    reduce = "min"


def _check_nonempty(x, axis, axes, op):
    if x.size:
        return
    if axis is None or (isinstance(axis, (tuple, list)) and not axis):
        raise RuntimeError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0 "
                           f"(got shape {x.shape}). Specify the reduction dim with the 'dim' argument.")
    for a in axes:
        if x.shape[a] == 0:
            raise IndexError(f"{op}(): Expected reduction dim {a} to have non-zero size (got shape {x.shape})")


# --- the functions users call -------------------------------------------------
def _reduce_args(axis, keepdims, dim, keepdim):
    """Accept PyTorch's ``dim=`` / ``keepdim=`` as aliases of ``axis`` / ``keepdims``."""
    if dim is not None:
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    return axis, keepdims


def sum(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Sum over ``axis`` (int, tuple, or None for all), as torch.sum: bool and integer input gives int64."""
    return Sum(*_reduce_args(axis, keepdims, dim, keepdim))(x)


def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Mean over ``axis``, as torch.mean. RuntimeError for integer or bool input (convert with .float())."""
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be floating point, got "
                           f"{x.dtype} (as in PyTorch). Convert first: x.float().mean()")
    return Mean(*_reduce_args(axis, keepdims, dim, keepdim))(x)


def max(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Max over ``axis`` (the values, as torch.amax). See :class:`Max`."""
    return Max(*_reduce_args(axis, keepdims, dim, keepdim))(x)


def min(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Min over ``axis`` (the values, as torch.amin). See :class:`Min`."""
    return Min(*_reduce_args(axis, keepdims, dim, keepdim))(x)


def _arg(x, axis, keepdims, dim, keepdim, op):
    x = as_tensor(x)
    axis, keepdims = _reduce_args(axis, keepdims, dim, keepdim)
    if axis is None:
        if not x.size:
            raise IndexError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0 "
                             f"(got shape {x.shape})")
        index = getattr(x.xp, op)(x.data.reshape(-1))
        return Tensor(x.xp.asarray(index, dtype=np.int64).reshape((1,) * x.ndim if keepdims else ()))
    (a,) = dim_tuple(axis, x.ndim, op) or (0,)
    _check_nonempty(x.data, axis, (a,) if x.ndim else (), op)
    data = x.data if x.ndim else x.data.reshape(1)
    index = getattr(x.xp, op)(data, axis=a, keepdims=keepdims)
    return Tensor(x.xp.asarray(index, dtype=np.int64).reshape(() if not x.ndim else index.shape))


def argmax(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Index of the maximum (int64, no gradient), as torch.argmax: NaN counts as the maximum,
    ties give the first index, axis=None indexes the flattened tensor."""
    return _arg(x, axis, keepdims, dim, keepdim, "argmax")


def argmin(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Index of the minimum (int64, no gradient), as torch.argmin: NaN counts as the minimum."""
    return _arg(x, axis, keepdims, dim, keepdim, "argmin")
