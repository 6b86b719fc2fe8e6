"""Reductions (sum, mean, max, min over axes), each with its backward."""

import builtins

import numpy as np

from ..autograd import Function
from ..backend import get_array_module


def _axes(axis, ndim):
    """Normalise an int / tuple / None axis to a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    out = []
    for a in axis:
        if not -ndim <= a < builtins.max(ndim, 1):
            raise ValueError(f"reduction: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % builtins.max(ndim, 1))
    return tuple(sorted(out))


def _expand_reduced(g, shape, axes):
    """Put back the reduced axes (size 1) so ``g`` broadcasts against the input."""
    keep = [1 if i in axes else n for i, n in enumerate(shape)]
    return g.reshape(keep)


class Sum(Function):
    """y = sum of x over ``axis``.   dy/dx = 1: the gradient is copied to every summed element."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = _axes(self.axis, x.ndim)
        self.save_for_backward(x.shape)
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        (shape,) = self.saved
        xp = get_array_module(gy)
        return xp.broadcast_to(_expand_reduced(gy, shape, self.axes), shape)


class Mean(Function):
    """y = mean of x over ``axis``.   dy/dx = 1 / (number of elements averaged)."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = _axes(self.axis, x.ndim)
        self.count = int(np.prod([x.shape[a] for a in self.axes])) if self.axes else 1
        self.save_for_backward(x.shape)
        return x.mean(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        (shape,) = self.saved
        xp = get_array_module(gy)
        return xp.broadcast_to(_expand_reduced(gy, shape, self.axes) / self.count, shape)


class Max(Function):
    """y = max of x over ``axis``.

    dy/dx = 1 at the maximum. With ties the gradient is shared evenly among
    the tied elements (as ``torch.amax`` and the full ``torch.max()``).
    """

    reduce = "max"

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = _axes(self.axis, x.ndim)
        y = getattr(x, self.reduce)(axis=self.axes, keepdims=True)
        self.save_for_backward(x, y)
        return y if self.keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, gy):
        x, y = self.saved
        mask = (x == y).astype(gy.dtype)
        mask /= mask.sum(axis=self.axes, keepdims=True)
        return _expand_reduced(gy, x.shape, self.axes) * mask


class Min(Max):
    """y = min of x over ``axis``; the gradient goes to the minimum (ties share it)."""

    reduce = "min"


# --- the functions users call -------------------------------------------------
def _reduce_args(axis, keepdims, dim, keepdim):
    """Accept PyTorch's ``dim=`` / ``keepdim=`` as aliases of ``axis`` / ``keepdims``."""
    if dim is not None:
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    return axis, keepdims


def sum(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return Sum(*_reduce_args(axis, keepdims, dim, keepdim))(x)


def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return Mean(*_reduce_args(axis, keepdims, dim, keepdim))(x)


def max(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return Max(*_reduce_args(axis, keepdims, dim, keepdim))(x)


def min(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    return Min(*_reduce_args(axis, keepdims, dim, keepdim))(x)
