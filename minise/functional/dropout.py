"""Inverted dropout: zero each element with probability p, scale the survivors by 1 / (1 - p)."""

from .. import backend
from ..autograd import Function
from ..tensor import as_tensor


class Dropout(Function):
    """y = x * mask,   mask = keep / (1 - p),   keep ~ Bernoulli(1 - p) per element.

    dy/dx = mask: the gradient flows through the kept elements, scaled the same way.
    Scaling at training time ("inverted" dropout) keeps E[y] = x, so at test time
    dropout is simply the identity.

    x: any shape.  The mask is drawn from minise's seeded generator
    (``ms.manual_seed``) on the CPU, from CuPy's on a GPU. Saves the mask.
    """

    def __init__(self, p=0.5):
        self.p = p

    def forward(self, x):
        if self.p == 1:                          # everything dropped, as torch does
            mask = backend.get_array_module(x).zeros_like(x)
        else:
            keep = backend.random_uniform(x.shape, x) >= self.p
            mask = keep.astype(x.dtype) * (1 / (1 - self.p))
        self.save_for_backward(mask)
        return x * mask

    def backward(self, gy):
        (mask,) = self.saved
        return gy * mask


def dropout(x, p=0.5, training=True):
    """Inverted dropout, as torch.nn.functional.dropout: identity when not training or p == 0."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p is the probability of zeroing an element and must be in [0, 1], got {p}")
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise RuntimeError(f"dropout: needs a floating point input (the kept values are scaled by 1 / (1 - p)), "
                           f"got {x.dtype}, as in PyTorch; convert first, e.g. x.float()")
    if not training or p == 0:
        return x
    return Dropout(p)(x)
