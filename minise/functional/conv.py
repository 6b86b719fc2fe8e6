"""Convolution as one matrix product: im2col, col2im and conv2d.

A 2-D convolution slides a (C, kh, kw) filter over the input. im2col copies
every patch the filter visits into one column of a matrix ``col``; the
convolution of all filters at all positions of all images is then a single
matrix product (one GEMM), which BLAS runs near the machine's peak:

    x (N, C, H, W) --im2col--> col (C*kh*kw, N*Ho*Wo)
    y_col = W_col @ col        W_col = weight.reshape(O, C*kh*kw)   -> (O, N*Ho*Wo)

col2im is im2col's adjoint: it adds every entry of a column matrix back onto
the pixel it was copied from. The backward pass of conv2d is two more GEMMs and
one col2im. On the CPU, conv2d does all this on tiles of a few images at a
time -- a block of col's columns, one GEMM per tile -- so that the columns stay
in the cache (see :class:`Conv2d`). The plain-loop versions in
``minise.functional.reference`` compute the same numbers one multiply at a
time, for reading and for the tests. See docs/derivations.md#conv2d.
"""

import numpy as np

from .. import parallel
from ..autograd import Function
from ..backend import get_array_module
from ..dtypes import accumulate_dtype
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
    x_pad = _padded_buffer(x, padding)
    if x_pad is not x:      # a chunk of images per core
        parallel.parallel_for(x.shape[0], lambda n: _fill_padded(x_pad[n], x[n], padding, value), x)
    return x_pad


def _padded_buffer(x, padding):
    """An uninitialised (N, C, H + 2*ph, W + 2*pw) array for x padded, stored channel-major;
    x itself when there is no padding. ``_fill_padded`` fills it (conv2d: tile by tile)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    buffer = get_array_module(x).empty((C, N, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    return buffer.transpose(1, 0, 2, 3)


def _fill_padded(x_pad, x, padding, value=0.0):
    """x_pad[:, :, ph:ph+H, pw:pw+W] = x and the border = value (nothing to do without padding),
    on the calling thread. x_pad, x: the same images, e.g. images n0:n1 of a tile."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return
    H, W = x.shape[2:]
    x_pad[:, :, ph:ph + H, pw:pw + W] = x
    # Fill only the border: filling the whole buffer first would write every pixel twice.
    x_pad[:, :, :ph] = value
    x_pad[:, :, ph + H:] = value
    x_pad[:, :, :, :pw] = value
    x_pad[:, :, :, pw + W:] = value


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


def _im2col(x, kernel_size, stride, padding, out_hw):
    """im2col without the checks."""
    return _tile_columns(_windows(_pad(x, padding), kernel_size, stride, out_hw), 0, x.shape[0])


def _tile_columns(windows, n0, n1):
    """The columns of images n0:n1 (a tile): a copy of ``windows[:, :, :, n0:n1]`` as
    (C*kh*kw, n*Ho*Wo). Always a copy, never a view of x."""
    tile = windows[:, :, :, n0:n1]
    C, kh, kw = tile.shape[:3]
    col = get_array_module(windows).empty(tile.shape, dtype=windows.dtype)
    parallel.copyto(col, tile)   # the one big copy (on every core, unless a thread runs this tile)
    return col.reshape(C * kh * kw, -1)


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


