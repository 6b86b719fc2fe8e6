"""batch_norm: PyTorch parity for the output, every gradient (x, weight, bias) and the
running statistics after one and several calls, in training and eval mode, for
(N, C) and (N, C, H, W) inputs; float64 gradcheck; every bad-input message.
"""

import numpy as np
import pytest
from helpers import assert_matches_torch, gradcheck_inputs, torch_or_skip

import minise as ms
import minise.functional as F

SHAPES = [(4, 3), (7, 5), (2, 3, 4, 5), (3, 4, 5, 3), (1, 2, 3, 3)]


def _stats(c, seed=0):
    """Running statistics that are not the defaults, so their use is visible."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=c).astype(np.float32), rng.uniform(0.5, 2.0, size=c).astype(np.float32)


def _pair(c, device, seed=0):
    """The same running statistics for minise (Tensors on device) and torch."""
    torch = torch_or_skip()
    mean, var = _stats(c, seed)
    ours = (ms.tensor(mean, device=device), ms.tensor(var, device=device))
    theirs = (torch.tensor(mean), torch.tensor(var))
    return ours, theirs


def _assert_same_stats(ours, theirs, rtol=1e-6, atol=1e-7):
    for a, b, name in zip(ours, theirs, ("running_mean", "running_var")):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=rtol, atol=atol, err_msg=f"{name} differs from torch")


@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
@pytest.mark.parametrize("shape", SHAPES, ids=[str(s) for s in SHAPES])
def test_batch_norm_matches_torch_output_gradients_and_running_stats(shape, training, device):
    torch = torch_or_skip()
    c = shape[1]
    (rm, rv), (trm, trv) = _pair(c, device)
    assert_matches_torch(
        lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training, momentum=0.1, eps=1e-5),
        lambda x, w, b: torch.nn.functional.batch_norm(x, trm, trv, w, b, training, 0.1, 1e-5),
        [shape, (c,), (c,)], device=device, atol=2e-5, rtol=1e-4,
    )
    _assert_same_stats((rm, rv), (trm, trv))
    if not training:
        np.testing.assert_array_equal(rm.numpy(), _stats(c)[0])   # eval never touches them


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 5, 4)], ids=["2d", "4d"])
def test_batch_norm_running_stats_track_torch_over_several_steps(shape, device):
    torch = torch_or_skip()
    c = shape[1]
    (rm, rv), (trm, trv) = _pair(c, device, seed=1)
    rng = np.random.default_rng(5)
    for step in range(4):
        batch = (rng.normal(size=shape) * (step + 1) + step).astype(np.float32)
        ours = F.batch_norm(ms.tensor(batch, device=device), rm, rv, None, None, True, momentum=0.3)
        theirs = torch.nn.functional.batch_norm(torch.tensor(batch), trm, trv, None, None, True, momentum=0.3)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=2e-5)
        _assert_same_stats((rm, rv), (trm, trv), rtol=2e-6, atol=1e-6)
    # and eval mode then normalises with exactly those statistics
    batch = rng.normal(size=shape).astype(np.float32)
    ours = F.batch_norm(ms.tensor(batch, device=device), rm, rv, None, None, False)
    theirs = torch.nn.functional.batch_norm(torch.tensor(batch), trm, trv, None, None, False)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=2e-5)


def test_batch_norm_running_var_uses_the_unbiased_batch_variance(device):
    x = np.array([[1.0], [2.0], [4.0]], dtype=np.float32)          # (N, C) = (3, 1)
    rm, rv = ms.tensor(np.zeros(1, np.float32), device=device), ms.tensor(np.ones(1, np.float32), device=device)
    y = F.batch_norm(ms.tensor(x, device=device), rm, rv, None, None, True, momentum=0.5)
    mean, biased, unbiased = 7 / 3, np.var([1, 2, 4]), np.var([1, 2, 4], ddof=1)
    np.testing.assert_allclose(rm.numpy(), [0.5 * mean], rtol=1e-6)
    np.testing.assert_allclose(rv.numpy(), [0.5 + 0.5 * unbiased], rtol=1e-6)
    np.testing.assert_allclose(y.numpy()[:, 0], (x[:, 0] - mean) / np.sqrt(biased + 1e-5), rtol=1e-5)


def test_batch_norm_without_weight_bias_or_running_stats_matches_torch(device):
    torch = torch_or_skip()
    assert_matches_torch(
        lambda x: F.batch_norm(x, None, None, None, None, True),
        lambda x: torch.nn.functional.batch_norm(x, None, None, None, None, True),
        [(3, 4, 3, 2)], device=device, atol=2e-5,
    )


@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
def test_batch_norm_input_gradient_alone_matches_torch(training, device):
    torch = torch_or_skip()
    (rm, rv), (trm, trv) = _pair(4, device, seed=2)
    weight = np.random.default_rng(3).normal(size=4).astype(np.float32)    # a constant: no gradient
    assert_matches_torch(
        lambda x: F.batch_norm(x, rm, rv, ms.tensor(weight, device=device), None, training),
        lambda x: torch.nn.functional.batch_norm(x, trm, trv, torch.tensor(weight), None, training),
        [(5, 4, 2, 3)], device=device, atol=2e-5,
    )


def test_batch_norm_updates_running_stats_in_no_grad_like_torch(device):
    rm, rv = ms.tensor(np.zeros(2, np.float32), device=device), ms.tensor(np.ones(2, np.float32), device=device)
    before = rm.data
    x = np.random.default_rng(0).normal(loc=3.0, size=(8, 2)).astype(np.float32)
    with ms.no_grad():
        F.batch_norm(ms.tensor(x, device=device), rm, rv, None, None, True)
    assert rm.data is before                                     # updated in place, not replaced
    np.testing.assert_allclose(rm.numpy(), 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(rv.numpy(), 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-5)


def test_batch_norm_is_accurate_for_inputs_far_from_zero_mean(device):
    torch = torch_or_skip()
    x = (np.random.default_rng(1).normal(size=(16, 3, 4, 4)) + 300.0).astype(np.float32)
    assert_matches_torch(
        lambda a: F.batch_norm(a, None, None, None, None, True),
        lambda a: torch.nn.functional.batch_norm(a, None, None, None, None, True),
        inputs=[x], device=device, atol=1e-3, rtol=1e-3,
    )


@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 3, 2)], ids=["2d", "4d"])
def test_batch_norm_passes_float64_gradcheck(shape, training, device):
    c = shape[1]
    mean, var = _stats(c)
    rm, rv = ms.tensor(mean.astype(np.float64), device=device), ms.tensor(var.astype(np.float64), device=device)
    inputs = gradcheck_inputs([shape, (c,), (c,)], device=device)
    assert ms.gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training, eps=1e-3), inputs)


def test_batch_norm_is_one_fused_op_in_the_graph():
    x, w, b = gradcheck_inputs([(2, 3, 2, 2), (3,), (3,)])
    y = F.batch_norm(x, None, None, w, b, True)
    assert type(y.creator).__name__ == "BatchNorm"
    assert y.creator.inputs == [x, w, b]


def _zeros(*shape):
    return ms.tensor(np.zeros(shape, dtype=np.float32))


BAD = [
    ("input_1d", dict(x=(4,)),
     r"batch_norm: input must be \(N, C\) or \(N, C, H, W\), got shape \(4,\) \(1-D\)"),
    ("running_mean_wrong_size", dict(running_mean=(4,)),
     r"batch_norm: running_mean has shape \(4,\), expected \(3,\): one value per channel of input of shape "
     r"\(2, 3, 4, 4\)"),
    ("running_var_wrong_size", dict(running_var=(3, 1)),
     r"batch_norm: running_var has shape \(3, 1\), expected \(3,\)"),
    ("weight_wrong_size", dict(weight=(2,)),
     r"batch_norm: weight has shape \(2,\), expected \(3,\)"),
    ("bias_wrong_size", dict(bias=(5,)),
     r"batch_norm: bias has shape \(5,\), expected \(3,\)"),
    ("one_value_per_channel", dict(x=(1, 3)),
     r"batch_norm: expected more than 1 value per channel when training, got input of shape \(1, 3\)"),
]


@pytest.mark.parametrize("name,override,message", BAD, ids=[b[0] for b in BAD])
def test_batch_norm_bad_input_names_the_op_what_it_got_and_what_it_expected(name, override, message):
    shapes = dict(x=(2, 3, 4, 4), running_mean=(3,), running_var=(3,), weight=(3,), bias=(3,))
    shapes.update(override)
    args = {k: _zeros(*s) for k, s in shapes.items()}
    with pytest.raises(ValueError, match=message):
        F.batch_norm(args["x"], args["running_mean"], args["running_var"], args["weight"], args["bias"], True)


def test_batch_norm_eval_without_running_stats_says_it_needs_them():
    with pytest.raises(ValueError, match=r"batch_norm: eval mode \(training=False\) normalises with "
                                         r"running_mean and running_var, got None"):
        F.batch_norm(_zeros(2, 3), None, None, None, None, False)
    with pytest.raises(ValueError, match=r"batch_norm: give both running_mean and running_var, or neither"):
        F.batch_norm(_zeros(2, 3), _zeros(3), None, None, None, True)
