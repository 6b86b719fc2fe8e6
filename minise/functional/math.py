"""Elementwise math, reductions, shape ops and matmul, each with its backward.

Broadcasting: binary ops follow NumPy's rules. An input that was broadcast
received the same gradient at every copy, so its gradient is the sum over the
broadcast axes: ``sum_to(g, x.shape)``. See docs/derivations.md#broadcasting.
"""

import builtins

import numpy as np

from ..autograd import Function, Tensor, as_tensor, sum_to
from ..backend import get_array_module, to_device, device_of


# --- arithmetic ---------------------------------------------------------------
class Add(Function):
    """y = a + b.   dy/da = 1, dy/db = 1 (then summed back over broadcast axes)."""

    def forward(self, a, b):
        self.save_for_backward(a.shape, b.shape)
        return a + b

    def backward(self, gy):
        a_shape, b_shape = self.saved
        return sum_to(gy, a_shape), sum_to(gy, b_shape)


class Sub(Function):
    """y = a - b.   dy/da = 1, dy/db = -1."""

    def forward(self, a, b):
        self.save_for_backward(a.shape, b.shape)
        return a - b

    def backward(self, gy):
        a_shape, b_shape = self.saved
        return sum_to(gy, a_shape), sum_to(-gy, b_shape)


class Mul(Function):
    """y = a * b.   dy/da = b, dy/db = a."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, gy):
        a, b = self.saved
        ga = sum_to(gy * b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(gy * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b.   dy/da = 1 / b, dy/db = -a / b**2 = -y / b."""

    def forward(self, a, b):
        y = a / b
        self.save_for_backward(a, b, y)
        return y

    def backward(self, gy):
        a, b, y = self.saved
        ga = sum_to(gy / b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-gy * y / b, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    """y = a ** b.   dy/da = b * a**(b-1),  dy/db = y * log(a)  (a > 0 where b needs a gradient)."""

    def forward(self, a, b):
        y = a**b
        self.save_for_backward(a, b, y)
        return y

    def backward(self, gy):
        a, b, y = self.saved
        xp = get_array_module(a)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = sum_to(gy * b * a ** (b - 1), a.shape)
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = xp.where(a > 0, xp.log(xp.where(a > 0, a, 1)), 0)
            gb = sum_to(gy * y * log_a, b.shape)
        return ga, gb


class Neg(Function):
    """y = -x.   dy/dx = -1."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Exp(Function):
    """y = exp(x).   dy/dx = y (saves the output)."""

    def forward(self, x):
        y = get_array_module(x).exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved
        return gy * y


class Log(Function):
    """y = log(x).   dy/dx = 1 / x."""

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log(x)

    def backward(self, gy):
        (x,) = self.saved
        return gy / x


class Sqrt(Function):
    """y = sqrt(x).   dy/dx = 1 / (2 y)."""

    def forward(self, x):
        y = get_array_module(x).sqrt(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved
        return gy / (2 * y)


class Abs(Function):
    """y = |x|.   dy/dx = sign(x)  (0 at x = 0, as PyTorch)."""

    def forward(self, x):
        xp = get_array_module(x)
        self.save_for_backward(xp.sign(x))
        return xp.abs(x)

    def backward(self, gy):
        (sign,) = self.saved
        return gy * sign


class Maximum(Function):
    """y = max(a, b) elementwise.   The gradient goes to the larger input; ties split it half-half (as PyTorch)."""

    def forward(self, a, b):
        xp = get_array_module(a, b)
        self.save_for_backward(a, b)
        return xp.maximum(a, b)

    def backward(self, gy):
        a, b = self.saved
        share_a = (a > b) + 0.5 * (a == b)
        share_a = share_a.astype(gy.dtype)
        return sum_to(gy * share_a, a.shape), sum_to(gy * (1 - share_a), b.shape)


class Minimum(Function):
    """y = min(a, b) elementwise.   The gradient goes to the smaller input; ties split it."""

    def forward(self, a, b):
        xp = get_array_module(a, b)
        self.save_for_backward(a, b)
        return xp.minimum(a, b)

    def backward(self, gy):
        a, b = self.saved
        share_a = ((a < b) + 0.5 * (a == b)).astype(gy.dtype)
        return sum_to(gy * share_a, a.shape), sum_to(gy * (1 - share_a), b.shape)


class Clip(Function):
    """y = min(max(x, low), high).   dy/dx = 1 where low <= x <= high, else 0 (as torch.clamp)."""

    def __init__(self, low=None, high=None):
        self.low, self.high = low, high

    def forward(self, x):
        xp = get_array_module(x)
        inside = xp.ones(x.shape, dtype=bool)
        if self.low is not None:
            inside &= x >= self.low
        if self.high is not None:
            inside &= x <= self.high
        self.save_for_backward(inside)
        return xp.clip(x, self.low, self.high).astype(x.dtype, copy=False)

    def backward(self, gy):
        (inside,) = self.saved
        return gy * inside


# --- matmul -------------------------------------------------------------------
class MatMul(Function):
    """y = a @ b, 2-D or batched (leading dims broadcast, as numpy.matmul).

    dL/da = gy @ b^T,   dL/db = a^T @ gy   (transposing the last two axes);
    1-D operands are treated as a row (a) or a column (b) vector.
    """

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a @ b

    def backward(self, gy):
        a, b = self.saved
        xp = get_array_module(a)
        a2 = a[None, :] if a.ndim == 1 else a          # (1, k)
        b2 = b[:, None] if b.ndim == 1 else b          # (k, 1)
        g2 = gy
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = g2 @ xp.swapaxes(b2, -1, -2)
            ga = sum_to(ga, a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = xp.swapaxes(a2, -1, -2) @ g2
            gb = sum_to(gb, b2.shape).reshape(b.shape)
        return ga, gb


# --- reductions ---------------------------------------------------------------
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


# --- shape ops ----------------------------------------------------------------
class Reshape(Function):
    """y = x viewed with a new shape.   The gradient is reshaped back."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot view a tensor of shape {x.shape} ({x.size} elements) as {self.shape}"
            ) from None

    def backward(self, gy):
        return gy.reshape(self.input_shape)


