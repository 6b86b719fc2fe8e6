"""Elementwise arithmetic and unary math, each with its backward.

Broadcasting: binary ops follow NumPy's rules. An input that was broadcast
received the same gradient at every copy, so its gradient is the sum over the
broadcast axes: ``sum_to(g, x.shape)``. See docs/derivations.md#broadcasting.
"""

import numpy as np

from .. import backend
from ..autograd import Function, sum_to
from ..backend import get_array_module
from ..dtypes import DEFAULT_DTYPE, float_result, result_type, scalar_to_array
from ..tensor import Tensor, as_tensor
from .shape import cast


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
    """y = |x|.   dy/dx = sign(x)  (0 at x = 0 and at NaN, as PyTorch)."""

    def forward(self, x):
        xp = get_array_module(x)
        sign = xp.sign(x)
        if x.dtype.kind == "f":
            sign = xp.nan_to_num(sign, nan=0.0)   # PyTorch: the gradient at NaN is 0
        self.save_for_backward(sign)
        return xp.abs(x)

    def backward(self, gy):
        (sign,) = self.saved
        return gy * sign


class Maximum(Function):
    """y = max(a, b) elementwise; NaN propagates (either input NaN gives NaN), as torch.maximum.

    The gradient goes to the larger input; ties split it half-half. As PyTorch's
    formula (share_a = 1 - [a < b] - [a == b] / 2, share_b likewise), a NaN makes
    both comparisons false, so BOTH inputs receive the full gradient there.
    """

    pick = "maximum"
    lose = staticmethod(lambda a, b: a < b)   # where a loses, it gets no gradient

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return getattr(get_array_module(a, b), self.pick)(a, b)

    def backward(self, gy):
        a, b = self.saved
        tie = 0.5 * (a == b)
        share_a = (1 - self.lose(a, b) - tie).astype(gy.dtype, copy=False)
        share_b = (1 - self.lose(b, a) - tie).astype(gy.dtype, copy=False)
        return sum_to(gy * share_a, a.shape), sum_to(gy * share_b, b.shape)


class Minimum(Maximum):
    """y = min(a, b) elementwise; NaN propagates. The smaller input gets the gradient (ties split it; NaN: both)."""

    pick = "minimum"
    lose = staticmethod(lambda a, b: a > b)


class Clip(Function):
    """y = min(max(x, low), high).   dy/dx = 1 where low <= x <= high, else 0 (as torch.clamp)."""

    def __init__(self, low=None, high=None):
        self.low, self.high = low, high

    def forward(self, x):
        xp = get_array_module(x)
        if x.dtype.kind in "iu":  # bounds wrap into the dtype, as PyTorch's (uint8: -1 is 255)
            self.low, self.high = (None if v is None else scalar_to_array(v, x.dtype, xp)[()]
                                   for v in (self.low, self.high))
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
def _promote(a, b, op):
    """Both operands as Tensors of one dtype, ``dtypes.result_type(a, b)`` (torch.result_type).

    A Python number never widens a tensor of its category (float32 * 2.5 stays
    float32) and a float number makes an integer tensor float32. The cast is
    differentiable (float16 + float32: the float16 input still gets its gradient).
    """
    raw_a = a.data if isinstance(a, Tensor) else a
    raw_b = b.data if isinstance(b, Tensor) else b
    if isinstance(a, Tensor) and isinstance(b, Tensor) and raw_a.dtype == raw_b.dtype:
        return a, b                                  # the common case: nothing to decide
    dtype = result_type(raw_a, raw_b)
    return _to_dtype(a, dtype, b), _to_dtype(b, dtype, a)


def _to_dtype(x, dtype, other):
    """``x`` as a Tensor of ``dtype``: a number becomes a constant, a tensor is cast (with its gradient)."""
    if not isinstance(x, Tensor):
        if backend.is_array(x):
            x = as_tensor(x)
        else:
            return Tensor(scalar_to_array(x, dtype, other.xp))
    return x if x.dtype == dtype else cast(x, dtype)


def add(a, b):
    return Add()(*_promote(a, b, "add"))


def _is_bool(x):
    return x.dtype == np.bool_ if isinstance(x, Tensor) else isinstance(x, (bool, np.bool_))


def sub(a, b):
    if _is_bool(a) or _is_bool(b):
        raise RuntimeError("sub: subtraction, the `-` operator, with a bool tensor is not supported (as in "
                           "PyTorch). To invert a mask use `~mask`; to count, convert first: mask.astype('int64')")
    return Sub()(*_promote(a, b, "sub"))


