"""Parameter: the Tensor a Module trains."""

from ..tensor import Tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A Tensor that a Module trains: ``requires_grad=True`` by default.

    Assigning one to a Module attribute registers it, so ``parameters()`` and
    the optimiser find it. ``data`` keeps its dtype (float32 unless given otherwise).
    """

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
