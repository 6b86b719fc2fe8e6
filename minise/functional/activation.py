"""Activations: relu, sigmoid, tanh, softmax, log_softmax.

Each saves its *output* where the gradient can be written in terms of it
(sigmoid, tanh, softmax, log_softmax), so no extra buffer is kept alive: the
output is held by the graph anyway. Derivations: docs/derivations.md#activations.
"""

import numpy as np

from .. import parallel
from ..autograd import Function
from ..backend import empty_in_order, get_array_module, is_broadcast, memory_order
from ..tensor import as_tensor
from .arithmetic import _float_input
from .dims import dim_index


class ReLU(Function):
    """y = max(x, 0).   dy/dx = 1 where x > 0, else 0 (0 at x = 0, as PyTorch).

    x: any shape, float or integer (bool: RuntimeError, as PyTorch).  Saves y:
    y > 0 exactly where x > 0. NaN stays NaN, and its gradient passes (PyTorch
    zeroes the gradient where y <= 0, and NaN <= 0 is false).
    """

    def forward(self, x):
        xp = get_array_module(x)
        y = parallel.elementwise(xp.maximum, x, _zeros_for(x))   # xp.maximum(x, 0) on every core (minise.parallel)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved
        return parallel.elementwise(_pass_where_not_zero, gy, y, dtype=gy.dtype)   # where(y != 0, gy, 0)


# A block of zeros as long as this, or less, stands in for the 0 of max(x, 0) (see _zeros_for).
ZERO_BLOCK = 1 << 17


def _zeros_for(x):
    """The 0 of max(x, 0) as an array of zeros that broadcasts onto x and covers its innermost
    axes in memory (at most ``ZERO_BLOCK`` elements, never the outermost axis longer than 1), laid
    out as x: 0 as a Python number for CuPy, 0-d and 1-D arrays and broadcast views (stride 0).

    Same result, faster: NumPy's maximum has a SIMD loop for two contiguous arrays but not for an
    array and a scalar: ReLU's forward ran 1.9-2.3x slower with the number than with the block
    over an SE-ResNet's activations (one core of an AMD EPYC, NumPy 2.4: docs/benchmarks.md#relu). The longer the
    block, the longer NumPy's inner loop: (N, 1, H, W) of zeros beat (H, W) by 1.4x.
    """
    if get_array_module(x) is not np or x.ndim < 2 or is_broadcast(x):
        return 0                              # a broadcast x: zeros laid out as x would set y's layout
    order = memory_order(x)
    shape, size = [1] * x.ndim, 1
    for axis in [a for a in order if x.shape[a] > 1][:0:-1]:   # innermost first, the outermost never
        if size * x.shape[axis] > ZERO_BLOCK:
            break
        shape[axis], size = x.shape[axis], size * x.shape[axis]
    zeros = empty_in_order(shape, order, x.dtype)
    zeros[...] = 0
    return zeros


