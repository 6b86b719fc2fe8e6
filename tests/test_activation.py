"""Activations: float64 gradcheck and PyTorch parity on several shapes and axes,
plus the numerical-stability promises (sigmoid at |x| = 1e4, softmax at logits of 1000).

Oracles: the numerical gradient and PyTorch.
"""

import warnings

import numpy as np
import pytest
from helpers import assert_matches_torch, gradcheck_inputs, torch_or_skip

import minise as ms
import minise.functional as F


def _tf():
    import torch.nn.functional as tf

    return tf


CASES = [
    ("relu", F.relu, lambda a: _tf().relu(a), [(3, 5)]),
    ("relu_4d", F.relu, lambda a: _tf().relu(a), [(2, 3, 4, 5)]),
    ("sigmoid", F.sigmoid, lambda a: a.sigmoid(), [(4, 7)]),
    ("sigmoid_1d", F.sigmoid, lambda a: a.sigmoid(), [(9,)]),
    ("tanh", F.tanh, lambda a: a.tanh(), [(3, 2, 5)]),
    ("softmax_last_axis", F.softmax, lambda a: _tf().softmax(a, dim=-1), [(4, 7)]),
    ("softmax_axis0", lambda a: F.softmax(a, axis=0), lambda a: _tf().softmax(a, dim=0), [(5, 3)]),
    ("softmax_channels_of_4d", lambda a: F.softmax(a, dim=1), lambda a: _tf().softmax(a, dim=1), [(2, 3, 4, 5)]),
    ("softmax_1d", F.softmax, lambda a: _tf().softmax(a, dim=0), [(6,)]),
    ("log_softmax_last_axis", F.log_softmax, lambda a: _tf().log_softmax(a, dim=-1), [(4, 7)]),
    ("log_softmax_axis0", lambda a: F.log_softmax(a, 0), lambda a: _tf().log_softmax(a, dim=0), [(5, 3)]),
    ("log_softmax_middle_axis", lambda a: F.log_softmax(a, dim=1), lambda a: _tf().log_softmax(a, dim=1),
     [(2, 3, 4)]),
]


@pytest.mark.parametrize("name,fn,fn_torch,shapes", CASES, ids=[c[0] for c in CASES])
def test_activation_passes_float64_gradcheck(name, fn, fn_torch, shapes, device):
    inputs = gradcheck_inputs(shapes, low=-3.0, high=3.0, device=device)
    if name.startswith("relu"):  # keep away from the kink at 0, where the derivative jumps
        for t in inputs:
            t.data[abs(t.data) < 0.01] = 0.5
    assert ms.gradcheck(fn, inputs)


@pytest.mark.parametrize("name,fn,fn_torch,shapes", CASES, ids=[c[0] for c in CASES])
def test_activation_matches_torch_forward_and_backward(name, fn, fn_torch, shapes, device):
    assert_matches_torch(fn, fn_torch, shapes, device=device, low=-4.0, high=4.0)