class Permute(Function):
    """y = x with its axes reordered by ``dims``.   The gradient is permuted back by the inverse."""

    def __init__(self, dims):
        self.dims = tuple(dims)

    def forward(self, x):
        if sorted(d % builtins.max(x.ndim, 1) for d in self.dims) != list(range(x.ndim)):
            raise ValueError(f"permute: dims {self.dims} are not a permutation of the {x.ndim} axes of shape {x.shape}")
        return x.transpose(self.dims)

    def backward(self, gy):
        inverse = np.argsort([d % gy.ndim for d in self.dims])
        return gy.transpose(tuple(inverse))


class GetItem(Function):
    """y = x[index] (ints, slices, None, Ellipsis, integer or boolean arrays).

    Backward scatters the gradient into zeros of x's shape with ``add.at``, so
    an element picked twice receives both gradients.
    """

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.input_shape, self.input_dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.input_shape, dtype=gy.dtype)
        if _is_basic_index(self.index):
            gx[self.index] = gy          # slices never pick an element twice
        else:
            xp.add.at(gx, self.index, gy)
        return gx


def _is_basic_index(index):
    """True for ints, slices, None and Ellipsis only (no integer or boolean arrays)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice, type(None), type(Ellipsis))) for p in parts)


class Concatenate(Function):
    """y = concatenate(xs, axis).   Backward slices the gradient back into pieces."""

    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        xp = get_array_module(*xs)
        self.sizes = [x.shape[self.axis] for x in xs]
        return xp.concatenate(xs, axis=self.axis)

    def backward(self, gy):
        xp = get_array_module(gy)
        bounds = np.cumsum(self.sizes)[:-1]
        return tuple(xp.split(gy, bounds, axis=self.axis))


class Stack(Function):
    """y = stack(xs, axis): a new axis.   Backward takes each slice along that axis."""

    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        xp = get_array_module(*xs)
        return xp.stack(xs, axis=self.axis)

    def backward(self, gy):
        xp = get_array_module(gy)
        return tuple(xp.moveaxis(gy, self.axis, 0))


class Pad(Function):
    """y = x with constant padding; ``pad_width`` as numpy.pad, per axis (before, after).

    Backward crops the gradient back to x's region.
    """

    def __init__(self, pad_width, value=0.0):
        self.pad_width, self.value = pad_width, value

    def forward(self, x):
        xp = get_array_module(x)
        self.width = _pad_width(self.pad_width, x.ndim)
        return xp.pad(x, self.width, mode="constant", constant_values=self.value)

    def backward(self, gy):
        crop = tuple(slice(before, gy.shape[i] - after) for i, (before, after) in enumerate(self.width))
        return gy[crop]


def _pad_width(pad_width, ndim):
    if isinstance(pad_width, int):
        return [(pad_width, pad_width)] * ndim
    pad_width = [tuple(p) if not isinstance(p, int) else (p, p) for p in pad_width]
    if len(pad_width) != ndim:
        raise ValueError(f"pad: pad_width has {len(pad_width)} entries for a tensor with {ndim} dimensions")
    return pad_width


class Cast(Function):
    """y = x converted to another dtype.   The gradient is converted back."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def forward(self, x):
        self.input_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy.astype(self.input_dtype)


