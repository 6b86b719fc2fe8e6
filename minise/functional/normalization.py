"""Batch normalisation as one fused op with the closed-form backward."""

from .. import parallel
from ..autograd import Function, mark_modified
from ..backend import get_array_module
from ..dtypes import accumulate_dtype
from ..tensor import Tensor, as_tensor


class BatchNorm(Function):
    """y = gamma * xhat + beta,   xhat = (x - mean) / sqrt(var + eps),   per channel c.

    x: (N, C) or (N, C, H, W) (any (N, C, ...))   gamma (weight), beta (bias): (C,)
    Statistics are taken over every axis but C: m = N * H * W values per channel.

    Training: mean and var are the batch's (var biased, divided by m); the running
    statistics (arrays of shape (C,), updated in place) move towards the batch's:
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)   (unbiased)
    Eval: mean and var are the running statistics, and nothing is updated.

    Backward (sums over n, h, w; inv_std = 1 / sqrt(var + eps)):
        dbeta  = sum(gy)
        dgamma = sum(gy * xhat)
        dx     = (1 / m) * gamma * inv_std * (m * gy - dbeta - xhat * dgamma)   (training)
        dx     = gamma * inv_std * gy                                          (eval: constant stats)
    Derivation: docs/derivations.md#batch-norm.

    Dtypes: float16 input is normalised in float32 (statistics summed in float32,
    as PyTorch's CPU and CUDA kernels do) and the output returned in float16;
    integer input raises NotImplementedError, as in PyTorch. An empty batch
    (N = 0) gives an empty output and leaves the running statistics alone.

    Speed: x is viewed as (N, C, M) and every per-channel sum is one einsum
    (no temporary the size of x). Forward and backward each make ONE full-size
    buffer (x - mean, turned into y or dx in place: fresh buffers cost page
    faults). Only x is saved, which the graph keeps anyway: backward recomputes
    x - mean rather than keeping xhat alive between the passes. Every channel is
    normalised on its own, so the channels are cut into one chunk per thread
    (``parallel.parallel_for``) and each thread makes ALL the passes over its
    channels: one hand-over per op, not one per pass. Each channel's numbers
    are the same whatever the cut.
    """

    def __init__(self, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps

    def forward(self, x, weight, bias):
        xp = get_array_module(x)
        n, c = x.shape[:2]
        acc = accumulate_dtype(x.dtype)     # float16 -> float32; float32 and float64 as they are
        x3 = x.reshape(n, c, -1 if n else 0).astype(acc, copy=False)   # (N, C, M): M = H * W, or 1 for (N, C)
        weight, bias = weight.astype(acc, copy=False), bias.astype(acc, copy=False)
        m = n * x3.shape[2]
        if m == 0:                          # an empty batch: nothing to normalise, nothing to learn
            self.save_for_backward(x, None, None, weight)
            return xp.empty(x.shape, dtype=x.dtype)
        y = xp.empty_like(x3)               # x3's memory order: channel-major stays channel-major
        if self.training:
            mean, var, inv_std = (xp.empty(c, dtype=acc) for _ in range(3))
        else:
            mean = self.running_mean.astype(acc)       # a copy: later training steps update the original
            inv_std = 1 / xp.sqrt(self.running_var.astype(acc) + self.eps)

        def normalize(ch):   # channels ch: every pass, on one thread
            xs, ys = x3[:, ch], y[:, ch]
            if self.training:
                mean[ch] = xp.einsum("ncm->c", xs) / m
                xp.subtract(xs, mean[ch, None], out=ys)            # x - mean: becomes y in place below
                var[ch] = xp.einsum("ncm,ncm->c", ys, ys) / m       # biased: this is what normalises the batch
                inv_std[ch] = 1 / xp.sqrt(var[ch] + self.eps)
                xp.multiply(ys, (weight[ch] * inv_std[ch])[:, None], out=ys)
                xp.add(ys, bias[ch, None], out=ys)
            else:
                scale = weight[ch] * inv_std[ch]
                xp.multiply(xs, scale[:, None], out=ys)
                xp.add(ys, (bias[ch] - mean[ch] * scale)[:, None], out=ys)

        parallel.parallel_for(c, normalize, x3)
        if self.training and self.running_mean is not None:
            self.running_mean[...] = (1 - self.momentum) * self.running_mean + self.momentum * mean
            self.running_var[...] = (1 - self.momentum) * self.running_var + self.momentum * (var * (m / (m - 1)))
        self.save_for_backward(x, mean, inv_std, weight)
        return y.reshape(x.shape).astype(x.dtype, copy=False)

    def backward(self, gy):
        x, mean, inv_std, weight = self.saved
        xp = get_array_module(gy)
        need_x, need_weight, need_bias = self.needs_input_grad
        n, c = x.shape[:2]
        if x.size == 0:
            zeros = xp.zeros(c, dtype=weight.dtype)
            return xp.zeros(x.shape, dtype=gy.dtype), zeros, zeros
        acc = weight.dtype
        gy3 = gy.reshape(n, c, -1).astype(acc, copy=False)
        m = n * gy3.shape[2]
        dbeta = xp.empty(c, dtype=acc)
        dgamma = dx = x3 = None
        if need_weight or (need_x and self.training):     # these need x - mean
            dgamma = xp.empty(c, dtype=acc)
            x3 = x.reshape(n, c, -1).astype(acc, copy=False)
        if need_x:
            dx = xp.empty_like(gy3)

        def gradients(ch):   # channels ch: every pass, on one thread
            gys = gy3[:, ch]
            scale = (weight[ch] * inv_std[ch])[:, None]
            dbeta[ch] = xp.einsum("ncm->c", gys)
            if dgamma is not None:
                xc = xp.subtract(x3[:, ch], mean[ch, None], out=dx[:, ch] if need_x else None)
                dgamma[ch] = xp.einsum("ncm,ncm->c", gys, xc) * inv_std[ch]       # sum(gy * xhat)
            if need_x and self.training:
                # dx = scale * (gy - dbeta / m - xhat * dgamma / m), built in place in xc's buffer
                dxs = xc
                xp.multiply(dxs, (-inv_std[ch] * dgamma[ch] / m)[:, None], out=dxs)
                xp.subtract(dxs, (dbeta[ch] / m)[:, None], out=dxs)
                xp.add(dxs, gys, out=dxs)
                xp.multiply(dxs, scale, out=dxs)
            elif need_x:
                xp.multiply(gys, scale, out=dx[:, ch])

        parallel.parallel_for(c, gradients, gy3)
        if dx is not None:
            dx = dx.reshape(x.shape).astype(x.dtype, copy=False)
        return dx, dgamma if need_weight else None, dbeta if need_bias else None


def _shape_of(t):
    return None if t is None else tuple(t.shape)


def _check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum):
    if x.ndim < 2:
        raise ValueError(
            f"batch_norm: input must be (N, C) or (N, C, H, W), got shape {x.shape} ({x.ndim}-D)"
        )
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and _shape_of(t) != (c,):
            raise ValueError(
                f"batch_norm: {name} has shape {_shape_of(t)}, expected ({c},): one value per channel "
                f"of input of shape {x.shape}"
            )
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: give both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError(
            "batch_norm: eval mode (training=False) normalises with running_mean and running_var, got None"
        )
    if x.dtype.kind != "f":
        raise NotImplementedError(
            f"batch_norm: not implemented for {x.dtype} input, as in PyTorch; normalisation needs floats. "
            f"Convert the input first, e.g. x.float() (images: x.float() / 255)"
        )
    if training and 0 < x.numel() <= c:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, got input of shape {x.shape}"
        )
    if training and momentum is None:
        raise ValueError("batch_norm: momentum must be a number in [0, 1], got None")


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation, as torch.nn.functional.batch_norm.

    x: (N, C) or (N, C, H, W).  running_mean, running_var: Tensors (C,) updated
    in place when training (or None: then only batch statistics are used).
    weight (gamma), bias (beta): Tensors (C,) or None (1 and 0).
    """
    x = as_tensor(x)
    _check_batch_norm(x, running_mean, running_var, weight, bias, training, momentum)
    xp = x.xp
    c = x.shape[1]
    if weight is None:
        weight = Tensor(xp.ones(c, dtype=x.dtype))
    if bias is None:
        bias = Tensor(xp.zeros(c, dtype=x.dtype))
    stats = (running_mean, running_var)
    running_mean, running_var = (t.data if isinstance(t, Tensor) else t for t in stats)
    y = BatchNorm(running_mean, running_var, training, momentum, eps)(x, weight, bias)
    if training and x.numel():
        mark_modified(*(t for t in stats if isinstance(t, Tensor)))  # updated in place
    return y
