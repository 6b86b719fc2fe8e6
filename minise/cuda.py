"""``ms.cuda.is_available()``, as ``torch.cuda.is_available()``: is there a GPU minise can use?"""

from . import backend

__all__ = ["is_available"]


def is_available():
    """True when CuPy imports and a CUDA GPU answers (then ``x.to("cuda")`` works)."""
    return backend.gpu_available()