def test_relu_gradient_at_zero_is_zero_like_torch(device):
    x = np.array([-1.0, 0.0, 0.0, 2.0], dtype=np.float32)
    assert_matches_torch(F.relu, lambda a: _tf().relu(a), inputs=[x], device=device)
    t = ms.tensor(x, requires_grad=True, device=device)
    F.relu(t).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [0.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_relu_backward_gives_exactly_zero_at_a_cut_off_unit_even_for_an_inf_or_nan_gradient(dtype, device):
    # PyTorch's threshold_backward: where(y <= 0, 0, gy). gy * (y != 0) gave NaN there (inf * 0).
    x = np.array([-1.0, 0.0, -3.0, 2.0, np.nan, 3.0, -0.5], dtype=dtype)
    gy = np.array([np.inf, np.nan, -np.inf, 1.5, 5.0, -0.0, np.nan], dtype=dtype)
    t = ms.tensor(x, requires_grad=True, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # no "invalid value" RuntimeWarning either
        F.relu(t).backward(ms.tensor(gy, device=device))
    got = t.grad.numpy()
    np.testing.assert_array_equal(got, np.array([0, 0, 0, 1.5, 5.0, 0.0, 0], dtype=dtype))
    assert got.dtype == dtype and list(np.signbit(got)) == [False] * 5 + [True, False]   # -0.0 passes as is
    torch = torch_or_skip()
    xt = torch.tensor(x.astype(np.float32), requires_grad=True)
    torch.relu(xt).backward(torch.tensor(gy.astype(np.float32)))
    np.testing.assert_array_equal(got.astype(np.float32), xt.grad.numpy())


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_relu_backward_in_place_into_the_incoming_gradient_keeps_its_values(threads, monkeypatch):
    # The bit mask must not overwrite gy before gy is read when out is gy (parallel.elementwise allows it).
    from minise import parallel
    from minise.functional import activation

    monkeypatch.setattr(parallel, "MIN_CHUNK", 256)
    saved = parallel.get_num_threads()
    parallel.set_num_threads(threads)
    try:
        rng = np.random.default_rng(5)
        y = np.maximum(rng.standard_normal((4, 6, 8, 8)), 0).astype(np.float32)
        gy = rng.standard_normal(y.shape).astype(np.float32)
        gy.flat[::7] = np.inf
        expected = np.where(y != 0, gy, np.float32(0))
        for call in (lambda g: activation._pass_where_not_zero(g, y, out=g),
                     lambda g: parallel.elementwise(activation._pass_where_not_zero, g, y, out=g)):
            g = gy.copy()
            call(g)
            np.testing.assert_array_equal(g, expected)
        wide = activation._pass_where_not_zero(gy.astype(np.longdouble), y)   # no int as wide: NumPy's where
        np.testing.assert_array_equal(wide, expected.astype(np.longdouble))
    finally:
        parallel.set_num_threads(saved)


def test_relu_of_a_broadcast_input_is_laid_out_as_numpys_maximum():
    x = np.broadcast_to(np.arange(-3.0, 3.0).reshape(6, 1, 1, 1), (6, 5, 7, 9))
    y = F.relu(ms.tensor(x)).numpy()
    expected = np.maximum(x, 0)
    np.testing.assert_array_equal(y, expected)
    assert y.strides == expected.strides


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("layout", ["C", "channel-major", "sliced"])
def test_relu_forward_is_numpys_maximum_with_zero_bit_for_bit_on_every_layout(dtype, layout):
    # relu compares x with a block of zeros, not the number 0 (NumPy's SIMD loop): the same bits.
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((6, 5, 7, 9)) * 4).astype(dtype)
    if np.dtype(dtype).kind == "f":
        a.flat[::5], a.flat[1::7], a.flat[2::11], a.flat[3::13] = np.nan, -0.0, np.inf, -np.inf
    x = {"C": a, "channel-major": a.transpose(1, 0, 2, 3).copy().transpose(1, 0, 2, 3),
         "sliced": a[:, ::2, 1:, ::3]}[layout]
    y = F.relu(ms.tensor(x)).numpy()
    expected = np.maximum(x, 0)
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y.view(f"u{y.itemsize}"), expected.view(f"u{y.itemsize}"))


def test_relus_block_of_zeros_covers_the_innermost_axes_in_memory_within_its_limit(monkeypatch):
    from minise.functional import activation

    channel_major = np.zeros((16, 128, 32, 32), np.float32).transpose(1, 0, 2, 3)
    zeros = activation._zeros_for(channel_major)
    assert zeros.shape == (128, 1, 32, 32) and not zeros.any()        # (N, H, W): 2**17 elements
    assert [zeros.strides[i] for i in (0, 2, 3)] == [32 * 32 * 4, 32 * 4, 4]   # laid out as x's (N, H, W)
    assert activation._zeros_for(np.zeros((128, 64, 8, 8), np.float32)).shape == (1, 64, 8, 8)
    assert activation._zeros_for(np.zeros((4, 5))).shape == (1, 5)     # never all of x
    assert activation._zeros_for(np.zeros((1, 64, 8, 8))).shape == (1, 1, 8, 8)   # batch 1: not all of x either
    assert activation._zeros_for(np.broadcast_to(np.ones((6, 1, 7, 9)), (6, 5, 7, 9))) == 0   # stride 0: the number
    assert activation._zeros_for(np.zeros(7)) == 0                      # 1-D: the number
    monkeypatch.setattr(activation, "ZERO_BLOCK", 1024)
    assert activation._zeros_for(channel_major).shape == (1, 1, 32, 32)


