"""Layers: modules that hold the parameters of one op and call it from ``minise.functional``.

Each layer's ``forward`` is one line into ``F``; the layer's job is to own the
weights, initialise them as PyTorch does, and print like PyTorch.

Default initialisation of ``Linear`` and ``Conv2d`` (PyTorch's): weight from
kaiming_uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
and bias from the same U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
"""

import math

import numpy as np

from .. import autograd
from .. import functional as F
from ..autograd import mark_modified
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "Conv2d", "BatchNorm1d", "BatchNorm2d", "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
           "Flatten", "Dropout", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "GlobalMaxPool2d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "check_input_dtype"]


def _pair(v, name, layer):
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(i, (int, np.integer)) for i in v):
        return int(v[0]), int(v[1])
    raise ValueError(f"{layer}: {name} must be an int or a pair of ints, got {v!r}")


def _positive_int(v, name, layer):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{layer}: {name} must be a positive int, got {v!r}")
    return int(v)


def check_input_dtype(layer, x, weight):
    """Raise if ``x``'s dtype differs from the layer's ``weight``'s, as PyTorch does.

    Without this check NumPy would silently promote: a float64 batch (``np.random.randn`` gives
    float64) would run a float32 model entirely in float64, twice as slow and unlike PyTorch.
    The message names the layer (its path in the model while a model runs, e.g. "layer1.0.conv1")
    and both dtypes. Raises RuntimeError (PyTorch's error type for this).
    """
    dtype = getattr(x, "dtype", None)
    if dtype is None or weight is None or dtype == weight.dtype:
        return
    if isinstance(layer, _BatchNorm) and (dtype.kind != "f" or dtype.itemsize < weight.dtype.itemsize):
        # PyTorch's batch norm takes float16 input with float32 statistics (it computes in float32),
        # and refuses integers itself (F.batch_norm raises its NotImplementedError)
        return
    path = autograd._module_path(tuple(autograd._module_stack))
    name = f"{type(layer).__name__} {path!r}" if path else type(layer).__name__
    raise RuntimeError(
        f"{name}: the input is {dtype} but the layer's parameters are {weight.dtype}; convert the input "
        f"(x.float() for float32, x.double() for float64) or the model (model.float() / model.double())"
    )


def _empty(*shape):
    return Parameter(np.zeros(shape, dtype=np.float32))


