"""Reductions (sum, mean, max, min, norm over dims, argmax, argmin), each with its backward.

Dtypes follow PyTorch: ``sum`` of bools and integers gives int64; ``mean`` of
them is a RuntimeError (PyTorch cannot infer a float dtype for it); float16 is
summed in float32 and returned as float16. Dims are checked by
:mod:`minise.functional.dims` (negative dims count from the end; ``axis=()``
reduces every dim, as ``dim=()`` does in PyTorch).

Two spellings, two meanings (the rule of DESIGN.md):

- NumPy's, ``x.max(axis=1, keepdims=True)``: the values, an int or a tuple of axes;
- PyTorch's, ``x.max(1)`` / ``x.max(dim=1)``: ``(values, indices)`` along one dim, as ``torch.max``.
  ``x.max()`` (no dim) is the 0-d maximum in both.
"""

from collections import namedtuple

import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..dtypes import accumulate_dtype
from ..tensor import Tensor, as_tensor
from .arithmetic import maximum, minimum
from .dims import dim_index, dim_tuple

# what torch.max(x, dim) returns: a named pair, so both `values, indices = ...` and `.values` work
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


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
        self.axis = dim_index(self.dim, x.ndim, self.pick[3:])
        if x.ndim == 0:
            x = x.reshape(1)
        if x.shape[self.axis] == 0:
            raise IndexError(f"{self.pick[3:]}(): Expected reduction dim {self.axis} to have non-zero size, "
                             f"got shape {self.input_shape}")
        pick = xp.argmax if self.pick == "argmax" else xp.argmin
        index = xp.expand_dims(pick(x, axis=self.axis), self.axis)
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
        self.axes = dim_tuple(self.axis, x.ndim, "norm")
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
    """Sum over ``axis`` (int, tuple, None: all), as torch.sum: bool and integer input gives int64.

    ``dim=`` / ``keepdim=`` are PyTorch's names for the same.
    """
    return Sum(*_reduce_args(axis, keepdims, dim, keepdim))(x)


def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=None):
    """Mean over ``axis``, as torch.mean. RuntimeError for integer or bool input (convert with .float())."""
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be floating point, got "
                           f"{x.dtype} (as in PyTorch). Convert first: x.float().mean()")
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


def norm(x, p=2, dim=None, keepdim=False):
    """The p-norm over ``dim`` (an int, a tuple, None: all elements), as ``torch.norm``.

    p: a number >= 1, ``float("inf")``, or "fro" (= 2). Returns a 0-d tensor for a full reduction.
    """
    if p == "fro":
        p = 2
    if not (p == np.inf or (isinstance(p, (int, float)) and p >= 1)):
        raise ValueError(f"norm: p must be a number >= 1, inf or 'fro', got {p!r}")
    return Norm(p, dim, keepdim)(x)


def _arg(x, axis, keepdims, dim, keepdim, op):
    x = as_tensor(x)
    axis, keepdims = _reduce_args(axis, keepdims, dim, keepdim)
    if axis is None:
        if not x.numel():
            raise IndexError(f"{op}(): Expected reduction dim to be specified for input.numel() == 0 "
                             f"(got shape {x.shape})")
        pick = x.xp.argmax if op == "argmax" else x.xp.argmin
        index = pick(x.data.reshape(-1))
        return Tensor(x.xp.asarray(index, dtype=np.int64).reshape((1,) * x.ndim if keepdims else ()))
    (a,) = dim_tuple(axis, x.ndim, op) or (0,)
    _check_nonempty(x.data, axis, (a,) if x.ndim else (), op)
    data = x.data if x.ndim else x.data.reshape(1)
    pick = x.xp.argmax if op == "argmax" else x.xp.argmin
    index = pick(data, axis=a, keepdims=keepdims)
    return Tensor(x.xp.asarray(index, dtype=np.int64).reshape(() if not x.ndim else index.shape))


def argmax(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Index of the maximum (int64, no gradient), as torch.argmax: NaN counts as the maximum,
    ties give the first index, axis=None indexes the flattened tensor."""
    return _arg(x, dim, keepdim, axis, keepdims, "argmax")


def argmin(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Index of the minimum (int64, no gradient), as torch.argmin: NaN counts as the minimum."""
    return _arg(x, dim, keepdim, axis, keepdims, "argmin")
