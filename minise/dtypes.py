"""The dtype policy, in one place: PyTorch's type promotion and accumulation rules.

Every op asks this module what dtype its result has, so ``int / int`` gives
float32 and ``float16`` sums do not overflow the same way everywhere:

- :func:`result_type`: the dtype of a binary op's result, as ``torch.result_type``.
  Dtypes fall in three categories, bool < integer < floating. Operands fall in
  three tiers, tensors with dimensions > 0-d tensors > Python numbers: a lower
  tier changes the result only when its category is higher, and a Python float
  then gives float32 (PyTorch's default float dtype), not float64. Inside a
  category dtypes promote as usual (int32 + int64 -> int64, float16 + float32 ->
  float32, uint8 + int8 -> int16); across categories the higher category's dtype
  wins, whatever its size (int64 + float16 -> float16; NumPy would say float64).
- :func:`float_result`: the dtype of an op that needs floats (true division, exp,
  log...): an integer or bool result becomes float32.
- :func:`accumulate_dtype`: float16 sums accumulate in float32 (PyTorch's
  "opmath" type) and the result goes back to float16.
- :func:`to_array`: what ``ms.tensor(data)`` does with lists, numbers and arrays:
  Python floats become float32, Python ints int64, anything not a number is a TypeError.

Worked examples (each checked against PyTorch in tests/test_opinfo.py)::

    int64 [1, 2] / int64 [2, 4]      -> float32   (true division needs floats)
    int64 [1, 2] * 2.5               -> float32   (a Python float raises the category)
    float16 [1.] + float64 0-d       -> float16   (a 0-d tensor does not widen a same-category tensor)
    int64 [1, 2] + float64 0-d       -> float64   (...but raises the category with its own dtype)
    uint8 [1] + (-1)                 -> uint8 [0] (Python ints wrap, as in PyTorch)
"""

import numpy as np

from . import backend

__all__ = [
    "DEFAULT_DTYPE",
    "is_float",
    "category",
    "promote_types",
    "result_type",
    "float_result",
    "accumulate_dtype",
    "scalar_to_array",
    "to_array",
]

DEFAULT_DTYPE = np.dtype(np.float32)  # torch.get_default_dtype()
_INT64 = np.dtype(np.int64)
_BOOL = np.dtype(bool)
_CATEGORY = {"b": 0, "i": 1, "u": 1, "f": 2}
# What a Python number is worth in the scalar tier: bool, int64, or the default float.
_SCALAR_DTYPE = {0: _BOOL, 1: _INT64, 2: DEFAULT_DTYPE}


def is_float(dtype):
    return np.dtype(dtype).kind == "f"


def category(dtype):
    """0 for bool, 1 for (unsigned) integers, 2 for floats; a TypeError for anything else."""
    kind = np.dtype(dtype).kind
    if kind not in _CATEGORY:
        raise TypeError(f"minise supports bool, integer and floating dtypes, got {np.dtype(dtype)}")
    return _CATEGORY[kind]


def _scalar_category(value):
    if isinstance(value, (bool, np.bool_)):
        return 0
    if isinstance(value, (int, np.integer)):
        return 1
    if isinstance(value, (float, np.floating)):
        return 2
    raise TypeError(f"expected a Tensor or a Python number (bool, int, float), got {type(value).__name__}")


def promote_types(a, b):
    """The common dtype of two tensors of the same tier (torch.promote_types)."""
    a, b = np.dtype(a), np.dtype(b)
    if a == b:
        return a
    ca, cb = category(a), category(b)
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def _combine(higher, lower):
    """PyTorch's combine_categories: a lower tier counts only if its category is higher."""
    if higher is None:
        return lower
    if lower is None or category(higher) == 2:
        return higher
    if category(higher) == 0 or category(lower) == 2:
        return promote_types(higher, lower)
    return higher


def result_type(*operands):
    """The dtype of an op on ``operands`` (arrays, Tensors' ``.data``, or Python numbers), as torch.result_type.

    Raises TypeError for an operand that is neither an array nor a number.
    """
    tiers = [None, None, None]  # dimensioned tensors, 0-d tensors, Python numbers
    for x in operands:
        if x is None:
            continue
        if backend.is_array(x):
            tier, dtype = (0 if x.ndim else 1), x.dtype
        else:
            tier, dtype = 2, _SCALAR_DTYPE[_scalar_category(x)]
        tiers[tier] = dtype if tiers[tier] is None else promote_types(tiers[tier], dtype)
    return _combine(tiers[0], _combine(tiers[1], tiers[2]))


def float_result(dtype):
    """The dtype an op that needs floats computes in: ``dtype`` if floating, else float32."""
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "f" else DEFAULT_DTYPE


def accumulate_dtype(dtype):
    """The dtype to sum ``dtype`` values in: float32 for float16 (as PyTorch), ``dtype`` otherwise."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def scalar_to_array(value, dtype, xp):
    """A Python number as a 0-d array of ``dtype``; integers wrap around as in PyTorch (uint8 + -1)."""
    try:
        return xp.asarray(value, dtype=dtype)
    except OverflowError:
        return xp.asarray(np.asarray(value, dtype=np.int64).astype(dtype))


def _first_non_number(array):
    for index, item in enumerate(array.reshape(-1)):
        if not isinstance(item, (bool, int, float, np.bool_, np.integer, np.floating)):
            return index, item
    return None, None


def _check_numeric(array, data):
    """TypeError, naming what was found, for data that is not numbers (strings, None, objects)."""
    if array.dtype.kind in _CATEGORY:
        return
    if array.dtype.kind == "O":
        index, item = _first_non_number(array)
        what = f"{type(item).__name__} ({item!r}) at flat index {index}"
    elif array.dtype.kind in "US":
        what = f"strings (dtype {array.dtype}, e.g. {str(array.reshape(-1)[0])!r})" if array.size else "strings"
    else:
        what = f"dtype {array.dtype}"
    raise TypeError(
        f"tensor(): data must be numbers (bool, int, float), nested lists of them or a numeric array, "
        f"got {what} in a {type(data).__name__}. Convert the values to numbers first."
    )


def to_array(data, dtype=None, device=None):
    """Lists, numbers, NumPy or CuPy arrays as an array on ``device`` (what ``ms.tensor`` stores).

    Python floats become float32 (PyTorch's default), Python ints int64; an array
    keeps its dtype. Raises TypeError for data that is not numeric.
    """
    if isinstance(data, np.generic):  # a NumPy scalar (e.g. from a full reduction) keeps its dtype
        data = np.asarray(data)
    if backend.is_array(data):
        array = data
        _check_numeric(array, data)
        if dtype is not None:
            array = array.astype(dtype, copy=False)
    else:
        array = np.asarray(data)
        _check_numeric(array, data)
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        elif array.dtype.kind == "f":
            array = array.astype(DEFAULT_DTYPE, copy=False)  # Python floats -> float32
        elif array.dtype.kind in "iu":
            array = array.astype(np.int64, copy=False)
    if device is not None:
        array = backend.to_device(array, device)
    return array