class Linear(Module):
    """y = x W^T + b.   x: (N, in_features) -> (N, out_features).

    weight: (out_features, in_features), bias: (out_features,).
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        self.weight = _empty(self.out_features, self.in_features)
        if bias:
            self.bias = _empty(self.out_features)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        check_input_dtype(self, x, self.weight)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D convolution.  x: (N, C_in, H, W) -> (N, C_out, H_out, W_out),
    H_out = (H + 2 * padding - kh) // stride + 1 (and the same for W).

    weight: (out_channels, in_channels, kh, kw), bias: (out_channels,).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = _positive_int(out_channels, "out_channels", "Conv2d")
        self.kernel_size = _pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = _pair(stride, "stride", "Conv2d")
        self.padding = _pair(padding, "padding", "Conv2d")
        if min(self.kernel_size) <= 0 or min(self.stride) <= 0 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: kernel_size and stride must be positive and padding non-negative, got "
                             f"kernel_size={kernel_size}, stride={stride}, padding={padding}")
        self.weight = _empty(self.out_channels, self.in_channels, *self.kernel_size)
        if bias:
            self.bias = _empty(self.out_channels)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        check_input_dtype(self, x, self.weight)
        return F.conv2d(x, self.weight, self.bias, _unpair(self.stride), _unpair(self.padding))

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.bias is None:
            text += ", bias=False"
        return text


def _unpair(pair):
    """A square (a, a) as the int a: the ops take ints or pairs, ints are the common case."""
    return pair[0] if pair[0] == pair[1] else pair


class _BatchNorm(Module):
    """Batch normalisation: y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.

    Training mode normalises with the batch's statistics and updates the
    running ones: running = (1 - momentum) * running + momentum * batch (the
    batch variance unbiased, as PyTorch). Evaluation mode uses the running
    statistics. ``momentum=None`` gives the cumulative average 1 / num_batches_tracked.

    Buffers (in the state dict, as in PyTorch): running_mean, running_var
    (float32, (C,)) and num_batches_tracked (int64, a 0-d count).
    """

    _expected_ndim = None

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features", type(self).__name__)
        self.eps = eps
        self.momentum = momentum
        self.weight = Parameter(np.ones(self.num_features, dtype=np.float32))
        self.bias = Parameter(np.zeros(self.num_features, dtype=np.float32))
        self.register_buffer("running_mean", Tensor(np.zeros(self.num_features, dtype=np.float32)))
        self.register_buffer("running_var", Tensor(np.ones(self.num_features, dtype=np.float32)))
        self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))

    def reset_running_stats(self):
        self.running_mean.data[...] = 0
        self.running_var.data[...] = 1
        self.num_batches_tracked.data[...] = 0
        mark_modified(self.running_mean, self.running_var, self.num_batches_tracked)

    def forward(self, x):
        if x.ndim not in self._expected_ndim:
            raise ValueError(f"{type(self).__name__}: expected a {' or '.join(map(str, self._expected_ndim))}-D "
                             f"input (N, C{', H, W' if 4 in self._expected_ndim else ''}), got shape {x.shape}")
        check_input_dtype(self, x, self.weight)
        momentum = self.momentum
        if self.training:
            self.num_batches_tracked.data[...] += 1
            mark_modified(self.num_batches_tracked)
            if momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.data)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, momentum, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine=True, bias=True, "
                "track_running_stats=True")


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, H, W) for each channel of x: (N, C, H, W)."""

    _expected_ndim = (4,)


class BatchNorm1d(_BatchNorm):
    """Batch norm over N for each feature of x: (N, C)."""

    _expected_ndim = (2,)


class ReLU(Module):
    """y = max(x, 0)."""

    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x))."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Softmax(Module):
    """softmax along ``dim`` (PyTorch's nn.Softmax(dim)): rows that sum to 1."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, axis=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log_softmax along ``dim`` (PyTorch's nn.LogSoftmax(dim)); pair it with nn.NLLLoss."""

    def forward(self, x):
        return F.log_softmax(x, axis=self.dim)


class Flatten(Module):
    """Merge axes start_dim..end_dim: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Zero each element with probability p in training mode (scaling the rest by 1 / (1 - p))."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace=False"


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding


class MaxPool2d(_Pool2d):
    """Max over each kernel window.  x: (N, C, H, W) -> (N, C, H_out, W_out); stride defaults to kernel_size."""

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                "dilation=1, ceil_mode=False")


class AvgPool2d(_Pool2d):
    """Mean over each kernel window (zero padding counts, as PyTorch's default)."""

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class GlobalAvgPool2d(Module):
    """Mean over H and W: (N, C, H, W) -> (N, C). The SE block's squeeze (eq. 2)."""

    def forward(self, x):
        return F.global_avg_pool2d(x)


class GlobalMaxPool2d(Module):
    """Max over H and W: (N, C, H, W) -> (N, C)."""

    def forward(self, x):
        return F.global_max_pool2d(x)


class AdaptiveAvgPool2d(Module):
    """Average to a fixed output size: (N, C, H, W) -> (N, C, oh, ow), as PyTorch's nn.AdaptiveAvgPool2d.

    ``AdaptiveAvgPool2d(1)`` is the global average pool (the SE squeeze) keeping (N, C, 1, 1).
    Any output size, with PyTorch's windows (overlapping where the size does not divide H or W).
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(AdaptiveAvgPool2d):
    """Maximum to a fixed output size (N, C, oh, ow), as PyTorch's nn.AdaptiveMaxPool2d (values only).

    The output size must divide H and W (equal windows); other sizes raise ValueError.
    """

    def forward(self, x):
        return F.adaptive_max_pool2d(x, self.output_size)
