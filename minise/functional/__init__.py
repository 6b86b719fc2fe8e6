"""Stateless ops, imported as ``import minise.functional as F``.

Each op is a ``Function`` subclass (forward and backward side by side) plus a
lowercase wrapper that users call.
"""

from .activation import log_softmax, relu, sigmoid, softmax, tanh
from .dropout import dropout
from .linear import linear
from .loss import cross_entropy
from .normalization import batch_norm
from .math import (
    abs,
    add,
    cat,
    clamp,
    clip,
    concatenate,
    div,
    exp,
    flatten,
    getitem,
    log,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    pad,
    permute,
    pow,
    reshape,
    sqrt,
    stack,
    sub,
    sum,
    sum_to,
    transpose,
)
from .conv import col2im, conv2d, im2col
from .pooling import avg_pool2d, global_avg_pool2d, global_max_pool2d, max_pool2d
from . import reference
