"""Making tensors the way PyTorch does: ``ms.zeros``, ``ms.randn``, ``ms.arange``, ``ms.from_numpy``...

    x = ms.randn(8, 3, 32, 32)                 # float32, from the generator ms.manual_seed seeds
    y = ms.zeros(4, dtype=ms.int64)
    z = ms.arange(10)                          # int64, like torch.arange(10)

Sizes are given as several ints or one tuple (``ms.zeros(2, 3)`` == ``ms.zeros((2, 3))``). Every
function takes ``dtype`` (default float32, or int64 where PyTorch's default is an integer),
``device`` ("cpu", "cuda") and ``requires_grad``. The dtype names ``ms.float32``, ``ms.float64``,
``ms.int64``... are NumPy's dtypes, so ``x.dtype == ms.float32`` reads as in PyTorch.

This module sits just above ``tensor.py``: it needs the backend and the Tensor, nothing else.
"""

import builtins

import numpy as np

from . import backend
from .tensor import DEFAULT_DTYPE, Tensor

__all__ = ["zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like", "rand", "randn",
           "randint", "rand_like", "randn_like", "arange", "linspace", "eye", "from_numpy", "device",
           "float16", "float32", "float64", "half", "float", "double", "int8", "int16", "int32", "int64",
           "int", "long", "uint8", "bool"]

# --- dtypes, under PyTorch's names (below, int / float / bool are these: builtins.int is Python's)
float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)  # noqa: A001 - PyTorch's names shadow the builtins on purpose
float64 = double = np.dtype(np.float64)
int8, int16 = np.dtype(np.int8), np.dtype(np.int16)
int32 = int = np.dtype(np.int32)  # noqa: A001
int64 = long = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool = np.dtype(np.bool_)  # noqa: A001


