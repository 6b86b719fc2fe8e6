"""Convolution as one matrix product: im2col, col2im and conv2d.

A 2-D convolution slides a (C, kh, kw) filter over the input. im2col copies
every patch the filter visits into one column of a matrix ``col``; the
convolution of all filters at all positions of all images is then a single
matrix product (one GEMM), which BLAS runs near the machine's peak:

    x (N, C, H, W) --im2col--> col (C*kh*kw, N*Ho*Wo)
    y_col = W_col @ col        W_col = weight.reshape(O, C*kh*kw)   -> (O, N*Ho*Wo)

col2im is im2col's adjoint: it adds every entry of a column matrix back onto
the pixel it was copied from. The backward pass of conv2d is two more GEMMs and
one col2im. The plain-loop versions in ``minise.functional.reference`` compute
the same numbers one multiply at a time, for reading and for the tests.
See docs/derivations.md#conv2d.
"""

import numpy as np

from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor

__all__ = ["im2col", "col2im", "conv2d", "Conv2d", "conv_output_size"]


# --- argument helpers (shared with pooling.py) ----------------------------------
def _pair(value, name, op):
    """An int or a 2-sequence of ints as an (h, w) tuple of Python ints."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        h, w = value
        if isinstance(h, (int, np.integer)) and isinstance(w, (int, np.integer)):
            return int(h), int(w)
    except (TypeError, ValueError):
        pass
    raise TypeError(f"{op}: {name} must be an int or a pair of ints (h, w), got {value!r}")


def _check_stride_padding(stride, padding, op):
    if min(stride) <= 0:
        raise ValueError(f"{op}: stride must be positive, got stride={stride}")
    if min(padding) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got padding={padding}")


def _check_4d(x_shape, op, what="input", layout="(N, C, H, W)"):
    if len(x_shape) != 4:
        raise ValueError(f"{op}: expected a 4-D {what} {layout}, got shape {tuple(x_shape)}")


def conv_output_size(size, kernel, stride, padding):
    """Output length of a sliding window: floor((size + 2*padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _output_hw(x_shape, kernel_size, stride, padding, op):
    """(Ho, Wo) for an (N, C, H, W) input; the kernel must fit inside the padded input."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    H, W = x_shape[2], x_shape[3]
    if kh > H + 2 * ph or kw > W + 2 * pw:
        raise ValueError(
            f"{op}: kernel size ({kh}, {kw}) is larger than the padded input "
            f"({H + 2 * ph}, {W + 2 * pw}) (input {tuple(x_shape)}, padding ({ph}, {pw})); "
            f"expected a kernel of at most the padded input's height and width"
        )
    return conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw)


def _pad(x, padding, value=0.0):
    """x (N, C, H, W) with ``padding`` = (ph, pw) rows/columns of ``value`` around each image.

    The result is stored channel-major (see :class:`Conv2d`), the order im2col reads it in.
    """
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    xp = get_array_module(x)
    N, C, H, W = x.shape
    x_pad = xp.empty((C, N, H + 2 * ph, W + 2 * pw), dtype=x.dtype).transpose(1, 0, 2, 3)
    x_pad[:, :, ph:ph + H, pw:pw + W] = x
    # Fill only the border: filling the whole buffer first would write every pixel twice.
    x_pad[:, :, :ph] = value
    x_pad[:, :, ph + H:] = value
    x_pad[:, :, :, :pw] = value
    x_pad[:, :, :, pw + W:] = value
    return x_pad


def _windows(x_pad, kernel_size, stride, out_hw):
    """A strided *view* (no copy) of every window of x_pad, indexed [c, i, j, n, ho, wo].

    x_pad: (N, C, Hp, Wp).  view[c, i, j, n, ho, wo] = x_pad[n, c, ho*sh + i, wo*sw + j]
    """
    xp = get_array_module(x_pad)
    (kh, kw), (sh, sw), (Ho, Wo) = kernel_size, stride, out_hw
    N, C = x_pad.shape[:2]
    s_n, s_c, s_h, s_w = x_pad.strides
    return xp.lib.stride_tricks.as_strided(
        x_pad, shape=(C, kh, kw, N, Ho, Wo), strides=(s_c, s_h, s_w, s_n, s_h * sh, s_w * sw)
    )


# --- im2col / col2im ---------------------------------------------------------------
def im2col(x, kernel_size, stride=1, padding=0):
    """Copy every (C, kh, kw) patch of x into one column of a matrix.

    x: (N, C, H, W)  ->  col: (C*kh*kw, N*Ho*Wo), with Ho = (H + 2*ph - kh) // sh + 1
    (likewise Wo), rows ordered (c, i, j) like ``weight.reshape(O, -1)``, columns
    ordered (n, ho, wo):

        col[(c, i, j), (n, ho, wo)] = x_pad[n, c, ho*sh + i, wo*sw + j]

    where x_pad is x with ``padding`` zeros around each image. kernel_size,
    stride, padding: an int or an (h, w) pair. x is a NumPy/CuPy array (a
    Tensor is unwrapped and no graph is recorded: conv2d is the differentiable
    op). Built as a strided view of x_pad's windows plus ONE contiguous copy,
    laid out so that every row of col is a run of whole image rows (fast to
    copy, fast to add back).
    """
    x = x.data if isinstance(x, Tensor) else x
    kernel_size = _pair(kernel_size, "kernel_size", "im2col")
    stride = _pair(stride, "stride", "im2col")
    padding = _pair(padding, "padding", "im2col")
    _check_4d(x.shape, "im2col")
    _check_stride_padding(stride, padding, "im2col")
    out_hw = _output_hw(x.shape, kernel_size, stride, padding, "im2col")
    return _im2col(x, kernel_size, stride, padding, out_hw)


def _im2col(x, kernel_size, stride, padding, out_hw, out=None):
    """im2col without the checks; ``out``: a buffer of col's size to copy into instead of a new one."""
    windows = _windows(_pad(x, padding), kernel_size, stride, out_hw)
    rows = x.shape[1] * kernel_size[0] * kernel_size[1]
    if out is None:
        return windows.copy().reshape(rows, -1)   # always a copy, never a view of x (backward writes into col)
    col = out.reshape(rows, -1)
    col.reshape(windows.shape)[...] = windows
    return col


def col2im(col, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of im2col: add every entry of col back onto the pixel it came from.

    col: (C*kh*kw, N*Ho*Wo) in im2col's layout  ->  (N, C, H, W) = x_shape.

        x[n, c, h, w] = sum of col[(c, i, j), (n, ho, wo)] over all (i, j, ho, wo)
                        with ho*sh + i - ph == h and wo*sw + j - pw == w

    A pixel covered by several windows receives the sum of all their entries,
    so ``col2im(im2col(x))`` is x times the number of windows covering each
    pixel, and <im2col(x), col> == <x, col2im(col)> (the adjoint identity the
    conv2d backward pass relies on). Computed with kh*kw strided slice-adds,
    one per kernel offset (i, j), each covering every image, channel and
    output position at once. The result is stored channel-major (see :class:`Conv2d`).
    """
    col = col.data if isinstance(col, Tensor) else col
    kernel_size = _pair(kernel_size, "kernel_size", "col2im")
    stride = _pair(stride, "stride", "col2im")
    padding = _pair(padding, "padding", "col2im")
    _check_4d(x_shape, "col2im", what="x_shape")
    _check_stride_padding(stride, padding, "col2im")
    Ho, Wo = _output_hw(x_shape, kernel_size, stride, padding, "col2im")
    N, C = x_shape[:2]
    expected = (C * kernel_size[0] * kernel_size[1], N * Ho * Wo)
    if tuple(col.shape) != expected:
        raise ValueError(
            f"col2im: col has shape {tuple(col.shape)}, expected {expected} = (C*kh*kw, N*Ho*Wo) "
            f"for x_shape {tuple(x_shape)}, kernel {kernel_size}, stride {stride}, padding {padding}"
        )
    return _col2im(col, tuple(x_shape), kernel_size, stride, padding, (Ho, Wo))


def _col2im(col, x_shape, kernel_size, stride, padding, out_hw):
    xp = get_array_module(col)
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = kernel_size, stride, padding, out_hw
    col = col.reshape(C, kh, kw, N, Ho, Wo)
    # Channel-major buffer: each slice-add below then reads col[:, i, j] in memory order.
    gx_pad = xp.zeros((C, N, H + 2 * ph, W + 2 * pw), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            gx_pad[:, :, i:i + sh * Ho:sh, j:j + sw * Wo:sw] += col[:, i, j]
    return gx_pad[:, :, ph:ph + H, pw:pw + W].transpose(1, 0, 2, 3)    # (N, C, H, W), a view


# --- conv2d -------------------------------------------------------------------------
class Conv2d(Function):
    """2-D cross-correlation (what deep learning calls convolution), NCHW.

    x: (N, C, H, W), weight: (O, C, kh, kw), bias: (O,) or absent
    -> y: (N, O, Ho, Wo), Ho = (H + 2*ph - kh) // sh + 1 (likewise Wo)

        y[n, o, ho, wo] = b[o] + sum_{c,i,j} W[o, c, i, j] * x_pad[n, c, ho*sh + i, wo*sw + j]

    As matrices, with col = im2col(x) (C*kh*kw, N*Ho*Wo), W_col = W.reshape(O, C*kh*kw)
    and gy_col = gy rearranged to (O, N*Ho*Wo):

        forward  y_col = W_col @ col (+ b)         one GEMM
        weight   dW    = gy_col @ col^T            one GEMM, reshaped to (O, C, kh, kw)
        input    dcol  = W_col^T @ gy_col          one GEMM, then dx = col2im(dcol)
        bias     db    = gy summed over n, ho, wo

    With stride 1 the input gradient is itself a convolution (of gy with the
    kernel turned by 180 degrees): one im2col of gy and one GEMM, no col2im;
    the col2im path above stays for every stride and is its test oracle.

    dx is skipped when x needs no gradient (the first conv of a network sees
    the images), and col is kept for backward only when the weight needs a
    gradient. See docs/derivations.md#conv2d.

    Memory layout: the GEMM's output is (O, N, Ho, Wo) in memory. y is that
    array seen through ``transpose(1, 0, 2, 3)``: logically (N, O, Ho, Wo) like
    PyTorch, stored channel-major, with no copy. NumPy and CuPy index it the
    same as any array; gy_col below is then a free view when gy has that layout
    too (elementwise ops such as batch norm and ReLU keep it), and the next
    conv's im2col reads it channel by channel. dx comes out the same way.
    """

    def __init__(self, stride=1, padding=0):
        self.stride = _pair(stride, "stride", "conv2d")
        self.padding = _pair(padding, "padding", "conv2d")
        _check_stride_padding(self.stride, self.padding, "conv2d")

    def forward(self, x, weight, bias=None):
        _check_conv2d_shapes(x.shape, weight.shape, None if bias is None else bias.shape)
        N = x.shape[0]
        O, C, kh, kw = weight.shape
        Ho, Wo = _output_hw(x.shape, (kh, kw), self.stride, self.padding, "conv2d")
        col = _im2col(x, (kh, kw), self.stride, self.padding, (Ho, Wo))
        y_col = weight.reshape(O, -1) @ col                      # (O, N*Ho*Wo)
        if bias is not None:
            y_col += bias[:, None]
        self.save_for_backward(x, weight, col if self.needs_input_grad[1] else None)
        return y_col.reshape(O, N, Ho, Wo).transpose(1, 0, 2, 3)  # (N, O, Ho, Wo), channel-major

    def backward(self, gy):
        x, weight, col = self.saved
        O = weight.shape[0]
        gy_col = gy.transpose(1, 0, 2, 3).reshape(O, -1)         # (O, N*Ho*Wo): a view or a copy
        gx = gw = gb = None
        if self.needs_input_grad[1]:
            gw = self._grad_weight(x, weight, col, gy_col, gy.shape[2:])
        if self.needs_input_grad[0]:
            (kh, kw), (ph, pw) = weight.shape[2:], self.padding
            if self.stride == (1, 1) and ph < kh and pw < kw:
                gx = self._grad_input_by_convolution(x, weight, col, gy)
            else:
                gx = self._grad_input_by_col2im(x, weight, col, gy_col, gy.shape[2:])
        if len(self.needs_input_grad) == 2:
            return gx, gw
        if self.needs_input_grad[2]:
            gb = gy_col.sum(axis=1)
        return gx, gw, gb

    def _grad_weight(self, x, weight, col, gy_col, out_hw):
        """dW = gy_col @ col^T, reshaped to (O, C, kh, kw)."""
        if col is None:  # a second backward (retain_graph=True): the first one reused col's memory
            col = _im2col(x, weight.shape[2:], self.stride, self.padding, out_hw)
        # Computed as (col @ gy_col^T)^T: the same numbers, and OpenBLAS runs this order
        # faster for these long, thin matrices.
        return (col @ gy_col.T).T.reshape(weight.shape)

    def _grad_input_by_col2im(self, x, weight, col, gy_col, out_hw):
        """dx = col2im(W_col^T @ gy_col): the textbook backward, for any stride."""
        xp = get_array_module(gy_col)
        O, C, kh, kw = weight.shape
        w_col = weight.reshape(O, -1)
        if col is not None:
            # col is not needed once dW is known: dcol (same shape) overwrites it instead of
            # taking a fresh 9x-the-input buffer (page-faulting new memory costs as much as the GEMM).
            dcol = xp.matmul(w_col.T, gy_col, out=col)
            self.saved = (x, weight, None)
        else:
            dcol = w_col.T @ gy_col                              # (C*kh*kw, N*Ho*Wo)
        return _col2im(dcol, x.shape, (kh, kw), self.stride, self.padding, out_hw)

    def _grad_input_by_convolution(self, x, weight, col, gy):
        """dx for stride 1 as a convolution of gy: the same numbers as the col2im path, faster.

        With stride 1, dx[n, c, h, w] = sum_{o,i,j} W[o, c, i, j] * gy[n, o, h + ph - i, w + pw - j],
        which is conv2d(gy, W'), W'[c, o, i, j] = W[o, c, kh-1-i, kw-1-j] (the kernel turned by
        180 degrees, in and out channels swapped), with padding (kh-1-ph, kw-1-pw): one im2col
        of gy and one GEMM straight into (C, N*H*W), instead of a 9x-the-input dcol and
        kh*kw slice-adds.
        """
        O, C, kh, kw = weight.shape
        ph, pw = self.padding
        N, _, H, W = x.shape
        w_turned = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(C, -1)   # (C, O*kh*kw), a small copy
        reuse = col is not None and col.size == O * kh * kw * N * H * W           # O == C: col's buffer fits
        gy_cols = _im2col(gy, (kh, kw), (1, 1), (kh - 1 - ph, kw - 1 - pw), (H, W), out=col if reuse else None)
        if reuse:
            self.saved = (x, weight, None)
        gx = w_turned @ gy_cols                                  # (C, N*H*W)
        return gx.reshape(C, N, H, W).transpose(1, 0, 2, 3)      # (N, C, H, W), channel-major


def _check_conv2d_shapes(x_shape, w_shape, b_shape):
    _check_4d(x_shape, "conv2d")
    _check_4d(w_shape, "conv2d", what="weight", layout="(out_channels, in_channels, kh, kw)")
    if x_shape[1] != w_shape[1]:
        raise ValueError(
            f"conv2d: input has {x_shape[1]} channels (shape {tuple(x_shape)}) but weight "
            f"{tuple(w_shape)} expects {w_shape[1]} input channels"
        )
    if b_shape is not None and tuple(b_shape) != (w_shape[0],):
        raise ValueError(
            f"conv2d: bias has shape {tuple(b_shape)}, expected ({w_shape[0]},), one value per "
            f"output channel of weight {tuple(w_shape)}"
        )


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """2-D convolution of x (N, C, H, W) with weight (O, C, kh, kw) -> (N, O, Ho, Wo).

    stride, padding: an int or an (h, w) pair, as in ``torch.nn.functional.conv2d``.
    An unbatched image (C, H, W) gives (O, Ho, Wo), as PyTorch. See :class:`Conv2d` for the math.
    """
    op = Conv2d(stride, padding)
    if getattr(x, "ndim", 0) == 3:
        y = conv2d(x.reshape(1, *x.shape), weight, bias, stride, padding)
        return y.reshape(y.shape[1:])
    return op(x, weight) if bias is None else op(x, weight, bias)
