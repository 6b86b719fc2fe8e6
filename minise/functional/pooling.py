"""Pooling: max_pool2d, avg_pool2d, and the global pools that squeeze an SE block.

A pool summarises each (kh, kw) window of each channel by one number (its
maximum or its mean). Windows never mix channels, so no GEMM is needed:

* Both pools read each window as kh*kw views, one per kernel offset (i, j): view k
  holds element k of every window at once, and the pool is kh*kw whole-array
  operations, never a loop over images, channels or pixels.
* kernel == stride, no padding, sizes divisible by the kernel (the common 2x2
  pool): the windows tile the image, so ``x.reshape(N, C, Ho, kh, Wo, kw)``
  already holds the views, and backward writes each pixel's gradient once (the
  fast path). Otherwise the views are strided slices of the padded input and
  backward adds gradients back with kh*kw slice-adds, like col2im in conv.py.

``global_avg_pool2d`` is the *squeeze* of a Squeeze-and-Excitation block
(eq. 2 of the paper): one number per channel that summarises the whole image.
See docs/derivations.md#pooling.
"""

from .. import parallel
from ..autograd import Function
from ..backend import get_array_module
from .conv import _check_4d, _check_stride_padding, _output_hw, _pad, _pair

__all__ = [
    "max_pool2d",
    "avg_pool2d",
    "global_avg_pool2d",
    "global_max_pool2d",
    "MaxPool2d",
    "AvgPool2d",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d",
]


class _Pool2d(Function):
    """What max and average pooling share: the arguments, their checks, the window views."""

    op = "pool2d"

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = _pair(kernel_size, "kernel_size", self.op)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", self.op)
        self.padding = _pair(padding, "padding", self.op)
        if min(self.kernel_size) <= 0:
            raise ValueError(f"{self.op}: kernel_size must be positive, got kernel_size={self.kernel_size}")
        _check_stride_padding(self.stride, self.padding, self.op)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if 2 * ph > kh or 2 * pw > kw:  # PyTorch's rule: every window must hold real pixels
            raise ValueError(
                f"{self.op}: padding {self.padding} is more than half of kernel_size {self.kernel_size}; "
                f"expected padding <= kernel_size // 2"
            )

    def _geometry(self, x):
        """Check x (N, C, H, W); return (Ho, Wo) and whether the windows tile x exactly."""
        _check_4d(x.shape, self.op)
        Ho, Wo = _output_hw(x.shape, self.kernel_size, self.stride, self.padding, self.op)
        (kh, kw), H, W = self.kernel_size, x.shape[2], x.shape[3]
        tiles = (self.stride == self.kernel_size and self.padding == (0, 0)
                 and H % kh == 0 and W % kw == 0)
        return (Ho, Wo), tiles

    def _offsets(self, a, out_hw, tiles):
        """For each kernel offset (i, j): k = i*kw + j and a view of ``a`` (no copy) with

            view[n, c, ho, wo] = a[n, c, ho*sh + i, wo*sw + j]

        so view number k holds element k of every window at once. ``a`` is the
        padded input (or a buffer of its shape). When the windows tile the image
        (kernel == stride, no padding, divisible sizes) a reshape to
        (N, C, Ho, kh, Wo, kw) gives the views directly: the fast path.
        """
        (kh, kw), (sh, sw), (Ho, Wo) = self.kernel_size, self.stride, out_hw
        if tiles:
            tiled = a.reshape(a.shape[0], a.shape[1], Ho, kh, Wo, kw)
        for i in range(kh):
            for j in range(kw):
                if tiles:
                    yield i * kw + j, tiled[:, :, :, i, :, j]
                else:
                    yield i * kw + j, a[:, :, i:i + sh * Ho:sh, j:j + sw * Wo:sw]

    def _scatter(self, grads, x_shape, out_hw, tiles, xp, dtype):
        """dx from kh*kw gradient pieces, ``grads(k)`` (N, C, Ho, Wo) for window element k.

        Tiles: every pixel is in exactly one window, so each piece is written
        once into its view. Otherwise the pieces are added into a zeroed padded
        buffer (overlapping windows add up), then the padding is cropped.
        """
        N, C, H, W = x_shape
        (ph, pw) = self.padding
        if tiles:
            gx = xp.empty(x_shape, dtype=dtype)
            for k, view in self._offsets(gx, out_hw, tiles):
                view[...] = grads(k)
            return gx
        gx_pad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dtype)
        for k, view in self._offsets(gx_pad, out_hw, tiles):
            view += grads(k)
        return gx_pad[:, :, ph:ph + H, pw:pw + W]


