"""Losses: cross_entropy (log-softmax and negative log-likelihood fused into one op), nll_loss, mse_loss,
l1_loss and binary_cross_entropy_with_logits (composed from elementwise ops)."""

import numpy as np

from .. import backend
from ..autograd import Function
from ..backend import get_array_module
from ..tensor import Tensor, as_tensor
from .activation import relu
from .arithmetic import exp, log

_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """loss_n = -log softmax(x_n)[t_n] = log(sum_k exp(x_nk)) - x_n,t_n;   mean over n.

    logits x: (N, K)   labels t: (N,) integers in [0, K)   loss: () ("mean", "sum") or (N,) ("none")

    Backward (one line, because softmax and log cancel):
        dloss_n / dx_nk = softmax(x_n)_k - [k == t_n]          ("softmax - onehot")
    and "mean" divides by N. With label smoothing eps the target row is
    (1 - eps) * onehot + eps / K instead of onehot, and the same formula holds.
    Derivation: docs/derivations.md#cross-entropy.

    Saves softmax(x) (N, K); the labels are an option, not an input: they get no gradient.
    """

    def __init__(self, labels, reduction="mean", label_smoothing=0.0):
        self.labels = labels
        self.reduction = reduction
        self.label_smoothing = label_smoothing

    def forward(self, logits):
        xp = get_array_module(logits)
        n, k = logits.shape
        rows = xp.arange(n)
        shifted = logits - logits.max(axis=1, keepdims=True)   # exp(shifted) <= 1: no overflow
        with np.errstate(under="ignore"):
            probs = xp.exp(shifted)
        total = probs.sum(axis=1, keepdims=True)
        probs /= total
        log_total = xp.log(total[:, 0])
        loss = log_total - shifted[rows, self.labels]
        eps = self.label_smoothing
        if eps:
            # the uniform part of the target: mean over k of -log softmax(x_n)_k
            loss = (1 - eps) * loss + eps * (log_total - shifted.mean(axis=1))
        self.save_for_backward(probs)
        if self.reduction == "mean":
            with np.errstate(invalid="ignore"):  # an empty batch: nan, as in PyTorch
                return xp.asarray(loss.sum() / n if n else loss.sum() * np.nan, dtype=logits.dtype)
        if self.reduction == "sum":
            return xp.asarray(loss.sum())
        return loss

    def backward(self, gy):
        (probs,) = self.saved
        n, k = probs.shape
        xp = get_array_module(probs)
        eps = self.label_smoothing
        gx = probs.copy()                        # a copy: backward may run again (retain_graph)
        gx[xp.arange(n), self.labels] -= 1 - eps
        if eps:
            gx -= eps / k
        if self.reduction == "mean":
            gx *= gy / max(n, 1)                 # an empty batch has an empty gradient
        elif self.reduction == "sum":
            gx *= gy
        else:
            gx *= gy[:, None]
        return gx


def _check_cross_entropy(logits, labels, reduction, label_smoothing):
    """Validate the arguments; return the labels as an integer array on the logits' device."""
    if logits.ndim != 2:
        raise ValueError(
            f"cross_entropy: logits must be 2-D (N, K) = (batch, classes), got shape {logits.shape}"
        )
    if logits.dtype.kind != "f":  # NotImplementedError as PyTorch's log_softmax (a RuntimeError subclass)
        raise NotImplementedError(f"cross_entropy: logits must be floating point, got dtype {logits.dtype}; "
                                  f"convert first, e.g. logits.float()")
    raw = labels.data if isinstance(labels, Tensor) else labels
    if not backend.is_array(raw):
        raw = np.asarray(raw)
    n, k = logits.shape
    if raw.dtype.kind not in "iu":
        raise ValueError(
            f"cross_entropy: labels must be integer class indices (e.g. int64), got dtype {raw.dtype}"
        )
    if raw.shape != (n,):
        raise ValueError(
            f"cross_entropy: labels have shape {tuple(raw.shape)}, expected ({n},): one class index "
            f"per row of logits of shape {logits.shape}"
        )
    if n:
        low, high = int(raw.min()), int(raw.max())
        if low < 0 or high >= k:
            raise ValueError(
                f"cross_entropy: labels must be in [0, {k}) for logits with {k} classes, "
                f"got values from {low} to {high}"
            )
    if reduction not in _REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    return backend.to_device(raw, backend.device_of(logits.data))


def cross_entropy(logits, labels, *, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of raw logits (N, K) against integer labels (N,), as torch.nn.functional.cross_entropy.

    labels: an integer Tensor, NumPy/CuPy array or list.  reduction: "mean"
    (default), "sum" or "none" (per-sample losses, (N,)).  label_smoothing:
    mixes the one-hot target with the uniform distribution, as PyTorch.
    """
    logits = as_tensor(logits)
    labels = _check_cross_entropy(logits, labels, reduction, label_smoothing)
    return CrossEntropy(labels, reduction, label_smoothing)(logits)


# --- regression and binary losses, composed from the elementwise ops (their gradients come for free) ----
def _reduce(loss, reduction, op):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _same_shape(input, target, op):
    input, target = as_tensor(input), as_tensor(target, like=as_tensor(input))
    if input.shape != target.shape:
        raise ValueError(f"{op}: input has shape {input.shape} but target has {target.shape}; they must match "
                         "(PyTorch would broadcast with a warning: almost always a bug, e.g. (N, 1) vs (N,))")
    return input, target


def mse_loss(input, target, *, reduction="mean"):
    """Mean squared error (input - target)^2, as torch.nn.functional.mse_loss. Shapes must match."""
    input, target = _same_shape(input, target, "mse_loss")
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def l1_loss(input, target, *, reduction="mean"):
    """Mean absolute error |input - target|, as torch.nn.functional.l1_loss. Shapes must match."""
    input, target = _same_shape(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction, "l1_loss")


def nll_loss(log_probs, labels, *, reduction="mean"):
    """Negative log-likelihood -log_probs[n, t_n] of log-probabilities (N, K) (from log_softmax), labels (N,).

    As torch.nn.functional.nll_loss; ``cross_entropy(x, t) == nll_loss(log_softmax(x), t)``.
    """
    log_probs = as_tensor(log_probs)
    raw = _check_cross_entropy(log_probs, labels, reduction, 0.0)
    xp = get_array_module(raw)
    picked = log_probs[xp.arange(log_probs.shape[0]), raw]
    return _reduce(-picked, reduction, "nll_loss")


def binary_cross_entropy_with_logits(input, target, *, reduction="mean"):
    """-[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] from logits x, as PyTorch's function.

    Computed as max(x, 0) - x t + log(1 + exp(-|x|)), which never overflows. Shapes must match.
    """
    x, t = _same_shape(input, target, "binary_cross_entropy_with_logits")
    loss = relu(x) - x * t + log(1 + exp(-x.abs()))
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")
