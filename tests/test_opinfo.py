"""The differential harness: every (op, sample) of tests/opinfo.py through minise and PyTorch.

For each pair the oracle is PyTorch: the same value (NaN where PyTorch has NaN),
the same dtype and shape, the same gradient for every floating input (with a
fixed upstream gradient), or, where PyTorch refuses the input, an exception of
the same class (or a subclass) from minise. Skipped as a whole without torch.
"""

import inspect

import numpy as np
import pytest
from opinfo import OPS, upstream

import minise as ms
import minise.functional as F

torch = pytest.importorskip("torch")

CASES = [(info, i) for info in OPS for i in range(len(info.samples))]
TOLERANCE = {"float16": (2e-2, 2e-2), "float32": (2e-5, 2e-5), "float64": (1e-9, 1e-12)}


def _id(case):
    info, i = case
    desc = info.samples[i].desc or str(i)
    return f"{info.name}[{desc}]".replace(" ", "_")


def _to_ms(a, grad):
    if isinstance(a, np.ndarray):
        return ms.tensor(a, requires_grad=grad and a.dtype.kind == "f")
    return a


def _to_torch(a, grad):
    if isinstance(a, np.ndarray):
        t = torch.from_numpy(np.array(a, order="C"))    # a copy: torch refuses negative strides
        return t.requires_grad_(True) if grad and a.dtype.kind == "f" else t
    return a


def _call(fn, args, kwargs):
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # the exception is the result being compared
        return None, exc


def _as_numpy(x):
    if isinstance(x, ms.Tensor):
        return x.numpy()
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return x


def _compare(got, want, where, tolerance_of=None):
    """Value, dtype and shape of one output (a Tensor, a NumPy array, or a Python value)."""
    if isinstance(want, (tuple, list)) and not isinstance(got, (ms.Tensor, np.ndarray)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want), f"{where}: {got!r} vs {want!r}"
        for k, (g, w) in enumerate(zip(got, want)):
            _compare(g, w, f"{where}[{k}]")
        return
    if not isinstance(want, (torch.Tensor, np.ndarray)):
        assert type(got) is type(want), f"{where}: minise gave {type(got).__name__}, PyTorch {type(want).__name__}"
        np.testing.assert_equal(got, want, err_msg=where)
        return
    got, want = _as_numpy(got), _as_numpy(want)
    assert got.shape == want.shape, f"{where}: shape {got.shape}, PyTorch {want.shape}"
    assert got.dtype == want.dtype, f"{where}: dtype {got.dtype}, PyTorch {want.dtype}"
    if got.dtype.kind == "f":
        rtol, atol = max(TOLERANCE[got.dtype.name], TOLERANCE.get(tolerance_of, (0, 0)))
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True, err_msg=where)
    else:
        np.testing.assert_array_equal(got, want, err_msg=where)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_op_matches_torch(case):
    info, i = case
    sample = info.samples[i]
    grad = info.grad and not sample.no_grad
    ms_args = [_to_ms(a, grad) for a in sample.args]
    torch_args = [_to_torch(a, grad) for a in sample.args]
    want, torch_error = _call(info.torch_fn, torch_args, sample.kwargs)
    with np.errstate(all="ignore"):  # NumPy's warnings are not results
        got, ms_error = _call(info.ms_fn, ms_args, sample.kwargs)
    if torch_error is not None:
        assert ms_error is not None, (f"PyTorch raises {type(torch_error).__name__}: {torch_error}; "
                                      f"minise returned {got!r}")
        assert isinstance(ms_error, type(torch_error)), (
            f"PyTorch raises {type(torch_error).__name__} ({torch_error}); minise raised "
            f"{type(ms_error).__name__}: {ms_error}")
        return
    if ms_error is not None:
        raise AssertionError(f"PyTorch accepts this input, minise raised {type(ms_error).__name__}") from ms_error
    _compare(got, want, "value")
    if not (grad and isinstance(got, ms.Tensor) and got.requires_grad and want.requires_grad):
        return
    g = upstream(got.shape, got.dtype)
    with np.errstate(all="ignore"):
        got.backward(g)
    want.backward(torch.from_numpy(g))
    for k, (a, t) in enumerate(zip(ms_args, torch_args)):
        if isinstance(a, ms.Tensor) and a.requires_grad:
            got_grad = a.grad if a.grad is not None else ms.tensor(np.zeros(a.shape, a.dtype))
            want_grad = t.grad if t.grad is not None else torch.zeros_like(t)
            _compare(got_grad, want_grad, f"gradient of input {k}", tolerance_of=got.dtype.name)


# --- coverage: every public op and Tensor method has an entry ---------------------------
NOT_OPS = {
    # attributes, not ops (compared on every sample through the values)
    "shape", "dtype", "ndim", "size", "device", "is_leaf", "xp",
    # graph plumbing, tested in tests/test_autograd.py
    "backward", "zero_grad", "retain_grad", "register_hook", "requires_grad_", "cuda", "__repr__", "__hash__",
    "__init__", "_compare",
}


def _public_functional_ops():
    return {n for n, v in vars(F).items() if not n.startswith("_") and callable(v) and not inspect.isclass(v)
            and not inspect.ismodule(v)}


def test_harness_covers_every_public_functional_op():
    covered = {info.name.split()[0] for info in OPS}
    missing = sorted(_public_functional_ops() - covered)
    assert not missing, f"add an entry to tests/opinfo.py for: {missing}"


def test_harness_covers_every_tensor_method():
    covered = {info.name.split()[0] for info in OPS}
    methods = {n for n, v in vars(ms.Tensor).items() if n not in NOT_OPS and (callable(v) or isinstance(v, property))
               and (not n.startswith("_") or n.startswith("__"))}
    missing = sorted(f"Tensor.{n}" for n in methods if f"Tensor.{n}" not in covered)
    assert not missing, f"add an entry to tests/opinfo.py for: {missing}"


def test_harness_has_error_samples_for_which_torch_raises():
    # an "error:" sample that PyTorch accepts would test nothing
    for info in OPS:
        for s in info.samples:
            if s.desc.startswith("error:"):
                args = [_to_torch(a, False) for a in s.args]
                _, exc = _call(info.torch_fn, args, s.kwargs)
                assert exc is not None, f"{info.name}[{s.desc}]: PyTorch accepts this 'error' sample"