class MaxPool2d(_Pool2d):
    """y = the maximum of each (kh, kw) window; padding adds -inf (never the maximum).

    x: (N, C, H, W) -> y: (N, C, Ho, Wo), Ho = (H + 2*ph - kh) // sh + 1 (likewise Wo).

    dy/dx is 1 at the window's maximum and 0 elsewhere, so backward routes each
    gy[n, c, ho, wo] to the one input pixel that won, through the argmax saved
    by forward. Ties go to one element, the first maximum of the window in
    row-major order, as in PyTorch. Overlapping windows (stride < kernel) may
    pick the same pixel; its gradients add up.
    """

    op = "max_pool2d"

    def forward(self, x):
        xp = get_array_module(x)
        out_hw, tiles = self._geometry(x)
        views = list(self._offsets(_pad(x, self.padding, value=-xp.inf), out_hw, tiles))
        y = views[0][1].copy()
        for _, view in views[1:]:
            xp.maximum(y, view, out=y)
        # argmax[n, c, ho, wo] = k of the window's first maximum (row-major, as PyTorch): going
        # through the offsets backwards, the first k that reaches the maximum is written last.
        argmax = xp.zeros(y.shape, dtype=xp.int64)
        for k, view in reversed(views):
            argmax = xp.where(view == y, k, argmax)
        self.save_for_backward(x.shape, argmax, tiles)
        return y

    def backward(self, gy):
        x_shape, argmax, tiles = self.saved
        xp = get_array_module(gy)
        return self._scatter(lambda k: xp.where(argmax == k, gy, 0), x_shape, gy.shape[2:], tiles,
                             xp, gy.dtype)


class AvgPool2d(_Pool2d):
    """y = the mean of each (kh, kw) window; zero padding counts in the divisor.

    x: (N, C, H, W) -> y: (N, C, Ho, Wo)

        y[n, c, ho, wo] = (1 / (kh*kw)) * sum_{i,j} x_pad[n, c, ho*sh + i, wo*sw + j]

    PyTorch's default (count_include_pad=True): the divisor is always kh*kw.
    Each pixel of a window receives gy / (kh*kw); pixels in several windows add
    up their shares, pixels in none get 0. Both passes are kh*kw whole-array
    adds of strided views (measured ten times faster than reducing the tiny
    (kh, kw) axes of a reshaped x).
    """

    op = "avg_pool2d"

    def forward(self, x):
        out_hw, tiles = self._geometry(x)
        (kh, kw) = self.kernel_size
        views = [view for _, view in self._offsets(_pad(x, self.padding), out_hw, tiles)]
        y = views[0] + views[1] if len(views) > 1 else views[0].copy()
        for view in views[2:]:
            y += view
        y *= 1 / (kh * kw)
        self.save_for_backward(x.shape, tiles)
        return y

    def backward(self, gy):
        x_shape, tiles = self.saved
        (kh, kw) = self.kernel_size
        share = gy * (1 / (kh * kw))
        return self._scatter(lambda k: share, x_shape, gy.shape[2:], tiles, get_array_module(gy), gy.dtype)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling over (kh, kw) windows of x (N, C, H, W); stride defaults to kernel_size.

    As ``torch.nn.functional.max_pool2d`` (floor mode, no dilation). See :class:`MaxPool2d`.
    """
    return MaxPool2d(kernel_size, stride, padding)(x)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling over (kh, kw) windows of x (N, C, H, W); stride defaults to kernel_size.

    As ``torch.nn.functional.avg_pool2d`` (floor mode, count_include_pad=True). See :class:`AvgPool2d`.
    """
    return AvgPool2d(kernel_size, stride, padding)(x)


# --- global pools: the SE squeeze ---------------------------------------------------
class GlobalAvgPool2d(Function):
    """The SE squeeze (eq. 2 of the paper): one average per channel.

    x: (N, C, H, W) -> z: (N, C),   z[n, c] = (1 / (H*W)) * sum_{h,w} x[n, c, h, w]

    Every pixel contributed 1/(H*W) of the average, so each receives
    1/(H*W) of its channel's gradient: dx[n, c, h, w] = gz[n, c] / (H*W).
    """

    def forward(self, x):
        _check_4d(x.shape, "global_avg_pool2d")
        self.save_for_backward(x.shape)
        return parallel.reduce("mean", x, axis=(2, 3))   # x.mean(axis=(2, 3), dtype=x.dtype), on every core

    def backward(self, gz):
        (x_shape,) = self.saved
        xp = get_array_module(gz)
        H, W = x_shape[2:]
        gx = xp.empty(x_shape, dtype=gz.dtype)
        parallel.copyto(gx, (gz / (H * W))[:, :, None, None])   # gx[...] = ..., on every core
        return gx


class GlobalMaxPool2d(Function):
    """The max squeeze of the paper's ablation (Table 11): one maximum per channel.

    x: (N, C, H, W) -> z: (N, C),   z[n, c] = max_{h,w} x[n, c, h, w]

    The gradient goes to the winning pixel only (the first maximum in row-major
    order when several tie, as max_pool2d with a whole-image kernel).
    """

    def forward(self, x):
        _check_4d(x.shape, "global_max_pool2d")
        N, C, H, W = x.shape
        flat = x.reshape(N, C, H * W)
        argmax = flat.argmax(axis=-1)
        self.save_for_backward(x.shape, argmax)
        return get_array_module(x).take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]

    def backward(self, gz):
        x_shape, argmax = self.saved
        xp = get_array_module(gz)
        N, C, H, W = x_shape
        winner = argmax[..., None] == xp.arange(H * W)         # (N, C, H*W), one True per channel
        return xp.where(winner, gz[..., None], 0).astype(gz.dtype, copy=False).reshape(x_shape)


def global_avg_pool2d(x):
    """(N, C, H, W) -> (N, C): the mean of each channel (the SE squeeze). See :class:`GlobalAvgPool2d`."""
    return GlobalAvgPool2d()(x)


def global_max_pool2d(x):
    """(N, C, H, W) -> (N, C): the maximum of each channel. See :class:`GlobalMaxPool2d`."""
    return GlobalMaxPool2d()(x)
