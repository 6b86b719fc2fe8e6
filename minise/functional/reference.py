"""Plain-loop conv2d and pooling, forward and backward: the definitions, one output at a time.

These functions are slow on purpose. Each one is the formula from the
docstring of the fast op written as nested loops over images, channels and
output positions, so a learner can read it next to the fast version (or step
through it in a debugger) and the tests can use it as an oracle. NumPy only,
no autograd: arrays in, arrays out.

    y = conv2d_reference(x, w, b, stride=1, padding=1)
    dx, dw, db = conv2d_reference_backward(x, w, gy, stride=1, padding=1)

stride, padding, kernel_size: an int or an (h, w) pair, as in the fast ops.
"""

import numpy as np

__all__ = [
    "conv2d_reference",
    "conv2d_reference_backward",
    "max_pool2d_reference",
    "max_pool2d_reference_backward",
    "avg_pool2d_reference",
    "avg_pool2d_reference_backward",
]


def _pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def _pad(x, ph, pw, value=0.0):
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _out_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


# --- conv2d -------------------------------------------------------------------
def conv2d_reference(x, weight, bias=None, stride=1, padding=0):
    """``y[n, o, ho, wo] = b[o] + sum_{c,i,j} W[o, c, i, j] * x_pad[n, c, ho*sh + i, wo*sw + j]``

    x: (N, C, H, W), weight: (O, C, kh, kw), bias: (O,) or None -> y: (N, O, Ho, Wo)
    """
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    Ho, Wo = _out_size(H, kh, sh, ph), _out_size(W, kw, sw, pw)
    x_pad = _pad(x, ph, pw)
    y = np.zeros((N, O, Ho, Wo), dtype=np.result_type(x, weight))
    for n in range(N):
        for o in range(O):
            for ho in range(Ho):
                for wo in range(Wo):
                    patch = x_pad[n, :, ho * sh:ho * sh + kh, wo * sw:wo * sw + kw]  # (C, kh, kw)
                    y[n, o, ho, wo] = np.sum(patch * weight[o])
                    if bias is not None:
                        y[n, o, ho, wo] += bias[o]
    return y


def conv2d_reference_backward(x, weight, gy, stride=1, padding=0):
    """The gradients of conv2d_reference, given gy = dL/dy: returns (dx, dW, db).

    Each output ``y[n, o, ho, wo]`` used the patch ``x_pad[n, :, ho*sh:+kh, wo*sw:+kw]``
    and the filter W[o], so it sends gy[n, o, ho, wo] * W[o] back to that patch
    and gy[n, o, ho, wo] * patch to the filter; db[o] sums gy over n, ho, wo.
    """
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    Ho, Wo = gy.shape[2:]
    x_pad = _pad(x, ph, pw)
    dx_pad = np.zeros(x_pad.shape, dtype=gy.dtype)
    dw = np.zeros(weight.shape, dtype=gy.dtype)
    db = np.zeros(O, dtype=gy.dtype)
    for n in range(N):
        for o in range(O):
            for ho in range(Ho):
                for wo in range(Wo):
                    g = gy[n, o, ho, wo]
                    rows = slice(ho * sh, ho * sh + kh)
                    cols = slice(wo * sw, wo * sw + kw)
                    dx_pad[n, :, rows, cols] += g * weight[o]
                    dw[o] += g * x_pad[n, :, rows, cols]
                    db[o] += g
    dx = dx_pad[:, :, ph:ph + H, pw:pw + W]
    return dx, dw, db


# --- pooling ------------------------------------------------------------------
def _pool_args(kernel_size, stride, padding):
    kh, kw = _pair(kernel_size)
    sh, sw = (kh, kw) if stride is None else _pair(stride)
    ph, pw = _pair(padding)
    return kh, kw, sh, sw, ph, pw


def max_pool2d_reference(x, kernel_size, stride=None, padding=0):
    """``y[n, c, ho, wo]`` = max of the window ``x_pad[n, c, ho*sh:+kh, wo*sw:+kw]`` (padding is -inf)."""
    kh, kw, sh, sw, ph, pw = _pool_args(kernel_size, stride, padding)
    N, C, H, W = x.shape
    Ho, Wo = _out_size(H, kh, sh, ph), _out_size(W, kw, sw, pw)
    x_pad = _pad(x, ph, pw, value=-np.inf)
    y = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for ho in range(Ho):
                for wo in range(Wo):
                    y[n, c, ho, wo] = x_pad[n, c, ho * sh:ho * sh + kh, wo * sw:wo * sw + kw].max()
    return y


def max_pool2d_reference_backward(x, gy, kernel_size, stride=None, padding=0):
    """dx: each gy[n, c, ho, wo] goes to the window's maximum (the first one, row by row, on ties)."""
    kh, kw, sh, sw, ph, pw = _pool_args(kernel_size, stride, padding)
    N, C, H, W = x.shape
    Ho, Wo = gy.shape[2:]
    x_pad = _pad(x, ph, pw, value=-np.inf)
    dx_pad = np.zeros(x_pad.shape, dtype=gy.dtype)
    for n in range(N):
        for c in range(C):
            for ho in range(Ho):
                for wo in range(Wo):
                    window = x_pad[n, c, ho * sh:ho * sh + kh, wo * sw:wo * sw + kw]
                    i, j = np.unravel_index(np.argmax(window), window.shape)  # first maximum
                    dx_pad[n, c, ho * sh + i, wo * sw + j] += gy[n, c, ho, wo]
    return dx_pad[:, :, ph:ph + H, pw:pw + W]


def avg_pool2d_reference(x, kernel_size, stride=None, padding=0):
    """``y[n, c, ho, wo]`` = sum of the window ``x_pad[n, c, ho*sh:+kh, wo*sw:+kw]`` / (kh*kw) (zeros count)."""
    kh, kw, sh, sw, ph, pw = _pool_args(kernel_size, stride, padding)
    N, C, H, W = x.shape
    Ho, Wo = _out_size(H, kh, sh, ph), _out_size(W, kw, sw, pw)
    x_pad = _pad(x, ph, pw)
    y = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for ho in range(Ho):
                for wo in range(Wo):
                    y[n, c, ho, wo] = x_pad[n, c, ho * sh:ho * sh + kh, wo * sw:wo * sw + kw].sum() / (kh * kw)
    return y


def avg_pool2d_reference_backward(x, gy, kernel_size, stride=None, padding=0):
    """dx: each pixel of a window receives gy / (kh*kw) from every window that contains it."""
    kh, kw, sh, sw, ph, pw = _pool_args(kernel_size, stride, padding)
    N, C, H, W = x.shape
    Ho, Wo = gy.shape[2:]
    dx_pad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=gy.dtype)
    for n in range(N):
        for c in range(C):
            for ho in range(Ho):
                for wo in range(Wo):
                    dx_pad[n, c, ho * sh:ho * sh + kh, wo * sw:wo * sw + kw] += gy[n, c, ho, wo] / (kh * kw)
    return dx_pad[:, :, ph:ph + H, pw:pw + W]