def _pass_where_not_zero(gy, y, out=None):
    """gy where y > 0 or y is NaN, else exactly 0: PyTorch's threshold_backward, where(y <= 0, 0, gy).

    y = max(x, 0) is never negative, so not (y <= 0) is y != 0: one comparison. The gradient is
    kept or dropped bit by bit: gy's bits AND a mask that is all ones where y != 0, all zeros
    elsewhere. An inf or NaN gradient at a unit ReLU cut off thus gives 0, as in PyTorch, where
    gy * (y != 0) gave NaN (inf * 0); and it runs 1.2x faster than that product (8 MiB of
    float32 on one core of an AMD EPYC; xp.where took 6x longer). out may be gy itself.
    """
    xp = get_array_module(gy)
    if gy.dtype.itemsize not in (2, 4, 8):            # no int as wide (longdouble): NumPy's where
        result = xp.where(y != 0, gy, xp.zeros((), gy.dtype))
        if out is None:
            return result
        xp.copyto(out, result)
        return out
    bits = np.dtype(f"i{gy.dtype.itemsize}")          # an int as wide as gy's float
    if out is None:
        out = xp.empty(np.broadcast_shapes(gy.shape, y.shape), dtype=gy.dtype)
    keep = (y != 0).view(xp.int8)
    if xp.may_share_memory(out, gy):                  # in place: the mask may not overwrite gy first
        mask = xp.negative(keep, out=keep)            # 1 -> -1 (int8, widened when ANDed)
    else:
        mask = xp.negative(keep, out=out.view(bits))  # in out's memory: 1 -> -1, every bit set
    xp.bitwise_and(gy.view(bits), mask, out=out.view(bits))
    return out


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)).   dy/dx = y * (1 - y)

    x: any shape.  Saves y, not x: the gradient needs only the output.
    Computed as  y = exp(min(x, 0)) / (1 + exp(-|x|)),  which is the same
    function (for x >= 0 it is 1 / (1 + exp(-x)); for x < 0 multiply top and
    bottom by exp(x)) but exp only ever sees arguments <= 0: no overflow for any
    x, and full relative precision in the tail (sigmoid(-40) = 4.2e-18, where
    0.5 * (tanh(x / 2) + 1) would round to 0). No xp.where: it is several
    times slower than arithmetic on unpredictable masks.
    """

    def forward(self, x):
        xp = get_array_module(x)
        with np.errstate(under="ignore"):  # exp(-1e4) -> 0 is the right answer
            y = xp.exp(xp.minimum(x, 0))
            y /= 1 + xp.exp(-xp.abs(x))
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved
        return gy * y * (1 - y)


class Tanh(Function):
    """y = tanh(x).   dy/dx = 1 - y**2

    x: any shape.  Saves y.
    """

    def forward(self, x):
        y = get_array_module(x).tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved
        return gy * (1 - y * y)


def _check_axis(op, axis, ndim):
    return dim_index(axis, ndim, op)


def _check_float(op, x):
    """softmax and log_softmax are not defined for integers in PyTorch (NotImplementedError)."""
    if x.dtype.kind != "f":
        raise NotImplementedError(f"{op}: not implemented for {x.dtype} input, as in PyTorch; "
                                  f"convert first, e.g. x.float()")


class Softmax(Function):
    """y_i = exp(x_i - max(x)) / sum_j exp(x_j - max(x))   along ``axis``.

    Subtracting the max changes nothing mathematically and keeps exp <= 1, so
    logits of any size give finite results.
    Backward:  dx_i = y_i * (gy_i - sum_j gy_j y_j)   (the Jacobian diag(y) - y y^T applied to gy).

    x: any shape.  Saves y.
    """

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        self.axis = _check_axis("softmax", self.axis, x.ndim)
        if x.ndim == 0:
            return self._scalar(x)
        with np.errstate(under="ignore", invalid="ignore"):
            y = xp.exp(x - x.max(axis=self.axis, keepdims=True))
            y /= y.sum(axis=self.axis, keepdims=True)
        self.save_for_backward(y)
        return y

    def _scalar(self, x):
        """A 0-d input is one class: softmax 1 (log_softmax 0), as PyTorch; NaN stays NaN."""
        y = (x - x) + (0 if isinstance(self, LogSoftmax) else 1)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved
        if y.ndim == 0:                # one class: the output is constant
            return gy * 0
        gx = gy * y
        gx -= y * gx.sum(axis=self.axis, keepdims=True)
        return gx


class LogSoftmax(Softmax):
    """y_i = x_i - max(x) - log(sum_j exp(x_j - max(x)))   along ``axis``.

    Backward:  dx_i = gy_i - softmax(x)_i * sum_j gy_j,   with softmax(x) = exp(y).

    x: any shape.  Saves y.
    """

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        self.axis = _check_axis("log_softmax", self.axis, x.ndim)
        if x.ndim == 0:
            return self._scalar(x)
        shifted = x - x.max(axis=self.axis, keepdims=True)
        with np.errstate(under="ignore"):
            log_sum = xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        shifted -= log_sum
        self.save_for_backward(shifted)
        return shifted

    def backward(self, gy):
        (y,) = self.saved
        if y.ndim == 0:
            return gy * 0
        xp = get_array_module(y)
        with np.errstate(under="ignore"):
            softmax = xp.exp(y)
        return gy - softmax * gy.sum(axis=self.axis, keepdims=True)


def relu(x):
    """max(x, 0), as torch.relu: keeps integer dtypes; RuntimeError for bool input."""
    x = as_tensor(x)
    if x.dtype == np.bool_:
        raise RuntimeError("relu: boolean inputs are not supported (as in PyTorch)")
    return ReLU()(x)


def sigmoid(x):
    """1 / (1 + exp(-x)); integer and bool input gives float32, as torch.sigmoid."""
    return Sigmoid()(_float_input(x, "sigmoid"))


def tanh(x):
    """tanh(x); integer and bool input gives float32, as torch.tanh."""
    return Tanh()(_float_input(x, "tanh"))


def softmax(x, axis=-1, *, dim=None):
    """Softmax along ``axis`` (``dim=`` accepted as in PyTorch). NotImplementedError for integer input."""
    x = as_tensor(x)
    _check_float("softmax", x)
    return Softmax(axis if dim is None else dim)(x)


def log_softmax(x, axis=-1, *, dim=None):
    """log(softmax(x)) along ``axis``, computed stably (``dim=`` accepted). NotImplementedError for integers."""
    x = as_tensor(x)
    _check_float("log_softmax", x)
    return LogSoftmax(axis if dim is None else dim)(x)