def _col2im(col, x_shape, kernel_size, stride, padding, out_hw, gx_pad=None):
    """col2im without the checks. gx_pad: a (C, N, H + 2*ph, W + 2*pw) buffer to add back into
    (conv2d's tile of a bigger buffer); zeroed here first."""
    xp = get_array_module(col)
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = kernel_size, stride, padding, out_hw
    col = col.reshape(C, kh, kw, N, Ho, Wo)
    if gx_pad is None:   # channel-major: each slice-add below then reads col[:, i, j] in memory order
        gx_pad = xp.empty((C, N, H + 2 * ph, W + 2 * pw), dtype=col.dtype)

    def add_back(c):   # channels c only: every thread zeroes, then adds back, its own channels
        gx_pad[c] = 0
        for i in range(kh):
            for j in range(kw):
                gx_pad[c, :, i:i + sh * Ho:sh, j:j + sw * Wo:sw] += col[c, i, j]

    parallel.parallel_for(C, add_back, col)
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

    Tiles: col is 9 times the size of x for a 3x3 kernel, far too big for the
    cache, and writing it out to memory only to read it back costs more than
    the GEMM. So on the CPU the batch is cut into tiles of a few images
    (``parallel.tile_ranges``) and each tile does im2col and its GEMM while its
    columns are still in the cache; the tiles are shared out among the cores
    (``parallel.for_each_tile``). The math is the same per tile: the columns of
    col are (n, ho, wo), so a tile of images is a block of columns, and y, dx
    are cut the same way. Only dW and db, sums over every column, are added up
    tile by tile, in tile order. Each tile pads its own images first, so
    that im2col reads them from the cache. Backward makes the tile's columns again
    instead of keeping col from forward: cheaper than a trip through memory,
    and it frees 9x the activations. What forward keeps for backward: x, the
    weight and x zero-padded (a copy about 1.1x x when padding > 0; x itself
    when padding is 0). On the GPU the batch is one tile.

    dx is skipped when x needs no gradient (the first conv of a network sees
    the images). See docs/derivations.md#conv2d.

    Memory layout: y is an (O, N, Ho, Wo) array seen through
    ``transpose(1, 0, 2, 3)``: logically (N, O, Ho, Wo) like PyTorch, stored
    channel-major, so that every tile writes one block per channel. NumPy and
    CuPy index it the same as any array; the next conv's im2col reads it
    channel by channel. dx comes out the same way.
    """

    def __init__(self, stride=1, padding=0):
        self.stride = _pair(stride, "stride", "conv2d")
        self.padding = _pair(padding, "padding", "conv2d")
        _check_stride_padding(self.stride, self.padding, "conv2d")

    def forward(self, x, weight, bias=None):
        _check_conv2d_shapes(x.shape, weight.shape, None if bias is None else bias.shape)
        xp = get_array_module(x)
        N = x.shape[0]
        O, C, kh, kw = weight.shape
        Ho, Wo = _output_hw(x.shape, (kh, kw), self.stride, self.padding, "conv2d")
        w_col = weight.reshape(O, -1)
        y = xp.empty((O, N, Ho, Wo), dtype=xp.result_type(x.dtype, weight.dtype))
        tiles = _tiles(x, C * kh * kw * Ho * Wo)
        x_pad = _padded_buffer(x, self.padding)                      # filled tile by tile
        windows = _windows(x_pad, (kh, kw), self.stride, (Ho, Wo))   # a view, no copy

        def tile(t):   # images n0:n1: padded, their columns, then their outputs
            n0, n1 = tiles[t]
            _fill_padded(x_pad[n0:n1], x[n0:n1], self.padding)
            y_rows = _rows(y, n0, n1)                             # (O, n*Ho*Wo), a view of y
            xp.matmul(w_col, _tile_columns(windows, n0, n1), out=y_rows)
            if bias is not None:
                y_rows += bias[:, None]

        parallel.for_each_tile(len(tiles), tile)
        self.save_for_backward(x, weight, x_pad if self.needs_input_grad[1] else None)
        return y.transpose(1, 0, 2, 3)                           # (N, O, Ho, Wo), channel-major

    def backward(self, gy):
        x, weight, x_pad = self.saved
        xp = get_array_module(gy)
        N, C, H, W = x.shape
        O, _, kh, kw = weight.shape
        Ho, Wo = gy.shape[2:]
        need_x, need_w = self.needs_input_grad[0], self.needs_input_grad[1]
        need_b = len(self.needs_input_grad) == 3 and self.needs_input_grad[2]
        by_convolution = need_x and self.stride == (1, 1) and self.padding[0] < kh and self.padding[1] < kw
        # A tile builds x's columns (for dW) and, for stride 1, gy's (for dx): sized by the bigger.
        # Each tile also keeps a dW partial sum (O*C*kh*kw): at least O / (Ho*Wo) images a tile,
        # so that the partials never take more memory than the columns they come from.
        tiles = _tiles(x, kh * kw * max(C * Ho * Wo, O * H * W if by_convolution else 0),
                       min_per_tile=-(-O // max(1, Ho * Wo)) if need_w else 1)
        acc = accumulate_dtype(weight.dtype)    # float16 partial sums are added in float32, as PyTorch
        gw_parts = xp.empty((len(tiles), O, C * kh * kw), dtype=acc) if need_w else None
        gb_parts = xp.empty((len(tiles), O), dtype=accumulate_dtype(gy.dtype)) if need_b else None
        ph, pw = self.padding
        if by_convolution:
            gx = xp.empty((C, N, H, W), dtype=x.dtype)
        elif need_x:     # col2im adds back into padded images: gx is the middle of this buffer
            gx_pad = xp.empty((C, N, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
            gx = gx_pad[:, :, ph:ph + H, pw:pw + W]
        windows = _windows(x_pad, (kh, kw), self.stride, (Ho, Wo)) if need_w else None
        if by_convolution:
            gy_pad, gy_padding = self._gy_padded(gy, weight)          # filled tile by tile
            gy_windows, w_turned = _windows(gy_pad, (kh, kw), (1, 1), (H, W)), _turned(weight)

        def tile(t):   # images n0:n1: their share of dW and db, and their rows of dx
            n0, n1 = tiles[t]
            if by_convolution:
                _fill_padded(gy_pad[n0:n1], gy[n0:n1], gy_padding)
            gy_col = gy[n0:n1].transpose(1, 0, 2, 3).reshape(O, -1)   # (O, n*Ho*Wo): a view or a copy
            if need_w:
                # (col @ gy_col^T)^T: dW's numbers, in the order OpenBLAS runs faster for these
                # long, thin matrices.
                gw_parts[t] = (_tile_columns(windows, n0, n1) @ gy_col.T).T
            if need_b:
                gb_parts[t] = gy_col.sum(axis=1, dtype=gb_parts.dtype)
            if by_convolution:
                self._grad_input_by_convolution(w_turned, gy_windows, n0, n1, out=_rows(gx, n0, n1))
            elif need_x:
                self._grad_input_by_col2im((n1 - n0, C, H, W), weight, gy_col, (Ho, Wo), gx_pad[:, n0:n1])

        parallel.for_each_tile(len(tiles), tile)
        gw = None
        if need_w:                                    # tile by tile, in order
            gw = gw_parts.sum(axis=0).reshape(weight.shape).astype(weight.dtype, copy=False)
        gx = gx.transpose(1, 0, 2, 3) if need_x else None                      # (N, C, H, W), channel-major
        if len(self.needs_input_grad) == 2:
            return gx, gw
        return gx, gw, gb_parts.sum(axis=0).astype(gy.dtype, copy=False) if need_b else None

    def _grad_input_by_col2im(self, x_shape, weight, gy_col, out_hw, gx_pad=None):
        """dx = col2im(W_col^T @ gy_col): the textbook backward, for any stride. (n, C, H, W).
        gx_pad: where col2im adds back (see ``_col2im``)."""
        O, C, kh, kw = weight.shape
        dcol = weight.reshape(O, -1).T @ gy_col                  # (C*kh*kw, n*Ho*Wo)
        return _col2im(dcol, x_shape, (kh, kw), self.stride, self.padding, out_hw, gx_pad)

    def _gy_padded(self, gy, weight):
        """(gy_pad, padding): an unfilled buffer for gy padded by (kh-1-ph, kw-1-pw), dx's
        convolution's input. Fill images n0:n1 with ``_fill_padded(gy_pad[n0:n1], gy[n0:n1],
        padding)`` before reading their windows (``_windows(gy_pad, (kh, kw), (1, 1), (H, W))``)."""
        (kh, kw), (ph, pw) = weight.shape[2:], self.padding
        padding = (kh - 1 - ph, kw - 1 - pw)
        return _padded_buffer(gy, padding), padding

    def _grad_input_by_convolution(self, w_turned, gy_windows, n0, n1, out=None):
        """dx of images n0:n1 for stride 1, as a convolution of gy: the same numbers as the col2im path, faster.

        With stride 1, dx[n, c, h, w] = sum_{o,i,j} W[o, c, i, j] * gy[n, o, h + ph - i, w + pw - j],
        which is conv2d(gy, W'), W'[c, o, i, j] = W[o, c, kh-1-i, kw-1-j] (the kernel turned by
        180 degrees, in and out channels swapped: ``_turned(W)``), with padding (kh-1-ph, kw-1-pw):
        one im2col of gy and one GEMM straight into (C, n*H*W), instead of a 9x-the-input dcol
        and kh*kw slice-adds. gy_windows: the windows of gy padded (see ``_gy_padded``), filled
        for images n0:n1. out: a (C, n*H*W) matrix to write into. Returns dx as (C, n*H*W).
        """
        return get_array_module(w_turned).matmul(w_turned, _tile_columns(gy_windows, n0, n1), out=out)


def _turned(weight):
    """W'[c, o, i, j] = W[o, c, kh-1-i, kw-1-j] as a (C, O*kh*kw) matrix (a small copy)."""
    C = weight.shape[1]
    return weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(C, -1)


def _tiles(x, col_elements_per_image, min_per_tile=1):
    """(start, stop) image ranges of x's batch: cache-sized tiles on the CPU, one tile on the GPU.
    col_elements_per_image: what one image's columns take (the biggest im2col of the pass)."""
    return parallel.tile_ranges(x.shape[0], col_elements_per_image * x.itemsize, like=x,
                                min_per_tile=min_per_tile)


def _rows(a, n0, n1):
    """Images n0:n1 of a contiguous buffer a (R, N, ...) as an (R, n*...) matrix, for a GEMM to
    write the tile's results straight into. Always a view: in a contiguous a, the axes after
    the first are laid out one after the other, so (n, ...) merges into one axis."""
    return a[:, n0:n1].reshape(a.shape[0], -1)


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
