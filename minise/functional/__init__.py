"""Stateless ops, imported as ``import minise.functional as F``.

Each op is a ``Function`` subclass (forward and backward side by side) plus a
lowercase wrapper that users call.
"""

from ..autograd import sum_to
from . import reference
from .activation import log_softmax, relu, sigmoid, softmax, tanh
from .arithmetic import abs, add, clamp, clip, div, exp, log, maximum, minimum, mul, neg, pow, sqrt, sub
from .conv import col2im, conv2d, im2col
from .dropout import dropout
from .linear import linear
from .loss import binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss, nll_loss
from .matmul import matmul
from .normalization import batch_norm
from .pooling import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    global_avg_pool2d,
    global_max_pool2d,
    max_pool2d,
)
from .reduction import amax, amin, argmax, argmin, max, mean, min, norm, sum
from .shape import (
    cast,
    cat,
    clone,
    concatenate,
    contiguous,
    flatten,
    getitem,
    pad,
    permute,
    reshape,
    squeeze,
    stack,
    to_device,
    transpose,
    unsqueeze,
    view,
)
