"""Pooling: max_pool2d, avg_pool2d, and the global pools that squeeze an SE block.

A pool summarises each (kh, kw) window of a channel by one number (its maximum or mean): no GEMM.

* Both pools read each window as kh*kw views, one per kernel offset (i, j): view k holds
  element k of every window at once, and the pool is kh*kw whole-array operations, never a
  loop over images, channels or pixels.
* kernel == stride, no padding, sizes divisible by the kernel (the common 2x2 pool): the
  windows tile the image, so ``x.reshape(N, C, Ho, kh, Wo, kw)`` already holds the views, and
  backward writes each pixel's gradient once (the fast path). Otherwise the views are strided
  slices of the padded input and backward adds gradients back with kh*kw slice-adds, as col2im.

``global_avg_pool2d`` is the *squeeze* of a Squeeze-and-Excitation block (eq. 2 of the paper):
one number per channel that summarises the whole image. See docs/derivations.md#pooling.
"""

import numpy as np

from .. import parallel
from ..autograd import Function
from ..backend import empty_in_order, get_array_module, memory_order
from ..dtypes import accumulate_dtype
from ..tensor import as_tensor
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
    row-major order, as in PyTorch. A NaN is the maximum of its window (it
    propagates) and wins the gradient; of several NaNs the last in row-major
    order wins, as PyTorch's CPU kernel (``val > max || isnan(val)``).
    Overlapping windows (stride < kernel) may pick the same pixel; its
    gradients add up. Integer input works (padding is the dtype's minimum);
    bool input raises NotImplementedError, as PyTorch.
    """

    op = "max_pool2d"

    def forward(self, x):
        xp = get_array_module(x)
        out_hw, tiles = self._geometry(x)
        low = -xp.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        views = list(self._offsets(_pad(x, self.padding, value=low), out_hw, tiles))
        y = views[0][1].copy()
        for _, view in views[1:]:
            xp.maximum(y, view, out=y)
        # argmax[n, c, ho, wo] = k of the window's first maximum (row-major, as PyTorch): going
        # through the offsets backwards, the first k that reaches the maximum is written last.
        argmax = xp.zeros(y.shape, dtype=xp.int64)
        for k, view in reversed(views):
            argmax = xp.where(view == y, k, argmax)
        if x.dtype.kind == "f" and xp.isnan(y).any():  # NaN wins its window: the last NaN, as PyTorch
            for k, view in views:
                argmax = xp.where(view != view, k, argmax)
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
    float16 windows are summed in float32; int32/int64 averages are truncated
    towards zero (as PyTorch); uint8 and bool raise NotImplementedError.
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
        acc = accumulate_dtype(x.dtype) if x.dtype.kind == "f" else np.dtype(np.int64)
        if acc == x.dtype and len(views) > 1:
            y = views[0] + views[1]
        else:                                # float16 sums in float32, integers in int64
            y = views[0].astype(acc)
            y += views[1] if len(views) > 1 else 0
        for view in views[2:]:
            y += view
        if acc.kind == "f":
            y *= 1 / (kh * kw)
        else:                                # integer average: truncated towards zero, as PyTorch
            y = get_array_module(x).trunc(y / (kh * kw))
        self.save_for_backward(x.shape, tiles)
        return y.astype(x.dtype, copy=False)

    def backward(self, gy):
        x_shape, tiles = self.saved
        (kh, kw) = self.kernel_size
        share = gy * (1 / (kh * kw))
        return self._scatter(lambda k: share, x_shape, gy.shape[2:], tiles, get_array_module(gy), gy.dtype)


def _unbatched(op, x, not_for):
    """x as a Tensor, checked: dtype kinds in ``not_for`` raise NotImplementedError, as PyTorch."""
    x = as_tensor(x)
    if x.dtype.kind in not_for:
        raise NotImplementedError(f"{op}: not implemented for {x.dtype} input, as in PyTorch; convert first, "
                                  f"e.g. x.float()")
    return x


def _pool(function, x):
    """Run a pool on (N, C, H, W), or on an unbatched (C, H, W) image as PyTorch allows."""
    if x.ndim == 3:
        return function(x.reshape(1, *x.shape)).reshape(function.output_shape[1:])
    return function(x)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling over (kh, kw) windows of x (N, C, H, W) or (C, H, W); stride defaults to kernel_size.

    As ``torch.nn.functional.max_pool2d`` (floor mode, no dilation). See :class:`MaxPool2d`.
    """
    x = _unbatched("max_pool2d", x, "b")
    return _pool(MaxPool2d(kernel_size, stride, padding), x)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling over (kh, kw) windows of x (N, C, H, W) or (C, H, W); stride defaults to kernel_size.

    As ``torch.nn.functional.avg_pool2d`` (floor mode, count_include_pad=True). See :class:`AvgPool2d`.
    """
    x = _unbatched("avg_pool2d", x, "bu")
    return _pool(AvgPool2d(kernel_size, stride, padding), x)


# --- global pools: the SE squeeze ---------------------------------------------------
class GlobalAvgPool2d(Function):
    """The SE squeeze (eq. 2 of the paper): one average per channel.

    x: (N, C, H, W) -> z: (N, C),   z[n, c] = (1 / (H*W)) * sum_{h,w} x[n, c, h, w]

    Every pixel contributed 1/(H*W) of the average, so each receives
    1/(H*W) of its channel's gradient: dx[n, c, h, w] = gz[n, c] / (H*W).
    On the CPU, up to 32x32 pixels, the sums are one einsum: a single pass at memory speed, 2.8-4.9x
    faster than x.mean on one core, and faster than it cut over two (docs/benchmarks.md#squeeze).
    Larger images take x.mean's pairwise sums: einsum's running sum drifts (17 ulps at 224x224).
    """

    def forward(self, x):
        _check_4d(x.shape, "global_avg_pool2d")
        self.save_for_backward(x.shape)
        self.order = memory_order(x)   # backward's gx is laid out as x (PyTorch: empty_like(x))
        (N, C, H, W), xp = x.shape, get_array_module(x)
        if H * W == 0:                      # the mean of nothing: NaN, as in PyTorch (NumPy warned)
            return xp.full((N, C), np.nan, dtype=x.dtype)
        acc = accumulate_dtype(x.dtype)
        if acc != x.dtype:  # float16 is summed in float32, as PyTorch
            return x.mean(axis=(2, 3), dtype=acc).astype(x.dtype, copy=False)
        if xp is np and H * W <= 1024:      # float32, float64: one einsum (see above)
            return np.einsum("ncm->nc", x.reshape(N, C, H * W)) / x.dtype.type(H * W)
        return parallel.reduce("mean", x, axis=(2, 3))   # x.mean(axis=(2, 3), dtype=x.dtype), on every core

    def backward(self, gz):
        (x_shape,) = self.saved
        gx = empty_in_order(x_shape, self.order, gz.dtype, get_array_module(gz))
        pixels = x_shape[2] * x_shape[3] or 1      # none: gx is empty (and gz / 0 would warn)
        parallel.copyto(gx, (gz / pixels)[:, :, None, None])   # gx[...] = gz / (H * W), on every core
        return gx


class GlobalMaxPool2d(Function):
    """The max squeeze of the paper's ablation (Table 11): one maximum per channel.

    x: (N, C, H, W) -> z: (N, C),   z[n, c] = max_{h,w} x[n, c, h, w]

    The gradient goes to the winning pixel only (the first maximum in row-major order when several
    tie, as max_pool2d with a whole-image kernel; a NaN wins, the last NaN of several, as there).
    """

    def forward(self, x):
        _check_4d(x.shape, "global_max_pool2d")
        N, C, H, W = x.shape
        flat = x.reshape(N, C, H * W)
        argmax = flat.argmax(axis=-1)                 # NumPy: the first NaN, if any
        if x.dtype.kind == "f" and x.size:
            xp = get_array_module(x)
            nan = flat != flat
            if nan.any():                             # PyTorch's pool kernel: the last NaN
                last = H * W - 1 - nan[..., ::-1].argmax(axis=-1)
                argmax = xp.where(nan.any(axis=-1), last, argmax)
        self.save_for_backward(x.shape, argmax)
        return get_array_module(x).take_along_axis(flat, argmax[..., None], axis=-1)[..., 0]

    def backward(self, gz):
        x_shape, argmax = self.saved
        xp = get_array_module(gz)
        N, C, H, W = x_shape
        winner = argmax[..., None] == xp.arange(H * W)         # (N, C, H*W), one True per channel
        return xp.where(winner, gz[..., None], 0).astype(gz.dtype, copy=False).reshape(x_shape)


def global_avg_pool2d(x):
    """(N, C, H, W) -> (N, C): the mean of each channel (the SE squeeze). See :class:`GlobalAvgPool2d`.

    float16 is summed in float32 (a 64x64 image of 100s averages to 100, not inf); integer
    input raises RuntimeError, as PyTorch's mean does.
    """
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise RuntimeError(f"global_avg_pool2d: mean() could not infer output dtype for {x.dtype} input "
                           f"(as in PyTorch); convert first, e.g. x.float()")
    return GlobalAvgPool2d()(x)


def global_max_pool2d(x):
    """(N, C, H, W) -> (N, C): the maximum of each channel. See :class:`GlobalMaxPool2d`."""
    return GlobalMaxPool2d()(_unbatched("global_max_pool2d", x, "b"))


def _output_size(x, output_size, op):
    """(oh, ow) from an int or a pair (None keeps that input size); checks x is (N, C, H, W)."""
    if x.ndim != 4:
        raise ValueError(f"{op}: expected x of shape (N, C, H, W) or (C, H, W), got {x.shape}")
    if 0 in x.shape[1:]:
        raise RuntimeError(f"{op}: expected input to have non-zero size for non-batch dimensions, got shape "
                           f"{x.shape} (as in PyTorch)")
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    oh, ow = x.shape[2] if oh is None else oh, x.shape[3] if ow is None else ow
    if oh <= 0 or ow <= 0:
        raise ValueError(f"{op}: output size must be positive, got {(oh, ow)}")
    return oh, ow


def adaptive_windows(n_in, n_out):
    """PyTorch's adaptive windows along one axis, as a gather: ``(index, valid)``, both (n_out, k).

    Window i spans [floor(i * n_in / n_out), ceil((i + 1) * n_in / n_out)): equal windows when
    n_out divides n_in, overlapping ones of two sizes otherwise, as ``torch.nn.AdaptiveAvgPool2d``.
    k is the longest window; a shorter one repeats its last position, where ``valid`` is False.
    """
    i = np.arange(n_out)
    start, end = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
    index = start[:, None] + np.arange(int((end - start).max()))
    return np.minimum(index, end[:, None] - 1), index < end[:, None]


def adaptive_average_matrix(n_in, n_out, xp, dtype):
    """A (n_out, n_in) matrix whose row i averages PyTorch's adaptive window i along one axis."""
    index, valid = adaptive_windows(n_in, n_out)
    inside = np.zeros((n_out, n_in), bool)
    inside[np.repeat(np.arange(n_out), index.shape[1])[valid.ravel()], index[valid]] = True
    return xp.asarray(inside / inside.sum(axis=1, keepdims=True), dtype=dtype)


class _Adaptive(Function):
    """What the adaptive pools share: every window gathered at once, no loop over windows.

    ``_gather(x)`` returns x (N, C, H, W) as (N, C, oh, ow, kh*kw), the elements of each window in
    row-major order, with ``self.valid`` (oh, ow, kh*kw) marking the repeated positions of the
    shorter windows (False) and ``self.flat`` their pixel index h*W + w.
    """

    def __init__(self, output_size):
        self.output_size = output_size

    def _gather(self, x):
        xp = get_array_module(x)
        (N, C, H, W), (oh, ow) = x.shape, self.output_size
        (rows, valid_h), (cols, valid_w) = adaptive_windows(H, oh), adaptive_windows(W, ow)
        k = rows.shape[1] * cols.shape[1]
        self.flat = xp.asarray((rows[:, None, :, None] * W + cols[None, :, None, :]).reshape(oh, ow, k))
        self.valid = xp.asarray((valid_h[:, None, :, None] & valid_w[None, :, None, :]).reshape(oh, ow, k))
        return x.reshape(N, C, H * W)[:, :, self.flat]


class AdaptiveAvgPool2d(_Adaptive):
    """y[n, c, i, j] = mean of x[n, c] over PyTorch's adaptive window (i, j), for any output size.

    Forward sums each gathered window (its repeated positions count 0, so a NaN or inf stays in
    its own windows; float16 sums in float32). The mean is linear, and separable into rows and
    columns: backward is gx = A_h^T gy A_w with A_h (oh, H) and A_w (ow, W) from
    :func:`adaptive_average_matrix`.
    """

    def forward(self, x):
        xp = get_array_module(x)
        windows = self._gather(x)
        total = xp.where(self.valid, windows, 0).sum(axis=-1, dtype=accumulate_dtype(x.dtype))
        self.x_shape, dtype = x.shape, x.dtype
        return (total / self.valid.sum(axis=-1)).astype(dtype, copy=False)

    def backward(self, gy):
        xp = get_array_module(gy)
        (h, w), (oh, ow) = self.x_shape[2:], self.output_size
        a_h, a_w = adaptive_average_matrix(h, oh, xp, gy.dtype), adaptive_average_matrix(w, ow, xp, gy.dtype)
        return (a_h.T @ gy) @ a_w


class AdaptiveMaxPool2d(_Adaptive):
    """y[n, c, i, j] = max of x[n, c] over PyTorch's adaptive window (i, j), for any output size.

    The gradient goes to the window's maximum: the first in row-major order when several tie, the
    last NaN when the window holds NaNs, as PyTorch's CPU kernel (``val > max || isnan(val)``).
    Overlapping windows may pick the same pixel; its gradients add up.
    """

    def forward(self, x):
        xp = get_array_module(x)
        windows = self._gather(x)          # a repeated position never wins over the one it repeats
        pick = windows.argmax(axis=-1)     # the first maximum; NumPy: the first NaN
        nan = windows != windows
        if nan.any():
            last = windows.shape[-1] - 1 - nan[..., ::-1].argmax(axis=-1)
            pick = xp.where(nan.any(axis=-1), last, pick)
        self.x_shape = x.shape
        self.winner = xp.take_along_axis(xp.broadcast_to(self.flat, windows.shape), pick[..., None], axis=-1)
        return xp.take_along_axis(windows, pick[..., None], axis=-1)[..., 0]

    def backward(self, gy):
        xp = get_array_module(gy)
        N, C, H, W = self.x_shape
        gx = xp.zeros((N * C, H * W), dtype=gy.dtype)
        rows, k = xp.arange(N * C)[:, None], gy.shape[2] * gy.shape[3]
        xp.add.at(gx, (rows, self.winner.reshape(N * C, k)), gy.reshape(N * C, k))
        return gx.reshape(self.x_shape)


def _adaptive(x, output_size, op, function):
    """Check x (floating point, (N, C, H, W) or unbatched (C, H, W)) and run the adaptive pool."""
    x = _unbatched(op, x, "biu")
    if x.ndim == 3:
        y = _adaptive(x.reshape(1, *x.shape), output_size, op, function)
        return y.reshape(y.shape[1:])
    return function(_output_size(x, output_size, op))(x)


def adaptive_avg_pool2d(x, output_size):
    """Average over PyTorch's adaptive windows: (N, C, H, W) -> (N, C, oh, ow), as torch's adaptive_avg_pool2d.

    output_size: an int or a pair (None keeps that size); any size, windows as in PyTorch (see
    :class:`AdaptiveAvgPool2d`); (C, H, W) input gives (C, oh, ow). ``adaptive_avg_pool2d(x, 1)`` is
    the SE block's squeeze with the two trailing axes kept. Raises NotImplementedError for integer
    or bool input and RuntimeError for an empty C, H or W, as PyTorch.
    """
    x = as_tensor(x)
    if x.ndim == 4 and x.dtype.kind == "f" and _output_size(x, output_size, "adaptive_avg_pool2d") == (1, 1):
        return global_avg_pool2d(x).reshape(x.shape[0], x.shape[1], 1, 1)
    return _adaptive(x, output_size, "adaptive_avg_pool2d", AdaptiveAvgPool2d)


def adaptive_max_pool2d(x, output_size):
    """Maximum over PyTorch's adaptive windows: (N, C, H, W) -> (N, C, oh, ow), as torch's adaptive_max_pool2d
    (values only).

    Any output size (see :class:`AdaptiveMaxPool2d`); (C, H, W) input gives (C, oh, ow). Raises
    NotImplementedError for integer or bool input and RuntimeError for an empty C, H or W, as PyTorch.
    """
    return _adaptive(x, output_size, "adaptive_max_pool2d", AdaptiveMaxPool2d)
