"""Reductions (sum, mean, max, min, norm over axes), each with its backward.

Two spellings, two meanings (the rule of DESIGN.md):

- NumPy's, ``x.max(axis=1, keepdims=True)``: the values, an int or a tuple of axes;
- PyTorch's, ``x.max(1)`` / ``x.max(dim=1)``: ``(values, indices)`` along one dim, as ``torch.max``.
  ``x.max()`` (no dim) is the 0-d maximum in both.
"""

import builtins
from collections import namedtuple

import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor
from .arithmetic import maximum, minimum
from .shape import wrap_dim

# what torch.max(x, dim) returns: a named pair, so both `values, indices = ...` and `.values` work
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


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


class MaxDim(Function):
    """y = max of x along one ``dim``, and the index where it was found (``self.indices``), as torch.max(x, dim).

    dy/dx = 1 at that index only (the first maximum; a NaN counts as the maximum, as in PyTorch),
    so unlike the tie-sharing :class:`Max` the whole gradient goes to one element.
    """

    pick = "argmax"

    def __init__(self, dim, keepdim=False):
        self.dim, self.keepdim = dim, keepdim

    def forward(self, x):
        xp = get_array_module(x)
        self.input_shape = x.shape
        self.axis = wrap_dim(self.dim, x.ndim)
        if x.ndim == 0:
            x = x.reshape(1)
        if x.shape[self.axis] == 0:
            raise IndexError(f"{self.pick[3:]}(): Expected reduction dim {self.axis} to have non-zero size, "
                             f"got shape {self.input_shape}")
        index = xp.expand_dims(getattr(xp, self.pick)(x, axis=self.axis), self.axis)
        y = xp.take_along_axis(x, index, axis=self.axis)
        self.index = index
        shape = y.shape if self.keepdim else y.shape[: self.axis] + y.shape[self.axis + 1 :]
        if not self.input_shape:
            shape = ()
        self.indices = index.reshape(shape).astype(np.int64, copy=False)
        return y.reshape(shape)

    def backward(self, gy):
        xp = get_array_module(gy)
        shape = self.input_shape or (1,)
        gx = xp.zeros(shape, dtype=gy.dtype)
        xp.put_along_axis(gx, self.index, gy.reshape(self.index.shape), axis=self.axis)
        return gx.reshape(self.input_shape)


class MinDim(MaxDim):
    """y = min of x along one ``dim`` and its index, as torch.min(x, dim); the gradient goes to that index."""

    pick = "argmin"


class Norm(Function):
    """y = (sum |x|^p)^(1/p) over ``axis`` (p = inf: max |x|).

    dy/dx = sign(x) |x|^(p-1) / y^(p-1), and 0 where y = 0 (as PyTorch's subgradient);
    for p = inf the gradient is sign(x) at the largest |x| (ties share it).
    """

    def __init__(self, p=2, axis=None, keepdims=False):
        self.p, self.axis, self.keepdims = p, axis, keepdims

    def forward(self, x):
        xp = get_array_module(x)
        self.axes = _axes(self.axis, x.ndim)
        a = xp.abs(x)
        if self.p == np.inf:
            y = a.max(axis=self.axes, keepdims=True) if a.size else xp.zeros([1] * x.ndim, x.dtype)
        elif self.p == 2:
            y = xp.sqrt((x * x).sum(axis=self.axes, keepdims=True))
        else:
            y = (a**self.p).sum(axis=self.axes, keepdims=True) ** (1.0 / self.p)
        self.save_for_backward(x, y)
        return y if self.keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, gy):
        x, y = self.saved
        xp = get_array_module(gy)
        g = _expand_reduced(gy, x.shape, self.axes)
        if self.p == np.inf:
            mask = (xp.abs(x) == y).astype(gy.dtype)
            return g * xp.sign(x) * mask / xp.maximum(mask.sum(axis=self.axes, keepdims=True), 1)
        safe = xp.where(y == 0, 1, y)
        if self.p == 1:
            return g * xp.sign(x)
        grad = xp.sign(x) * xp.abs(x) ** (self.p - 1) / safe ** (self.p - 1)
        return g * xp.where(y == 0, 0, grad)


# --- the functions users call -------------------------------------------------
def _reduce_args(axis, keepdims, dim, keepdim):
    """Accept PyTorch's ``dim=`` / ``keepdim=`` as aliases of ``axis`` / ``keepdims``."""
    if dim is not None:
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    return axis, keepdims


