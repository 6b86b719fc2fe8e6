"""Matrix product with its backward, in every case of torch.matmul."""

import numpy as np

from ..autograd import Function, sum_to
from ..backend import get_array_module
from ..tensor import as_tensor


class MatMul(Function):
    """y = a @ b, as torch.matmul (and numpy.matmul):

    - 1-D @ 1-D: the dot product, a 0-d result;
    - 2-D @ 2-D: the matrix product (n, k) @ (k, m) -> (n, m);
    - 1-D @ N-D: a is a row (1, k) for the product, and that 1 is removed after;
    - N-D @ 1-D: b is a column (k, 1), and that 1 is removed after;
    - N-D @ N-D: batched; the leading (batch) dims broadcast.

    dL/da = gy @ b^T,   dL/db = a^T @ gy   (transposing the last two axes), computed on
    the 2-D-or-more forms of a, b and gy, then summed over broadcast batch dims
    and reshaped back to a's and b's shapes.
    """

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a @ b

    def backward(self, gy):
        a, b = self.saved
        xp = get_array_module(a)
        a2 = a[None, :] if a.ndim == 1 else a          # (1, k)
        b2 = b[:, None] if b.ndim == 1 else b          # (k, 1)
        g2 = gy
        if b.ndim == 1:                                # put back the removed dims: b's column first,
            g2 = xp.expand_dims(g2, -1)                # so 1-D @ 1-D (a 0-d gy) becomes (1, 1)
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = g2 @ xp.swapaxes(b2, -1, -2)
            ga = sum_to(ga, a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = xp.swapaxes(a2, -1, -2) @ g2
            gb = sum_to(gb, b2.shape).reshape(b.shape)
        return ga, gb


def matmul(a, b):
    """a @ b in all of torch.matmul's cases (see :class:`MatMul`).

    Errors, as PyTorch: RuntimeError for a 0-d operand, for inputs of different
    dtypes (matmul does not promote: convert one, e.g. b.float()) and for
    mismatched inner sizes; NotImplementedError for bool inputs.
    """
    a, b = as_tensor(a), as_tensor(b, a)
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need to be at least 1-D, got shapes {a.shape} and {b.shape}")
    if a.dtype != b.dtype:
        raise RuntimeError(f"matmul: expected both inputs to have the same dtype, got {a.dtype} and {b.dtype} "
                           f"(matmul does not promote, as in PyTorch); convert one, e.g. b.astype({str(a.dtype)!r})")
    if a.dtype == np.bool_:
        raise NotImplementedError("matmul: not implemented for bool tensors (as in PyTorch)")
    k_a, k_b = a.shape[-1], b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise RuntimeError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied "
                           f"(a's last dim {k_a} != b's {'only' if b.ndim == 1 else 'second-to-last'} dim {k_b})")
    return MatMul()(a, b)