EXTREMES = [-1e4, -1000.0, -100.0, -40.0, -20.0, -1.0, 0.0, 1.0, 20.0, 40.0, 100.0, 1000.0, 1e4]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_and_exact_up_to_1e4_without_warnings(dtype, device):
    torch = torch_or_skip()
    values = np.array(EXTREMES, dtype=dtype)
    x = ms.tensor(values, requires_grad=True, device=device)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        y = F.sigmoid(x)
        y.sum().backward()
    tx = torch.tensor(values, requires_grad=True)
    ty = tx.sigmoid()
    ty.sum().backward()
    assert np.isfinite(y.numpy()).all() and np.isfinite(x.grad.numpy()).all()
    # relative precision even in the far tail: sigmoid(-40) = 4.2e-18, not 0
    # (atol = the smallest normal number: torch flushes sigmoid(-100) = 3.7e-44 to 0 in float32)
    tiny = np.finfo(dtype).tiny
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-6, atol=tiny)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=tiny)
    assert y.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_saturates_without_warnings_at_1e4(dtype, device):
    x = ms.tensor(np.array(EXTREMES, dtype=dtype), requires_grad=True, device=device)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        y = F.tanh(x)
        y.sum().backward()
    np.testing.assert_allclose(y.numpy(), np.tanh(np.array(EXTREMES)), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), 1 - np.tanh(np.array(EXTREMES)) ** 2, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_family_is_finite_and_exact_for_logits_of_magnitude_1000(op, device):
    rng = np.random.default_rng(3)
    logits = (rng.choice([-1.0, 1.0], size=(4, 6)) * rng.uniform(900, 1000, size=(4, 6))).astype(np.float32)
    logits[0] = 1000.0   # ties at the maximum
    logits[1, :3] = -1000.0
    fn = getattr(F, op)
    x = ms.tensor(logits, requires_grad=True, device=device)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        out = fn(x)
        out.backward(ms.tensor(np.ones(out.shape, dtype=np.float32), device=device))
    assert np.isfinite(out.numpy()).all() and np.isfinite(x.grad.numpy()).all()
    assert_matches_torch(fn, lambda a: getattr(_tf(), op)(a, dim=-1), inputs=[logits],
                         device=device, atol=1e-5, rtol=1e-6)


def test_softmax_rows_sum_to_one_and_log_softmax_is_its_log(device):
    x = ms.tensor(np.random.default_rng(0).normal(size=(3, 8)), device=device)
    np.testing.assert_allclose(F.softmax(x).numpy().sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(x).numpy(), np.log(F.softmax(x).numpy()), rtol=1e-12)


def test_tensor_methods_relu_sigmoid_tanh_are_the_functional_ops():
    x = ms.tensor(np.linspace(-3, 3, 7))
    np.testing.assert_array_equal(x.relu().numpy(), F.relu(x).numpy())
    np.testing.assert_array_equal(x.sigmoid().numpy(), F.sigmoid(x).numpy())
    np.testing.assert_array_equal(x.tanh().numpy(), F.tanh(x).numpy())
    np.testing.assert_allclose(x.sigmoid().numpy(), 1 / (1 + np.exp(-np.linspace(-3, 3, 7))), rtol=1e-12)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_axis_out_of_range_names_the_op_and_the_valid_range(op):
    x = ms.tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError, match=rf"{op}: Dimension out of range \(expected to be in range of "
                                         r"\[-2, 1\], but got 2\)"):
        getattr(F, op)(x, axis=2)
