"""Weight initialisation, as ``torch.nn.init``: each function fills a Tensor in place.

Random values come from minise's global generator (``minise.backend.rng()``,
reset by ``ms.manual_seed``), drawn on the CPU and copied to the tensor's device.

Fan in / fan out of a weight: for ``Linear`` (out, in) they are in and out;
for ``Conv2d`` (out, in, kh, kw) they are in*kh*kw and out*kh*kw — the number
of inputs that feed one output, and of outputs one input feeds.

Kaiming (He et al. 2015): with gain g (sqrt(2) for ReLU), a weight drawn with
std = g / sqrt(fan) keeps the variance of activations (fan_in) or of
gradients (fan_out) the same from layer to layer.
"""

import math

import numpy as np

from .. import backend
from ..autograd import mark_modified
from ..tensor import Tensor

__all__ = ["calculate_gain", "kaiming_normal_", "kaiming_uniform_", "xavier_uniform_", "xavier_normal_",
           "uniform_", "normal_", "constant_", "zeros_", "ones_"]


def calculate_gain(nonlinearity, param=None):
    """The gain PyTorch recommends for ``nonlinearity``: relu sqrt(2), tanh 5/3, linear/sigmoid 1,
    leaky_relu sqrt(2 / (1 + slope**2)) with ``param`` the negative slope (default 0.01)."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}; expected one of "
                     "linear, conv2d, sigmoid, tanh, relu, leaky_relu, selu")


def _fans(tensor):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"init: fan in and fan out need a tensor with at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fill(tensor, values):
    """Write ``values`` (a NumPy array) into ``tensor.data`` in place, keeping dtype and device."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init: expected a Tensor, got {type(tensor).__name__}")
    tensor.data[...] = backend.to_device(np.asarray(values, dtype=tensor.dtype), tensor.device)
    mark_modified(tensor)
    return tensor


def _fan(tensor, mode):
    fan_in, fan_out = _fans(tensor)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}")


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with U(a, b)."""
    return _fill(tensor, backend.rng().uniform(a, b, size=tensor.shape))


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with N(mean, std**2)."""
    return _fill(tensor, backend.rng().normal(mean, std, size=tensor.shape))


def constant_(tensor, val):
    return _fill(tensor, np.full(tensor.shape, val))


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """Fill with U(-bound, bound), bound = gain * sqrt(3 / fan).

    PyTorch's default for Linear and Conv2d weights is ``a=sqrt(5)``, which
    gives gain sqrt(1/3) and so bound = 1 / sqrt(fan_in).
    """
    gain = calculate_gain(nonlinearity, a)
    bound = gain * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """Fill with N(0, std**2), std = gain / sqrt(fan).

    The CIFAR ResNets use ``mode="fan_out", nonlinearity="relu"``: std = sqrt(2 / (out * kh * kw)).
    """
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def xavier_uniform_(tensor, gain=1.0):
    """Fill with U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """Fill with N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
