"""Shape ops (reshape, permute, indexing, concatenate, stack, pad) and dtype/device moves, each with its backward."""

import numpy as np

from .. import backend
from ..autograd import Function
from ..backend import empty_in_order, get_array_module, memory_order
from ..dtypes import result_type
from ..tensor import Tensor, as_tensor
from .dims import dim_index, dim_tuple


class Reshape(Function):
    """y = x viewed with a new shape.   The gradient is reshaped back."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        if x.size == 0 and -1 in self.shape and 0 in self.shape:
            raise RuntimeError(f"reshape: cannot view a tensor of 0 elements as {self.shape}: the size for -1 "
                               f"could be anything (as in PyTorch, give every size)")
        try:
            return x.reshape(self.shape)
        except ValueError:  # a RuntimeError, as in PyTorch
            raise RuntimeError(
                f"reshape: cannot view a tensor of shape {x.shape} ({x.size} elements) as {self.shape}"
            ) from None

    def backward(self, gy):
        return gy.reshape(self.input_shape)


class View(Reshape):
    """y = x.view(shape): like Reshape, but only when no copy is needed, as ``torch.Tensor.view``.

    A transposed or sliced array whose new shape would need its elements gathered raises,
    with PyTorch's advice: use ``.reshape(...)`` (which copies when it must).
    """

    def forward(self, x):
        y = super().forward(x)
        xp = get_array_module(x)
        if x.size > 1 and not xp.may_share_memory(x, y):
            raise RuntimeError(
                f"view size is not compatible with input tensor's size and stride: a tensor of shape {x.shape} "
                f"and strides {x.strides} cannot be viewed as {self.shape} without a copy. "
                "Use .reshape(...) instead (or .contiguous().view(...))."
            )
        return y


class Unsqueeze(Function):
    """y = x with a new axis of size 1 at ``dim``.   The gradient drops that axis again."""

    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        self.axis = dim_index(self.dim, x.ndim + 1, "unsqueeze")
        return get_array_module(x).expand_dims(x, self.axis)

    def backward(self, gy):
        return gy.reshape(gy.shape[: self.axis] + gy.shape[self.axis + 1 :])


class Squeeze(Function):
    """y = x without its axes of size 1 (all, or only ``dim`` if it has size 1), as ``torch.squeeze``.

    A ``dim`` whose size is not 1 is left as it is (PyTorch's rule, not NumPy's error).
    """

    def __init__(self, dim=None):
        self.dim = dim

    def forward(self, x):
        self.input_shape = x.shape
        if self.dim is None:
            dims = tuple(i for i, n in enumerate(x.shape) if n == 1)
        else:
            dims = () if self.dim == () else dim_tuple(self.dim, x.ndim, "squeeze")   # (): none, as torch
            dims = tuple(d for d in dims if x.shape[d] == 1)
        return x.reshape([n for i, n in enumerate(x.shape) if i not in dims])

    def backward(self, gy):
        return gy.reshape(self.input_shape)


class Clone(Function):
    """y = a copy of x in new (C-contiguous) memory.   dy/dx = 1."""

    def forward(self, x):
        return get_array_module(x).array(x, copy=True, order="C")

    def backward(self, gy):
        return gy


class Permute(Function):
    """y = x with its axes reordered by ``dims``.   The gradient is permuted back by the inverse."""

    def __init__(self, dims):
        self.dims = tuple(dims)

    def forward(self, x):
        if len(self.dims) != x.ndim:
            raise RuntimeError(f"permute: number of dims don't match: got {len(self.dims)} dims {self.dims} "
                               f"for a tensor of shape {x.shape} ({x.ndim} dims)")
        dims = [dim_index(d, x.ndim, "permute") for d in self.dims]
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"permute: duplicate dims are not allowed, got {self.dims} for shape {x.shape}")
        self.dims = tuple(dims)
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
        self.order = memory_order(x)   # backward's gx is laid out as x, like x's other gradients
        return x[self.index]

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = empty_in_order(self.input_shape, self.order, gy.dtype, xp)
        gx[...] = 0
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
        self.axis = dim_index(self.axis, xs[0].ndim, "cat")
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
        self.axis = dim_index(self.axis, xs[0].ndim + 1, "stack")
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
        shape = tuple(n + before + after for n, (before, after) in zip(x.shape, self.width))
        y = empty_in_order(shape, memory_order(x), x.dtype, xp)    # laid out as x (as PyTorch's constant_pad_nd)
        y[...] = self.value
        y[tuple(slice(before, before + n) for n, (before, _) in zip(x.shape, self.width))] = x
        return y

    def backward(self, gy):
        crop = tuple(slice(before, gy.shape[i] - after) for i, (before, after) in enumerate(self.width))
        return gy[crop]


def _pad_width(pad_width, ndim):
    """pad_width as numpy.pad reads it -> ndim (before, after) pairs of non-negative Python ints:
    an int (or (pad,)) for both sides of every axis, (before, after) (or ((before, after),)) for
    every axis, or one (before, after) pair per axis. ValueError for anything else."""
    try:
        widths = np.asarray(pad_width)
        fits = widths.dtype.kind == "i" and bool((widths >= 0).all())     # numpy.pad: signed ints only
        pairs = np.broadcast_to(widths, (ndim, 2)).tolist() if fits else None
    except ValueError:      # ragged, or does not broadcast to (ndim, 2)
        pairs = None
    if pairs is None:
        raise ValueError(f"pad: pad_width must be non-negative ints as numpy.pad takes them (an int, a "
                         f"(before, after) pair for every axis, or one pair per axis: {ndim} here), got {pad_width!r}")
    return [(int(before), int(after)) for before, after in pairs]


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
        self.source = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, gy):
        return backend.to_device(gy, self.source)


# --- the functions users call -------------------------------------------------
def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(x, *shape):
    return Reshape(_shape_args(shape))(x)


def view(x, *shape):
    """``x`` seen with ``shape`` (one -1 allowed), sharing memory; raises if that needs a copy (torch.view)."""
    return View(_shape_args(shape))(x)


def unsqueeze(x, dim):
    """``x`` with a new axis of size 1 at ``dim`` (in [-x.ndim - 1, x.ndim]), as ``torch.unsqueeze``."""
    return Unsqueeze(dim)(x)


def squeeze(x, dim=None):
    """``x`` without its size-1 axes (or only ``dim``, an int or tuple, where that size is 1), as torch."""
    return Squeeze(dim)(x)


def clone(x):
    """A copy of ``x`` that keeps the graph (the gradient flows back to ``x``), as ``torch.clone``."""
    return Clone()(x)


def contiguous(x):
    """``x`` itself if its memory is C-contiguous, else a contiguous copy (``clone``), as torch."""
    x = as_tensor(x)
    return x if x.data.flags.c_contiguous else clone(x)


def permute(x, *dims):
    return Permute(_shape_args(dims))(x)


def transpose(x, dim0, dim1):
    """Swap dims ``dim0`` and ``dim1`` (negative dims count from the end), as torch.transpose."""
    x = as_tensor(x)
    dim0, dim1 = dim_index(dim0, x.ndim, "transpose"), dim_index(dim1, x.ndim, "transpose")
    if x.ndim == 0:
        return Permute(())(x)
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute(dims)(x)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim into one, as torch.flatten (a 0-d tensor becomes (1,)).

    IndexError for a dim out of range; RuntimeError when start_dim comes after end_dim.
    """
    x = as_tensor(x)
    start, end = dim_index(start_dim, x.ndim, "flatten"), dim_index(end_dim, x.ndim, "flatten")
    if start > end:
        raise RuntimeError(f"flatten: start_dim cannot come after end_dim, got start_dim={start_dim}, "
                           f"end_dim={end_dim} for shape {x.shape}")
    if x.ndim == 0:
        return reshape(x, 1)
    merged = int(np.prod(x.shape[start : end + 1]))
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1 :])


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem(index)(x)


