"""linear: float64 gradcheck and PyTorch parity (input, weight and bias gradients) on
several shapes, and its bad-input messages.

dropout: oracles are closed forms: the kept fraction and the mean (statistically,
with a fixed seed), the gradient mask / (1 - p), identity when p == 0 or in eval,
reproducibility under ms.manual_seed.
"""

import numpy as np
import pytest
from helpers import assert_matches_torch, gradcheck_inputs

import minise as ms
import minise.functional as F


def _tf():
    import torch.nn.functional as tf

    return tf


# (name, shapes of x, weight[, bias])
LINEAR_CASES = [
    ("2d_with_bias", [(3, 4), (5, 4), (5,)]),
    ("2d_without_bias", [(3, 4), (5, 4)]),
    ("batch_of_one", [(1, 7), (2, 7), (2,)]),
    ("3d_input", [(2, 3, 4), (6, 4), (6,)]),
    ("4d_input_without_bias", [(2, 1, 3, 5), (3, 5)]),
    ("1d_input", [(4,), (3, 4), (3,)]),
]


@pytest.mark.parametrize("name,shapes", LINEAR_CASES, ids=[c[0] for c in LINEAR_CASES])
def test_linear_passes_float64_gradcheck(name, shapes, device):
    assert ms.gradcheck(F.linear, gradcheck_inputs(shapes, device=device))


@pytest.mark.parametrize("name,shapes", LINEAR_CASES, ids=[c[0] for c in LINEAR_CASES])
def test_linear_matches_torch_forward_and_every_gradient(name, shapes, device):
    assert_matches_torch(F.linear, lambda *a: _tf().linear(*a), shapes, device=device)


def test_linear_is_one_fused_op_in_the_graph():
    x, w, b = gradcheck_inputs([(2, 3), (4, 3), (4,)])
    y = F.linear(x, w, b)
    assert type(y.creator).__name__ == "Linear"
    assert y.creator.inputs == [x, w, b]


def test_linear_skips_gradients_nobody_asked_for():
    x = ms.tensor(np.ones((2, 3)))
    w = ms.tensor(np.ones((4, 3)), requires_grad=True)
    F.linear(x, w).sum().backward()
    assert x.grad is None
    np.testing.assert_array_equal(w.grad.numpy(), np.full((4, 3), 2.0))  # dW = gy^T x: column sums of x


LINEAR_BAD = [
    ("feature_mismatch", [(3, 5), (4, 6)],
     r"linear: input of shape \(3, 5\) has 5 features in its last dimension, but weight of shape \(4, 6\) "
     r"expects 6 \(input \(\.\.\., in\), weight \(out, in\)\)"),
    ("weight_1d", [(3, 5), (5,)],
     r"linear: weight must be 2-D \(out_features, in_features\), got shape \(5,\)"),
    ("bias_wrong_size", [(3, 5), (4, 5), (5,)],
     r"linear: bias has shape \(5,\), expected \(4,\) = \(out_features,\) for weight of shape \(4, 5\)"),
    ("scalar_input", [(), (4, 5)],
     r"linear: input of shape \(\) has 0 features"),
]


@pytest.mark.parametrize("name,shapes,message", LINEAR_BAD, ids=[c[0] for c in LINEAR_BAD])
def test_linear_bad_shapes_name_the_op_and_both_shapes(name, shapes, message):
    with pytest.raises(ValueError, match=message):
        F.linear(*[ms.tensor(np.zeros(s)) for s in shapes])


# --- dropout ----------------------------------------------------------------
def test_dropout_keeps_the_mean_and_drops_a_fraction_p(device):
    ms.manual_seed(0)
    x = ms.tensor(np.ones(200_000, dtype=np.float32), device=device)
    y = F.dropout(x, p=0.3).numpy()
    # every element is 0 or 1 / (1 - p); the dropped fraction ~ p, the mean ~ 1
    # (standard error of the mean: sqrt(p / (1 - p) / n) = 0.0015; we allow 5 of them)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert abs((~kept).mean() - 0.3) < 0.005
    assert abs(y.mean() - 1.0) < 0.0075
    assert y.dtype == np.float32


def test_dropout_gradient_is_the_mask_over_one_minus_p(device):
    ms.manual_seed(1)
    values = np.random.default_rng(0).uniform(0.5, 2.0, size=(4, 5, 6))
    x = ms.tensor(values, requires_grad=True, device=device)
    y = F.dropout(x, p=0.4)
    gy = np.random.default_rng(1).normal(size=y.shape)
    y.backward(ms.tensor(gy, device=device))
    mask = y.numpy() != 0                       # x is never 0, so y == 0 exactly where dropped
    assert 0 < mask.sum() < mask.size
    np.testing.assert_allclose(y.numpy(), values * mask / 0.6, rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), gy * mask / 0.6, rtol=1e-12)


def test_dropout_passes_float64_gradcheck_with_a_fixed_mask(device):
    def fn(x):
        ms.manual_seed(7)   # the same mask on every call of the numerical gradient
        return F.dropout(x, p=0.5)

    assert ms.gradcheck(fn, gradcheck_inputs([(3, 4)], device=device))


@pytest.mark.parametrize("p,training", [(0.0, True), (0.5, False), (0.9, False)])
def test_dropout_is_the_identity_when_p_is_zero_or_not_training(p, training, device):
    x = ms.tensor(np.random.default_rng(2).normal(size=(3, 4)), requires_grad=True, device=device)
    y = F.dropout(x, p=p, training=training)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    (y * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 3.0))


def test_dropout_with_p_one_zeroes_everything_like_torch(device):
    x = ms.tensor(np.ones((2, 3)), requires_grad=True, device=device)
    y = F.dropout(x, p=1.0)
    y.sum().backward()
    np.testing.assert_array_equal(y.numpy(), np.zeros((2, 3)))
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 3)))
    assert_matches_torch(lambda a: F.dropout(a, p=1.0), lambda a: _tf().dropout(a, p=1.0), [(2, 3)])


def test_dropout_is_reproducible_under_manual_seed_and_differs_across_seeds(device):
    x = ms.tensor(np.ones((50, 40), dtype=np.float32), device=device)
    ms.manual_seed(123)
    first = F.dropout(x, 0.5).numpy()
    second_draw = F.dropout(x, 0.5).numpy()
    ms.manual_seed(123)
    again = F.dropout(x, 0.5).numpy()
    ms.manual_seed(124)
    other_seed = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(first, again)
    assert (first != second_draw).any()
    assert (first != other_seed).any()


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_probability_outside_zero_one_says_so(p):
    with pytest.raises(ValueError, match=rf"dropout: p is the probability of zeroing an element and must be "
                                         rf"in \[0, 1\], got {p}"):
        F.dropout(ms.tensor(np.ones(3)), p=p)