def sum(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Sum over ``axis`` (int, tuple, None: all); ``dim=`` / ``keepdim=`` are PyTorch's names for the same."""
    return Sum(*_reduce_args(axis, keepdims, dim, keepdim))(x)


def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Mean over ``axis`` (int, tuple, None: all); ``dim=`` / ``keepdim=`` are PyTorch's names for the same."""
    return Mean(*_reduce_args(axis, keepdims, dim, keepdim))(x)


def _max_or_min(x, dim, keepdim, axis, keepdims, op):
    """The dispatch of the module docstring: PyTorch's spelling gives (values, indices), NumPy's the values."""
    if isinstance(dim, Tensor):  # torch.max(a, b): the elementwise maximum
        return (maximum if op == "max" else minimum)(x, dim)
    if dim is None:
        keepdims = keepdim if keepdims is None else keepdims
        return (Max if op == "max" else Min)(axis, bool(keepdims))(x)
    if axis is not None:
        raise TypeError(f"{op}(): give dim (PyTorch: values and indices) or axis (NumPy: values), not both")
    if isinstance(dim, (tuple, list)):
        raise TypeError(f"{op}(): dim must be one int (values and indices along it, as torch.{op}); for several "
                        f"axes use axis={tuple(dim)} or a{op}(dim=...), which return the values")
    fn = (MaxDim if op == "max" else MinDim)(dim, bool(keepdim or keepdims))
    values = fn(x)
    return (MaxResult if op == "max" else MinResult)(values, Tensor(fn.indices))


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The maximum, spelled as PyTorch or as NumPy (see the module docstring).

    ``max(x)``: 0-d tensor.  ``max(x, dim)`` / ``max(x, dim=d, keepdim=False)``: ``(values, indices)``,
    a named pair as ``torch.max``; indices int64, the first maximum.  ``max(x, axis=a, keepdims=False)``:
    the values over one axis or a tuple of axes (ties share the gradient).  ``max(x, other_tensor)``:
    the elementwise maximum.  Raises IndexError for a dim out of range or an empty reduced dim.
    """
    return _max_or_min(x, dim, keepdim, axis, keepdims, "max")


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The minimum, with the same two spellings as :func:`max`."""
    return _max_or_min(x, dim, keepdim, axis, keepdims, "min")


def amax(x, dim=None, keepdim=False):
    """The values of the maximum over ``dim`` (an int or a tuple; None: all), as ``torch.amax``."""
    return Max(dim, keepdim)(x)


def amin(x, dim=None, keepdim=False):
    """The values of the minimum over ``dim`` (an int or a tuple; None: all), as ``torch.amin``."""
    return Min(dim, keepdim)(x)


def _arg(x, dim, keepdim, pick):
    x = x if isinstance(x, Tensor) else Tensor(x)
    xp = x.xp
    if dim is None:
        index = getattr(xp, pick)(x.data.reshape(-1))
        return Tensor(xp.asarray(index, dtype=np.int64).reshape([1] * x.ndim if keepdim else ()))
    fn = (MaxDim if pick == "argmax" else MinDim)(dim, keepdim)
    fn.forward(x.data)
    return Tensor(fn.indices)


def argmax(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """int64 indices of the first maximum along ``dim`` (None: of the flattened tensor), as ``torch.argmax``."""
    return _arg(x, *_reduce_args(dim, keepdim, axis, keepdims), "argmax")


def argmin(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """int64 indices of the first minimum along ``dim`` (None: of the flattened tensor), as ``torch.argmin``."""
    return _arg(x, *_reduce_args(dim, keepdim, axis, keepdims), "argmin")


def norm(x, p=2, dim=None, keepdim=False):
    """The p-norm over ``dim`` (an int, a tuple, None: all elements), as ``torch.norm``.

    p: a number >= 1, ``float("inf")``, or "fro" (= 2). Returns a 0-d tensor for a full reduction.
    """
    if p == "fro":
        p = 2
    if not (p == np.inf or (isinstance(p, (int, float)) and p >= 1)):
        raise ValueError(f"norm: p must be a number >= 1, inf or 'fro', got {p!r}")
    return Norm(p, dim, keepdim)(x)