def _common_dtype(tensors, op):
    """The tensors as one dtype, ``result_type`` of them all (cat of int64 and float32 is float32, as PyTorch)."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of Tensors")
    dtype = result_type(*(t.data for t in tensors))
    return [t if t.dtype == dtype else cast(t, dtype) for t in tensors]


def concatenate(tensors, axis=0, *, dim=None):
    """Join tensors along an existing dim, as torch.cat (dtypes promoted as torch.result_type)."""
    return Concatenate(axis if dim is None else dim)(*_common_dtype(tensors, "cat"))


def cat(tensors, dim=0):
    """Join ``tensors`` along the existing axis ``dim``, as ``torch.cat`` (the same op as :func:`concatenate`)."""
    return concatenate(tensors, dim)


def stack(tensors, axis=0, *, dim=None):
    """Join tensors along a new dim, as torch.stack (dtypes promoted as torch.result_type)."""
    return Stack(axis if dim is None else dim)(*_common_dtype(tensors, "stack"))


def pad(x, pad_width, value=0.0):
    """x with ``value`` around it, as ``numpy.pad(x, pad_width, constant_values=value)``.

    pad_width: an int, a (before, after) pair for every axis, or one pair per axis (numpy.pad's
    forms; PyTorch's F.pad takes a flat list from the last axis instead). The result keeps x's
    dtype and memory layout (as PyTorch's constant_pad_nd). ValueError for a negative or
    non-integer width. The gradient crops back to x's region.
    """
    return Pad(pad_width, value)(x)


def cast(x, dtype):
    """``x`` converted to ``dtype`` (differentiable: the gradient is converted back)."""
    return Cast(dtype)(x)


def to_device(x, device):
    """``x`` copied to ``device`` (differentiable: the gradient is copied back)."""
    return ToDevice(device)(x)