def mul(a, b):
    return Mul()(*_promote(a, b, "mul"))


def div(a, b):
    """True division, as torch.div: integer and bool inputs give float32 (1 / 2 = 0.5, 1 / 0 = inf)."""
    raw_a = a.data if isinstance(a, Tensor) else a
    raw_b = b.data if isinstance(b, Tensor) else b
    dtype = float_result(result_type(raw_a, raw_b))    # uint8 / -1 is -1.0, not 1 / 255
    like = a if isinstance(a, Tensor) else b
    a, b = _to_dtype(a, dtype, like), _to_dtype(b, dtype, like)
    with np.errstate(divide="ignore", invalid="ignore"):  # x / 0 is inf or nan, as in PyTorch
        return Div()(a, b)


def pow(a, b):
    """a ** b, as torch.pow. Integers to negative integer powers: a Python exponent raises RuntimeError;
    a tensor exponent gives 1 ** -n = 1, (-1) ** -n = +-1, else 0 (integer division, as PyTorch)."""
    if isinstance(a, Tensor) and a.dtype == np.bool_ and isinstance(b, Tensor) and b.dtype == np.bool_:
        raise NotImplementedError("pow: not implemented for two bool tensors (as in PyTorch); convert one, "
                                  "e.g. a.astype('int64')")
    if (isinstance(a, Tensor) and a.dtype.kind in "biu" and isinstance(b, (int, np.integer))
            and not isinstance(b, bool) and b < 0):
        raise RuntimeError(f"pow: integers to negative integer powers are not allowed (as in PyTorch), "
                           f"got a {a.dtype} tensor ** {b}; use a float, e.g. x.float() ** {b}")
    a, b = _promote(a, b, "pow")
    if a.dtype.kind in "iu" and (b.data < 0).any():
        return _int_pow_negative(a, b)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # nan/inf as in PyTorch
        y = Pow()(a, b)
    return y if y.dtype == a.dtype else cast(y, a.dtype)    # NumPy: bool ** bool is int8


def _int_pow_negative(a, b):
    """Integer a ** b with some b < 0, as PyTorch computes it (no gradient: integers have none)."""
    xp = a.xp
    with np.errstate(divide="ignore", invalid="ignore"):
        positive = a.data ** xp.maximum(b.data, 0)
    odd = (b.data % 2) != 0
    negative = xp.where(a.data == 1, 1, xp.where(a.data == -1, xp.where(odd, -1, 1), 0))
    return Tensor(xp.where(b.data < 0, negative, positive).astype(a.dtype))


def _float_input(x, op):
    """``x`` as a float Tensor for an op that needs floats: integers and bools become float32, as PyTorch."""
    x = as_tensor(x)
    return x if x.dtype.kind == "f" else cast(x, DEFAULT_DTYPE)


def neg(x):
    x = as_tensor(x)
    if x.dtype == np.bool_:
        raise RuntimeError("neg: negation, the `-` operator, on a bool tensor is not supported (as in PyTorch). "
                           "To invert a mask use `~mask`")
    return Neg()(x)


def exp(x):
    return Exp()(_float_input(x, "exp"))


def log(x):
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, log(-1) = nan, as in PyTorch
        return Log()(_float_input(x, "log"))


def sqrt(x):
    with np.errstate(invalid="ignore"):
        return Sqrt()(_float_input(x, "sqrt"))


def abs(x):
    x = as_tensor(x)
    if x.dtype == np.bool_:
        raise NotImplementedError("abs: not implemented for bool tensors (as in PyTorch)")
    return Abs()(x)


def maximum(a, b):
    """Elementwise max, as torch.maximum: NaN wins (propagates); see :class:`Maximum` for the gradient."""
    return Maximum()(*_promote(a, b, "maximum"))


def minimum(a, b):
    """Elementwise min, as torch.minimum: NaN wins (propagates); see :class:`Minimum` for the gradient."""
    return Minimum()(*_promote(a, b, "minimum"))


def clip(x, min=None, max=None):
    """Clamp to [min, max], as torch.clamp: the dtype is result_type(x, min, max) (an int tensor with
    float bounds becomes float32); NaN stays NaN; min > max gives max everywhere."""
    if min is None and max is None:
        raise RuntimeError("clip: at least one of 'min' or 'max' must not be None (as torch.clamp)")
    x = as_tensor(x)
    dtype = result_type(x.data, min, max)
    if x.dtype != dtype:
        x = cast(x, dtype)
    return Clip(min, max)(x)


clamp = clip
