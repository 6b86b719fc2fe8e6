"""max_pool2d, avg_pool2d and the global pools (the SE squeeze).

Oracles: PyTorch (float32 forward and gradient), the numerical gradient
(float64 gradcheck), the plain-loop references, and closed forms.
"""

import warnings

import numpy as np
import pytest
from helpers import assert_matches_torch, gradcheck_inputs, random_inputs, torch_or_skip

import minise as ms
import minise.functional as F
from minise.functional import reference

# (x shape, kernel_size, stride, padding): the reshape fast path (kernel == stride), overlapping
# windows, padding, non-square kernels/strides, odd sizes where the last rows fall outside
# every window, batch 1 to 3.
POOL_CONFIGS = [
    ((2, 3, 8, 6), 2, None, 0),            # fast path: windows tile the image
    ((1, 2, 7, 9), 3, 2, 1),               # overlapping, padded, odd sizes
    ((3, 2, 6, 5), (2, 3), (1, 2), (1, 1)),
    ((2, 1, 5, 7), 3, 1, 0),               # stride 1: every pixel in many windows
    ((2, 2, 7, 7), 2, None, 0),            # kernel == stride but 7 % 2 != 0: the window path
]
IDS = [f"x{c[0]}-k{c[1]}-s{c[2]}-p{c[3]}".replace(" ", "") for c in POOL_CONFIGS]
POOLS = {
    "max": (F.max_pool2d, "max_pool2d", reference.max_pool2d_reference, reference.max_pool2d_reference_backward),
    "avg": (F.avg_pool2d, "avg_pool2d", reference.avg_pool2d_reference, reference.avg_pool2d_reference_backward),
}


@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("x_shape, kernel, stride, padding", POOL_CONFIGS, ids=IDS)
def test_pool_matches_torch_forward_and_gradient(device, kind, x_shape, kernel, stride, padding):
    torch = torch_or_skip()
    fn, torch_name, _, _ = POOLS[kind]
    torch_fn = getattr(torch.nn.functional, torch_name)
    assert_matches_torch(lambda x: fn(x, kernel, stride, padding),
                         lambda x: torch_fn(x, kernel, stride, padding),
                         [x_shape], device=device)


@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("x_shape, kernel, stride, padding", POOL_CONFIGS, ids=IDS)
def test_pool_passes_float64_gradcheck(device, kind, x_shape, kernel, stride, padding):
    fn = POOLS[kind][0]
    assert ms.gradcheck(lambda x: fn(x, kernel, stride, padding), gradcheck_inputs([x_shape], device=device))


@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("x_shape, kernel, stride, padding", POOL_CONFIGS, ids=IDS)
def test_pool_agrees_with_the_plain_loop_reference(device, kind, x_shape, kernel, stride, padding):
    fn, _, ref_forward, ref_backward = POOLS[kind]
    x = random_inputs([x_shape], dtype=np.float64)[0]
    y_ref = ref_forward(x, kernel, stride, padding)
    gy = np.random.default_rng(1).standard_normal(y_ref.shape)
    xt = ms.tensor(x, requires_grad=True, device=device)
    y = fn(xt, kernel, stride, padding)
    y.backward(ms.tensor(gy, device=device))
    np.testing.assert_allclose(y.numpy(), y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(xt.grad.numpy(), ref_backward(x, gy, kernel, stride, padding), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, kernel, stride, padding", POOL_CONFIGS, ids=IDS)
def test_max_pool2d_sends_each_tied_window_gradient_to_one_element_like_torch(device, x_shape, kernel, stride,
                                                                               padding):
    # Values from {0, 1, 2}: most windows hold several equal maxima.
    x = np.random.default_rng(5).integers(0, 3, size=x_shape).astype(np.float32)
    assert_matches_torch(lambda t: F.max_pool2d(t, kernel, stride, padding),
                         lambda t: torch_or_skip().nn.functional.max_pool2d(t, kernel, stride, padding),
                         inputs=[x], device=device)


def test_max_pool2d_routes_a_tie_to_the_first_maximum_in_row_major_order(device):
    x = ms.tensor(np.ones((1, 1, 2, 2), dtype=np.float32), requires_grad=True, device=device)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[1, 0], [0, 0]])
    # Overlapping windows with one shared maximum: that pixel collects every window's gradient.
    x = ms.tensor(np.array([[[[0, 0, 0], [0, 5, 0], [0, 0, 0]]]], dtype=np.float32), requires_grad=True,
                  device=device)
    F.max_pool2d(x, 2, stride=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[0, 0, 0], [0, 4, 0], [0, 0, 0]])


def test_avg_pool2d_counts_the_zero_padding_in_the_divisor(device):
    x = ms.tensor(np.ones((1, 1, 2, 2), dtype=np.float32), device=device)
    y = F.avg_pool2d(x, 3, stride=1, padding=1).numpy()[0, 0]
    np.testing.assert_allclose(y, np.full((2, 2), 4 / 9), rtol=1e-6)


# --- global pools -------------------------------------------------------------------
GLOBAL_SHAPES = [(2, 3, 4, 5), (1, 4, 1, 1), (3, 2, 7, 3)]


@pytest.mark.parametrize("shape", GLOBAL_SHAPES)
def test_global_avg_pool2d_matches_torch_mean_over_the_image(device, shape):
    assert_matches_torch(F.global_avg_pool2d, lambda x: x.mean(dim=(2, 3)), [shape], device=device)


@pytest.mark.parametrize("shape", GLOBAL_SHAPES)
def test_global_max_pool2d_matches_torch_max_over_the_image(device, shape):
    assert_matches_torch(F.global_max_pool2d, lambda x: x.flatten(2).max(dim=2).values, [shape], device=device)


