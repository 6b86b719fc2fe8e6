"""Elementwise arithmetic and unary math, each with its backward.

Broadcasting: binary ops follow NumPy's rules. An input that was broadcast
received the same gradient at every copy, so its gradient is the sum over the
broadcast axes: ``sum_to(g, x.shape)``. See docs/derivations.md#broadcasting.
"""

import numpy as np

from .. import parallel
from ..autograd import Function, sum_to
from ..backend import get_array_module
from ..tensor import Tensor, as_tensor


class Add(Function):
    """y = a + b.   dy/da = 1, dy/db = 1 (then summed back over broadcast axes)."""

    def forward(self, a, b):
        self.save_for_backward(a.shape, b.shape)
        return parallel.elementwise(get_array_module(a, b).add, a, b)   # a + b on every core (minise.parallel)

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
        return parallel.elementwise(get_array_module(a, b).multiply, a, b)   # a * b

    def backward(self, gy):
        a, b = self.saved
        mul = get_array_module(gy).multiply
        ga = sum_to(parallel.elementwise(mul, gy, b), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(parallel.elementwise(mul, gy, a), b.shape) if self.needs_input_grad[1] else None
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
