"""The fully connected layer as one op: y = x W^T + b."""

from ..autograd import Function


class Linear(Function):
    """y = x @ W^T + b.

    x: (..., in)   weight W: (out, in)   bias b: (out,) or absent   y: (..., out)

    Backward, with the leading dims of x flattened into rows (x2: (R, in), gy2: (R, out)):
        dx = gy @ W                 (..., in)
        dW = gy2^T @ x2             (out, in): summed over every row
        db = sum of gy2 over rows   (out,)
    Three GEMMs in all (one forward, two backward); derivation in
    docs/derivations.md#linear.
    """

    def forward(self, x, weight, bias=None):
        _check_linear(x, weight, bias)
        self.save_for_backward(x, weight)
        x2 = x.reshape(-1, x.shape[-1])    # one 2-D GEMM, however many leading dims
        y = x2 @ weight.T
        if bias is not None:
            y += bias
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(self, gy):
        x, weight = self.saved
        gy2 = gy.reshape(-1, weight.shape[0])
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = (gy2 @ weight).reshape(x.shape)
        if self.needs_input_grad[1]:
            gw = gy2.T @ x.reshape(-1, x.shape[-1])
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            gb = gy2.sum(axis=0)
        return (gx, gw) if len(self.needs_input_grad) == 2 else (gx, gw, gb)


def _check_linear(x, weight, bias):
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} has {x.shape[-1] if x.ndim else 0} features in its last "
            f"dimension, but weight of shape {weight.shape} expects {weight.shape[1]} (input (..., in), "
            f"weight (out, in))"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(
            f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},) = (out_features,) "
            f"for weight of shape {weight.shape}"
        )


def linear(x, weight, bias=None):
    """y = x @ weight.T + bias, as torch.nn.functional.linear.  x (..., in), weight (out, in), bias (out,)."""
    if bias is None:
        return Linear()(x, weight)
    return Linear()(x, weight, bias)
