"""Layers and nn.init: PyTorch parity (outputs, input and parameter gradients, running
statistics) and initialisation against its closed-form distribution.
"""

import math

import numpy as np
import pytest
from helpers import assert_module_matches_torch, torch_or_skip

import minise as ms
from minise import nn


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _torch_nn():
    return torch_or_skip().nn


# --- parity with PyTorch layers -------------------------------------------------------
LAYER_CASES = [
    ("linear", lambda: nn.Linear(5, 3), lambda t: t.Linear(5, 3), (4, 5)),
    ("linear_no_bias", lambda: nn.Linear(7, 2, bias=False), lambda t: t.Linear(7, 2, bias=False), (3, 7)),
    ("conv_3x3_pad1", lambda: nn.Conv2d(3, 4, 3, padding=1), lambda t: t.Conv2d(3, 4, 3, padding=1), (2, 3, 7, 6)),
    ("conv_stride2_no_bias", lambda: nn.Conv2d(2, 5, 3, stride=2, padding=1, bias=False),
     lambda t: t.Conv2d(2, 5, 3, stride=2, padding=1, bias=False), (3, 2, 9, 8)),
    ("conv_1x1_stride2", lambda: nn.Conv2d(4, 6, 1, stride=2), lambda t: t.Conv2d(4, 6, 1, stride=2), (2, 4, 6, 6)),
    ("batchnorm2d_train", lambda: nn.BatchNorm2d(3), lambda t: t.BatchNorm2d(3), (4, 3, 5, 5)),
    ("batchnorm1d_train", lambda: nn.BatchNorm1d(6), lambda t: t.BatchNorm1d(6), (8, 6)),
    ("relu", nn.ReLU, lambda t: t.ReLU(), (3, 4, 2)),
    ("sigmoid", nn.Sigmoid, lambda t: t.Sigmoid(), (3, 5)),
    ("tanh", nn.Tanh, lambda t: t.Tanh(), (2, 6)),
    ("flatten", nn.Flatten, lambda t: t.Flatten(), (2, 3, 4, 5)),
    ("maxpool_2", lambda: nn.MaxPool2d(2), lambda t: t.MaxPool2d(2), (2, 3, 6, 8)),
    ("maxpool_3_s1_p1", lambda: nn.MaxPool2d(3, stride=1, padding=1),
     lambda t: t.MaxPool2d(3, stride=1, padding=1), (2, 2, 5, 7)),
    ("avgpool_2", lambda: nn.AvgPool2d(2), lambda t: t.AvgPool2d(2), (2, 3, 6, 4)),
    ("global_avg_pool", nn.GlobalAvgPool2d, lambda t: t.Sequential(t.AdaptiveAvgPool2d(1), t.Flatten()),
     (2, 5, 3, 7)),
    ("global_max_pool", nn.GlobalMaxPool2d, lambda t: t.Sequential(t.AdaptiveMaxPool2d(1), t.Flatten()),
     (3, 4, 5, 5)),
]