class ToDevice(Function):
    """y = x copied to another device.   The gradient is copied back."""

    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.source = device_of(x)
        return to_device(x, self.device)

    def backward(self, gy):
        return to_device(gy, self.source)


# --- the functions users call -------------------------------------------------
def _promote(a, b):
    """Both operands as Tensors of one dtype, by PyTorch's rule: a Python number
    never widens a tensor, and an integer tensor meeting a float becomes that float."""
    like = a if isinstance(a, Tensor) else b
    a, b = as_tensor(a, like), as_tensor(b, like)
    if a.dtype != b.dtype:
        kinds = (a.dtype.kind == "f", b.dtype.kind == "f")
        if kinds == (True, False):
            b = Tensor(b.data.astype(a.dtype))
        elif kinds == (False, True):
            a = Tensor(a.data.astype(b.dtype))
    return a, b


def add(a, b):
    return Add()(*_promote(a, b))


def sub(a, b):
    return Sub()(*_promote(a, b))


def mul(a, b):
    return Mul()(*_promote(a, b))


def div(a, b):
    a, b = _promote(a, b)
    if a.dtype.kind != "f":  # true division of integers gives floats, as in PyTorch
        a = Tensor(a.data.astype(np.float32))
    return Div()(a, b)


def pow(a, b):
    return Pow()(*_promote(a, b))


def neg(x):
    return Neg()(x)


def exp(x):
    return Exp()(x)


def log(x):
    return Log()(x)


def sqrt(x):
    return Sqrt()(x)


def abs(x):
    return Abs()(x)


def maximum(a, b):
    return Maximum()(a, b)


def minimum(a, b):
    return Minimum()(a, b)


def clip(x, min=None, max=None):
    return Clip(min, max)(x)


clamp = clip


def matmul(a, b):
    return MatMul()(a, b)


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


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(x, *shape):
    return Reshape(_shape_args(shape))(x)


def permute(x, *dims):
    return Permute(_shape_args(dims))(x)


def transpose(x, dim0, dim1):
    x = as_tensor(x)
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute(dims)(x)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim into one, as torch.flatten."""
    x = as_tensor(x)
    if x.ndim == 0:
        return reshape(x, 1)
    start, end = start_dim % x.ndim, end_dim % x.ndim
    merged = int(np.prod(x.shape[start : end + 1]))
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1 :])


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem(index)(x)


def concatenate(tensors, axis=0):
    return Concatenate(axis)(*tensors)


cat = concatenate


def stack(tensors, axis=0):
    return Stack(axis)(*tensors)


def pad(x, pad_width, value=0.0):
    return Pad(pad_width, value)(x)
