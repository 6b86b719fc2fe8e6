"""cross_entropy: PyTorch parity (loss and logits gradient), float64 gradcheck, the
closed-form "softmax - onehot" backward, stability at logits of 1000, and every
bad-input message.
"""

import warnings

import numpy as np
import pytest
from helpers import assert_matches_torch, torch_or_skip

import minise as ms
import minise.functional as F


def _logits_and_labels(n, k, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=scale, size=(n, k)).astype(np.float32)
    labels = rng.integers(0, k, size=n).astype(np.int64)
    return logits, labels


def _torch_ce(**kwargs):
    def fn(logits, labels):
        import torch

        return torch.nn.functional.cross_entropy(logits, labels.long(), **kwargs)

    return fn


SHAPES = [(1, 2), (4, 10), (7, 3), (16, 5)]


@pytest.mark.parametrize("n,k", SHAPES)
def test_cross_entropy_matches_torch_loss_and_gradient(n, k, device):
    logits, labels = _logits_and_labels(n, k)
    assert_matches_torch(F.cross_entropy, _torch_ce(), inputs=[logits, labels], device=device)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
def test_cross_entropy_reduction_and_label_smoothing_match_torch(reduction, label_smoothing, device):
    logits, labels = _logits_and_labels(6, 4, seed=1)
    assert_matches_torch(
        lambda x, t: F.cross_entropy(x, t, reduction=reduction, label_smoothing=label_smoothing),
        _torch_ce(reduction=reduction, label_smoothing=label_smoothing),
        inputs=[logits, labels], device=device,
    )


@pytest.mark.parametrize("n,k", [(1, 2), (5, 3), (3, 7)])
def test_cross_entropy_passes_float64_gradcheck(n, k, device):
    logits, labels = _logits_and_labels(n, k, seed=2, scale=1.0)
    x = ms.tensor(logits.astype(np.float64), requires_grad=True, device=device)
    assert ms.gradcheck(lambda z: F.cross_entropy(z, labels), [x])
    assert ms.gradcheck(lambda z: F.cross_entropy(z, labels, reduction="none", label_smoothing=0.2), [x])


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n(device):
    logits, labels = _logits_and_labels(5, 4, seed=4)
    x = ms.tensor(logits.astype(np.float64), requires_grad=True, device=device)
    loss = F.cross_entropy(x, labels)
    loss.backward()
    z = logits.astype(np.float64)
    softmax = np.exp(z - z.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    onehot = np.eye(4)[labels]
    np.testing.assert_allclose(x.grad.numpy(), (softmax - onehot) / 5, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(loss.item(), -np.log(softmax[np.arange(5), labels]).mean(), rtol=1e-12)
    assert loss.shape == ()


def test_cross_entropy_is_finite_and_exact_for_logits_of_magnitude_1000(device):
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0], [1000.0, 1000.0, -1000.0]],
                      dtype=np.float32)
    labels = np.array([1, 2, 0])
    x = ms.tensor(logits, requires_grad=True, device=device)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        loss = F.cross_entropy(x, labels)
        loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(x.grad.numpy()).all()
    # row 0: -log softmax = 2000 exactly; row 1: log(1 + e) - (999 - 1000); row 2: log 2
    expected = (2000.0 + (np.log1p(np.exp(-1.0)) + 1.0) + np.log(2.0)) / 3
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-6)
    assert_matches_torch(F.cross_entropy, _torch_ce(), inputs=[logits, labels], device=device, rtol=1e-6)


@pytest.mark.parametrize("make_labels", [
    lambda a: a,                                   # int64 ndarray
    lambda a: a.astype(np.int32),                  # int32 ndarray
    lambda a: a.astype(np.uint8),                  # unsigned
    lambda a: ms.tensor(a),                        # integer Tensor
    lambda a: a.tolist(),                          # plain list
], ids=["int64", "int32", "uint8", "tensor", "list"])
def test_cross_entropy_accepts_integer_labels_in_every_form(make_labels, device):
    logits, labels = _logits_and_labels(6, 5, seed=5)
    x = ms.tensor(logits, device=device)
    expected = F.cross_entropy(x, labels).item()
    assert F.cross_entropy(x, make_labels(labels)).item() == expected
    torch = torch_or_skip()
    np.testing.assert_allclose(
        expected, torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels)).item(), rtol=1e-6)


def test_cross_entropy_accepts_labels_on_the_logits_device(device):
    logits, labels = _logits_and_labels(4, 3, seed=6)
    on_device = F.cross_entropy(ms.tensor(logits, device=device), ms.tensor(labels, device=device))
    on_cpu = F.cross_entropy(ms.tensor(logits), labels)
    np.testing.assert_allclose(on_device.item(), on_cpu.item(), rtol=1e-6)


BAD = [
    ("label_above_range", (3, 4), [0, 4, 1], "float32",
     r"cross_entropy: labels must be in \[0, 4\) for logits with 4 classes, got values from 0 to 4"),
    ("negative_label", (3, 4), [0, -1, 1], "float32",
     r"cross_entropy: labels must be in \[0, 4\) for logits with 4 classes, got values from -1 to 1"),
    ("too_few_labels", (3, 4), [0, 1], "float32",
     r"cross_entropy: labels have shape \(2,\), expected \(3,\): one class index per row of logits "
     r"of shape \(3, 4\)"),
    ("labels_2d", (2, 4), [[0], [1]], "float32",
     r"cross_entropy: labels have shape \(2, 1\), expected \(2,\)"),
    ("float_labels", (2, 4), np.array([0.0, 1.0]), "float32",
     r"cross_entropy: labels must be integer class indices \(e.g. int64\), got dtype float64"),
    ("bool_labels", (2, 4), np.array([True, False]), "float32",
     r"cross_entropy: labels must be integer class indices \(e.g. int64\), got dtype bool"),
    ("logits_1d", (4,), [1], "float32",
     r"cross_entropy: logits must be 2-D \(N, K\) = \(batch, classes\), got shape \(4,\)"),
    ("logits_4d", (2, 3, 4, 4), [0, 1], "float32",
     r"cross_entropy: logits must be 2-D \(N, K\) = \(batch, classes\), got shape \(2, 3, 4, 4\)"),
    ("integer_logits", (2, 3), [0, 1], "int64",
     r"cross_entropy: logits must be floating point, got dtype int64"),
]


@pytest.mark.parametrize("name,shape,labels,dtype,message", BAD, ids=[b[0] for b in BAD])
def test_cross_entropy_bad_input_names_the_op_what_it_got_and_what_it_expected(name, shape, labels, dtype,
                                                                                message):
    logits = ms.tensor(np.zeros(shape, dtype=dtype))
    expected = NotImplementedError if name == "integer_logits" else ValueError  # as PyTorch's classes
    with pytest.raises(expected, match=message):
        F.cross_entropy(logits, labels)


def test_cross_entropy_bad_reduction_or_label_smoothing_says_what_is_allowed():
    logits, labels = _logits_and_labels(2, 3)
    with pytest.raises(ValueError, match=r"cross_entropy: reduction must be one of \('mean', 'sum', 'none'\), "
                                         r"got 'avg'"):
        F.cross_entropy(ms.tensor(logits), labels, reduction="avg")
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0, 1\], got 1.5"):
        F.cross_entropy(ms.tensor(logits), labels, label_smoothing=1.5)