@pytest.mark.parametrize("name,make,make_torch,shape", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layer_matches_pytorch_in_output_and_every_gradient(name, make, make_torch, shape, device):
    layer = make().to(device)
    assert_module_matches_torch(layer, make_torch(_torch_nn()), _x(shape), device=device)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batchnorm_running_statistics_and_eval_outputs_match_pytorch_over_several_steps(momentum):
    t = _torch_nn()
    bn, bn_t = nn.BatchNorm2d(3, momentum=momentum), t.BatchNorm2d(3, momentum=momentum)
    for step in range(3):
        x = _x((4, 3, 2, 3), seed=step) * (step + 1) + step
        bn(ms.tensor(x))
        bn_t(torch_or_skip().tensor(x))
    for name, b in bn.named_buffers():
        np.testing.assert_allclose(b.numpy(), bn_t.state_dict()[name].numpy(), rtol=1e-5, atol=1e-6)
    bn.eval(), bn_t.eval()
    x = _x((2, 3, 2, 2), seed=9)
    np.testing.assert_allclose(bn(ms.tensor(x)).numpy(), bn_t(torch_or_skip().tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.item() == 3


def test_batchnorm_rejects_an_input_of_the_wrong_rank():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected a 4-D input \(N, C, H, W\), got shape \(2, 3\)"):
        nn.BatchNorm2d(3)(ms.tensor(_x((2, 3))))


def test_dropout_is_the_identity_in_eval_mode_and_drops_with_rescaling_in_training():
    x = np.ones((200, 50), dtype=np.float32)
    drop = nn.Dropout(0.3)
    y = drop(ms.tensor(x)).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02  # 10,000 Bernoulli(0.7) draws: std 0.0046
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(drop.eval()(ms.tensor(x)).numpy(), x)


# --- initialisation ---------------------------------------------------------------------
@pytest.mark.parametrize("make,fan_in", [(lambda: nn.Linear(300, 200), 300),
                                         (lambda: nn.Conv2d(16, 64, 3), 16 * 9)])
def test_default_init_is_uniform_within_one_over_sqrt_fan_in_like_pytorch(make, fan_in):
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    for p in (layer.weight, layer.bias):
        values = p.numpy()
        assert p.dtype == np.float32
        assert np.abs(values).max() <= bound
    w = layer.weight.numpy()
    # U(-b, b): mean 0, variance b^2 / 3; with >= 9,000 samples both sit within a few percent
    assert abs(w.mean()) < 0.05 * bound
    np.testing.assert_allclose(w.var(), bound ** 2 / 3, rtol=0.05)
    assert np.abs(w).max() > 0.99 * bound  # it fills the interval, not a narrower one


def test_init_draws_from_the_seeded_global_generator():
    ms.manual_seed(5)
    a = nn.Conv2d(3, 4, 3).weight.numpy()
    ms.manual_seed(5)
    b = nn.Conv2d(3, 4, 3).weight.numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, nn.Conv2d(3, 4, 3).weight.numpy())


def test_kaiming_normal_fan_out_has_std_sqrt_2_over_fan_out():
    w = ms.tensor(np.zeros((128, 64, 3, 3), dtype=np.float32))
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    std = math.sqrt(2 / (128 * 9))
    np.testing.assert_allclose(w.numpy().std(), std, rtol=0.02)  # 73,728 samples
    assert abs(w.numpy().mean()) < 0.05 * std


def test_simple_initialisers_fill_in_place_keeping_dtype():
    t = ms.tensor(np.zeros((3, 4), dtype=np.float64))
    data = t.data
    assert nn.init.ones_(t) is t and t.data is data and t.dtype == np.float64
    np.testing.assert_array_equal(t.numpy(), 1)
    np.testing.assert_array_equal(nn.init.constant_(t, 2.5).numpy(), 2.5)
    np.testing.assert_array_equal(nn.init.zeros_(t).numpy(), 0)
    u = nn.init.uniform_(ms.tensor(np.zeros(5000, dtype=np.float32)), -2, 3).numpy()
    assert u.min() >= -2 and u.max() <= 3 and abs(u.mean() - 0.5) < 0.1
    n = nn.init.normal_(ms.tensor(np.zeros(5000, dtype=np.float32)), 1.0, 0.5).numpy()
    assert abs(n.mean() - 1.0) < 0.03 and abs(n.std() - 0.5) < 0.03


def test_calculate_gain_matches_pytorch():
    torch = torch_or_skip()
    for name in ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu"):
        assert nn.init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert nn.init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))


@pytest.mark.parametrize("make,message", [
    (lambda: nn.Linear(0, 3), "Linear: in_features must be a positive int, got 0"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), "Conv2d: kernel_size and stride must be positive"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), "Conv2d: kernel_size must be an int or a pair of ints"),
    (lambda: nn.Dropout(1.5), "Dropout: p must be a probability"),
    (lambda: nn.init.kaiming_normal_(ms.tensor(np.zeros(3)), mode="fan_out"), "at least 2 dimensions"),
    (lambda: nn.init.kaiming_normal_(ms.tensor(np.zeros((3, 3))), mode="fan"), "mode must be 'fan_in' or"),
])
def test_bad_layer_arguments_raise_value_errors_naming_the_layer(make, message):
    with pytest.raises(ValueError, match=message):
        make()