@pytest.mark.parametrize("fn", [F.global_avg_pool2d, F.global_max_pool2d], ids=["avg", "max"])
@pytest.mark.parametrize("shape", GLOBAL_SHAPES)
def test_global_pools_pass_float64_gradcheck(device, fn, shape):
    assert ms.gradcheck(fn, gradcheck_inputs([shape], device=device))


def test_global_avg_pool2d_gives_each_pixel_one_hw_th_of_its_channel_gradient(device):
    x = ms.tensor(np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5), requires_grad=True, device=device)
    z = F.global_avg_pool2d(x)
    gz = np.arange(6, dtype=np.float64).reshape(2, 3)
    z.backward(ms.tensor(gz, device=device))
    np.testing.assert_allclose(z.numpy(), np.arange(120.0).reshape(2, 3, 20).mean(-1))
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(gz[:, :, None, None] / 20, (2, 3, 4, 5)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "channel-major", "sliced"])
def test_global_avg_pool2d_averages_every_layout_to_within_rounding_and_keeps_nan_inf_and_empty(dtype, layout):
    # The CPU path is one einsum (docs/benchmarks.md#squeeze); x.mean in float64 is the oracle.
    rng = np.random.default_rng(7)
    a = (rng.standard_normal((5, 8, 32, 32)) + 3).astype(dtype)
    x = {"C": a, "channel-major": a.transpose(1, 0, 2, 3).copy().transpose(1, 0, 2, 3),
         "sliced": a[:, ::2, 1:, ::3]}[layout]
    z = F.global_avg_pool2d(ms.tensor(x)).numpy()
    assert z.dtype == dtype and z.shape == x.shape[:2]
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(z, x.astype(np.float64).mean(axis=(2, 3)), rtol=rtol)
    x = x.copy()
    x[0, 0, 0, 0], x[1, 1, 1, 1], x[2, 2, 2, 2] = np.nan, np.inf, -np.inf
    x[3, 3, 3, 3], x[3, 3, 3, 4] = np.inf, -np.inf
    z = F.global_avg_pool2d(ms.tensor(x)).numpy()
    assert np.isnan(z[0, 0]) and z[1, 1] == np.inf and z[2, 2] == -np.inf and np.isnan(z[3, 3])
    others = np.ones(z.shape, bool)
    others[range(4), range(4)] = False
    assert np.isfinite(z[others]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # PyTorch: NaN, a mean of nothing, and no warning
        t = ms.tensor(np.zeros((2, 3, 0, 4), dtype), requires_grad=True)
        empty = F.global_avg_pool2d(t)
        empty.backward(ms.tensor(np.ones((2, 3), dtype)))
    assert empty.shape == (2, 3) and empty.dtype == dtype and np.isnan(empty.numpy()).all()
    assert t.grad.shape == (2, 3, 0, 4)


@pytest.mark.parametrize("side", [32, 33, 56, 224])
def test_global_avg_pool2d_of_large_images_stays_within_a_few_float32_ulps(side):
    # einsum's running sum drifts with the pixel count (17 ulps at 224x224): above 32x32, x.mean's pairwise sums.
    x = np.maximum(np.random.default_rng(8).standard_normal((2, 8, side, side)), 0).astype(np.float32)
    z = F.global_avg_pool2d(ms.tensor(x)).numpy()
    exact = x.astype(np.float64).mean(axis=(2, 3))
    ulps = np.abs(z - exact) / np.spacing(exact.astype(np.float32))
    assert ulps.max() <= 4, ulps.max()


def test_global_max_pool2d_sends_a_tie_to_the_first_pixel(device):
    x = ms.tensor(np.array([[[[1, 3], [3, 0]]]], dtype=np.float32), requires_grad=True, device=device)
    F.global_max_pool2d(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[0, 1], [0, 0]])


# --- bad input ----------------------------------------------------------------------
_X = ms.tensor(np.zeros((1, 1, 4, 4), dtype=np.float32))
BAD_POOL = [
    ("wrong ndim", lambda: F.max_pool2d(ms.tensor(np.zeros((4, 4))), 2),
     r"max_pool2d: expected a 4-D input \(N, C, H, W\), got shape \(4, 4\)"),
    ("zero stride", lambda: F.avg_pool2d(_X, 2, stride=0), r"avg_pool2d: stride must be positive, got stride=\(0, 0\)"),
    ("negative padding", lambda: F.max_pool2d(_X, 3, padding=-1),
     r"max_pool2d: padding must be non-negative, got padding=\(-1, -1\)"),
    ("padding more than half the kernel", lambda: F.avg_pool2d(_X, 2, padding=2),
     r"avg_pool2d: padding \(2, 2\) is more than half of kernel_size \(2, 2\); expected padding <= kernel_size // 2"),
    ("kernel larger than padded input", lambda: F.max_pool2d(_X, 7, padding=1),
     r"max_pool2d: kernel size \(7, 7\) is larger than the padded input \(6, 6\) \(input \(1, 1, 4, 4\)"),
    ("zero kernel", lambda: F.max_pool2d(_X, 0), r"max_pool2d: kernel_size must be positive, got kernel_size=\(0, 0\)"),
    ("global pool on 3-D input", lambda: F.global_avg_pool2d(ms.tensor(np.zeros((2, 3, 4)))),
     r"global_avg_pool2d: expected a 4-D input \(N, C, H, W\), got shape \(2, 3, 4\)"),
]


@pytest.mark.parametrize("call, message", [c[1:] for c in BAD_POOL], ids=[c[0] for c in BAD_POOL])
def test_pools_reject_bad_input_with_a_message_naming_op_shapes_and_expectation(call, message):
    with pytest.raises(ValueError, match=message):
        call()