def _size(size, name):
    """``(2, 3)`` from ``(2, 3)``, ``((2, 3),)`` or ``([2, 3],)``; rejects negative or non-int sizes."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if not all(isinstance(n, (np.integer, builtins.int)) and n >= 0 for n in size):
        raise TypeError(f"{name}(): size must be non-negative ints, got {size!r}")
    return tuple(size)


def _make(array, device, requires_grad):
    return Tensor(array, requires_grad=requires_grad, device=device)


def zeros(*size, dtype=None, device="cpu", requires_grad=False):
    """A tensor of zeros, float32 unless ``dtype`` says otherwise (``torch.zeros``)."""
    return _make(np.zeros(_size(size, "zeros"), dtype or DEFAULT_DTYPE), device, requires_grad)


def ones(*size, dtype=None, device="cpu", requires_grad=False):
    """A tensor of ones (``torch.ones``)."""
    return _make(np.ones(_size(size, "ones"), dtype or DEFAULT_DTYPE), device, requires_grad)


def empty(*size, dtype=None, device="cpu", requires_grad=False):
    """A tensor whose values are whatever the memory held (``torch.empty``): fill it before reading."""
    return _make(np.empty(_size(size, "empty"), dtype or DEFAULT_DTYPE), device, requires_grad)


def full(size, fill_value, *, dtype=None, device="cpu", requires_grad=False):
    """A tensor of ``size`` filled with ``fill_value``; the dtype follows the value as in torch.full
    (a Python float: float32, an int: int64, a bool: bool)."""
    if dtype is None:
        kind = np.asarray(fill_value).dtype.kind
        dtype = {"f": DEFAULT_DTYPE, "i": np.int64, "u": np.int64, "b": np.bool_}.get(kind, DEFAULT_DTYPE)
    size = size if isinstance(size, (tuple, list)) else (size,)
    return _make(np.full(_size(tuple(size), "full"), fill_value, dtype), device, requires_grad)


def _like(t, dtype, device):
    t = t if isinstance(t, Tensor) else Tensor(t)
    return t.shape, (dtype or t.dtype), (device or t.device)


def zeros_like(t, *, dtype=None, device=None, requires_grad=False):
    """Zeros with ``t``'s shape, dtype and device (``torch.zeros_like``)."""
    shape, dtype, device = _like(t, dtype, device)
    return zeros(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(t, *, dtype=None, device=None, requires_grad=False):
    """Ones with ``t``'s shape, dtype and device (``torch.ones_like``)."""
    shape, dtype, device = _like(t, dtype, device)
    return ones(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(t, fill_value, *, dtype=None, device=None, requires_grad=False):
    shape, dtype, device = _like(t, dtype, device)
    return full(shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def _float_dtype(dtype, name):
    dtype = np.dtype(dtype or DEFAULT_DTYPE)
    if dtype.kind != "f":
        raise TypeError(f"{name}(): random floats need a floating dtype, got {dtype}")
    return dtype


def rand(*size, dtype=None, device="cpu", requires_grad=False):
    """Uniform samples in [0, 1) (``torch.rand``), from the generator ``ms.manual_seed`` seeds.

    The numbers are NumPy's, not PyTorch's: the same seed gives different values than torch.
    """
    dtype = _float_dtype(dtype, "rand")
    return _make(backend.rng().random(_size(size, "rand")).astype(dtype), device, requires_grad)


def randn(*size, dtype=None, device="cpu", requires_grad=False):
    """Standard normal samples (``torch.randn``), from the generator ``ms.manual_seed`` seeds."""
    dtype = _float_dtype(dtype, "randn")
    return _make(backend.rng().standard_normal(_size(size, "randn")).astype(dtype), device, requires_grad)


def rand_like(t, *, dtype=None, device=None, requires_grad=False):
    shape, dtype, device = _like(t, dtype, device)
    return rand(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def randn_like(t, *, dtype=None, device=None, requires_grad=False):
    shape, dtype, device = _like(t, dtype, device)
    return randn(shape, dtype=dtype, device=device, requires_grad=requires_grad)


def randint(low, high=None, size=None, *, dtype=None, device="cpu"):
    """Random integers in [low, high) of ``size`` (a tuple), int64 (``torch.randint``).

    ``randint(high, size)`` as in PyTorch: low defaults to 0 when only two arguments are given.
    """
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint(): give randint(high, size) or randint(low, high, size), size a tuple")
        low, high, size = 0, low, high
    values = backend.rng().integers(low, high, size=_size(tuple(size), "randint"))
    return _make(values.astype(dtype or np.int64), device, False)


def arange(start, end=None, step=1, *, dtype=None, device="cpu", requires_grad=False):
    """Values from ``start`` up to (not including) ``end`` by ``step`` (``torch.arange``).

    int64 when start, end and step are all ints, float32 otherwise (PyTorch's rule).
    """
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, (np.integer, builtins.int)) for v in (start, end, step))
        dtype = np.int64 if ints else DEFAULT_DTYPE
    return _make(np.arange(start, end, step).astype(dtype), device, requires_grad)


def linspace(start, end, steps, *, dtype=None, device="cpu", requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (``torch.linspace``), float32."""
    return _make(np.linspace(start, end, steps).astype(dtype or DEFAULT_DTYPE), device, requires_grad)


def eye(n, m=None, *, dtype=None, device="cpu", requires_grad=False):
    """The identity matrix (n, m or n) (``torch.eye``), float32."""
    return _make(np.eye(n, m, dtype=dtype or DEFAULT_DTYPE), device, requires_grad)


def from_numpy(array):
    """A Tensor that shares ``array``'s memory and keeps its dtype (``torch.from_numpy``).

    Changing one changes the other. float64 arrays stay float64: convert with ``.float()`` before
    feeding a float32 model (a layer raises on a dtype mismatch, as PyTorch does).
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy(): expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def device(spec):
    """The device string ``spec`` names, checked ("cpu", "cuda", "cuda:1"): ``ms.device("cuda:0")``.

    minise names devices with plain strings; this exists so ``torch.device(...)`` lines translate.
    """
    backend.parse_device(spec)
    return str(spec)
