"""Matrix product with its backward."""

from ..autograd import Function, sum_to
from ..backend import get_array_module


class MatMul(Function):
    """y = a @ b, 2-D or batched (leading dims broadcast, as numpy.matmul).

    dL/da = gy @ b^T,   dL/db = a^T @ gy   (transposing the last two axes);
    1-D operands are treated as a row (a) or a column (b) vector.
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
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = g2 @ xp.swapaxes(b2, -1, -2)
            ga = sum_to(ga, a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = xp.swapaxes(a2, -1, -2) @ g2
            gb = sum_to(gb, b2.shape).reshape(b.shape)
        return ga, gb


def matmul(a, b):
    return MatMul()(a, b)
