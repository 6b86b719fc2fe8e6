"""CIFAR ResNets, SE-ResNets and the small (SE-)Inception net.

Oracles: the parameter counts of He et al. / the SE paper's formula, and PyTorch
twins written here (the common PyTorch CIFAR ResNet, with SE placed as the paper's
Fig. 5) loaded with the same weights: logits, loss and every parameter gradient in
training mode, and eval-mode logits.
"""

import math

import numpy as np
import pytest
from helpers import assert_module_matches_torch, load_into_torch, torch_or_skip

import minise as ms
from minise import models, nn
from minise.models import torch_twins


# --- PyTorch twins ------------------------------------------------------------------------
# The CIFAR (SE-)ResNet twins live in minise.models.torch_twins (``minise bench train --compare torch``
# builds them too); these wrappers skip the test when torch is missing.
def torch_block_class(shortcut="A", reduction=None, integration="standard"):
    torch_or_skip()
    return torch_twins.torch_block_class(shortcut, reduction, integration)


def torch_resnet(n, num_classes=10, in_channels=3, shortcut="A", reduction=None, integration="standard"):
    torch_or_skip()
    return torch_twins.torch_resnet(n, num_classes, in_channels, shortcut, reduction, integration)


def torch_inception(num_classes=10, in_channels=3, reduction=None):
    torch = torch_or_skip()
    tnn, tF = torch.nn, torch.nn.functional

    class BasicConv2d(tnn.Module):
        def __init__(self, cin, cout, k, padding=0):
            super().__init__()
            self.conv = tnn.Conv2d(cin, cout, k, padding=padding, bias=False)
            self.bn = tnn.BatchNorm2d(cout)

        def forward(self, x):
            return tF.relu(self.bn(self.conv(x)))

    class SE(tnn.Module):
        def __init__(self, c, r):
            super().__init__()
            self.fc1, self.fc2 = tnn.Linear(c, c // r), tnn.Linear(c // r, c)

        def forward(self, x):
            return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))[:, :, None, None]

    class Inception(tnn.Module):
        def __init__(self, cin, c1, c3r, c3, c5r, c5, pp):
            super().__init__()
            self.branch1x1 = BasicConv2d(cin, c1, 1)
            self.branch3x3 = tnn.Sequential(BasicConv2d(cin, c3r, 1), BasicConv2d(c3r, c3, 3, 1))
            self.branch5x5 = tnn.Sequential(BasicConv2d(cin, c5r, 1), BasicConv2d(c5r, c5, 3, 1),
                                            BasicConv2d(c5, c5, 3, 1))
            self.branch_pool = tnn.Sequential(tnn.MaxPool2d(3, 1, 1), BasicConv2d(cin, pp, 1))
            if reduction is not None:
                self.se = SE(c1 + c3 + c5 + pp, reduction)

        def forward(self, x):
            out = torch.cat([self.branch1x1(x), self.branch3x3(x), self.branch5x5(x), self.branch_pool(x)], 1)
            return self.se(out) if reduction is not None else out

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.stem = BasicConv2d(in_channels, 32, 3, 1)
            self.inception1 = Inception(32, 16, 16, 24, 8, 12, 12)
            self.pool1 = tnn.MaxPool2d(2)
            self.inception2 = Inception(64, 32, 32, 48, 16, 24, 24)
            self.pool2 = tnn.MaxPool2d(2)
            self.inception3 = Inception(128, 48, 48, 80, 16, 32, 32)
            self.linear = tnn.Linear(192, num_classes)

        def forward(self, x):
            out = self.inception1(self.stem(x))
            out = self.inception2(self.pool1(out))
            out = self.inception3(self.pool2(out))
            return self.linear(out.mean(dim=(2, 3)))

    return Net()


def _images(n, c=3, size=32, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, size, size)).astype(np.float32)


def _labels(n, num_classes=10, seed=1):
    return np.random.default_rng(seed).integers(0, num_classes, n)


def _assert_train_and_eval_parity(model, twin, x, labels):
    """The whole model against its twin, in training mode then in eval mode.

    float32: training-mode logits and loss, eval-mode logits, within float32 tolerance.
    float64: the same plus the input gradient, every parameter gradient and the running
    statistics, within 1e-7. Why the gradients are compared in float64: a deep ReLU net has
    hundreds of thousands of kinks, and in float32 a pre-activation within ~1e-6 of zero
    (found here once: 1.7e-6 in layer3.1 of ResNet-20) can land on different sides in two
    correct implementations, which moves some float32 gradients by several percent. In
    float64 both libraries agree to ~1e-14, so a real bug cannot hide below the tolerance.
    """
    torch = torch_or_skip()
    F = ms.functional
    load_into_torch(model, twin)
    logits, logits_t = model(ms.tensor(x)), twin(torch.tensor(x))
    np.testing.assert_allclose(logits.numpy(), logits_t.detach().numpy(), atol=1e-4, rtol=1e-3,
                               err_msg="float32 training-mode logits differ")
    loss = F.cross_entropy(logits, ms.tensor(labels)).item()
    loss_t = torch.nn.functional.cross_entropy(logits_t, torch.tensor(labels)).item()
    assert loss == pytest.approx(loss_t, rel=1e-5)

    model.double()
    twin.double()
    x64 = x.astype(np.float64)
    assert_module_matches_torch(model, twin, x64, labels=labels, atol=1e-10, rtol=1e-7)

    model.eval()
    twin.eval()
    load_into_torch(model, twin)  # the running statistics the training steps updated
    np.testing.assert_allclose(model(ms.tensor(x64)).numpy(), twin(torch.tensor(x64)).detach().numpy(),
                               atol=1e-10, rtol=1e-7, err_msg="float64 eval-mode logits differ")
    model.float()
    twin.float()
    np.testing.assert_allclose(model(ms.tensor(x)).numpy(), twin(torch.tensor(x)).detach().numpy(),
                               atol=1e-4, rtol=1e-3, err_msg="float32 eval-mode logits differ")


# --- parameter counts -------------------------------------------------------------------------
def _resnet_params(n, shortcut="A", se_r=None, num_classes=10, in_channels=3):
    """Closed form: stem, 3 stages of n blocks (two 3x3 convs + two BNs each), classifier, [+SE]."""
    total = in_channels * 16 * 9 + 2 * 16 + 64 * num_classes + num_classes
    in_planes = 16
    for planes in (16, 32, 64):
        for _j in range(n):
            total += in_planes * planes * 9 + planes * planes * 9 + 4 * planes
            if in_planes != planes and shortcut == "B":
                total += in_planes * planes + 2 * planes
            if se_r is not None:
                total += 2 * planes * (planes // se_r) + planes // se_r + planes
            in_planes = planes
    return total


def test_resnet20_and_se_resnet20_have_the_published_parameter_counts():
    assert models.resnet20().num_parameters() == 269_722
    assert models.resnet20(shortcut="B").num_parameters() == 272_474
    assert models.se_resnet20().num_parameters() == 272_095
    assert models.se_resnet20(integration="identity").num_parameters() == 272_095
    assert models.se_resnet20(integration="post").num_parameters() == 272_095


@pytest.mark.parametrize("depth,n", [(32, 5), (44, 7), (56, 9), (110, 18)])
def test_deeper_resnets_have_6n_plus_2_layers_and_the_closed_form_parameter_count(depth, n):
    plain = getattr(models, f"resnet{depth}")()
    se = getattr(models, f"se_resnet{depth}")()
    assert plain.depth == depth
    convs = [m for m in plain.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == depth  # 6n + 1 convolutions and one Linear
    assert plain.num_parameters() == _resnet_params(n)
    assert se.num_parameters() == _resnet_params(n, se_r=16)
    # eq. 5 of the SE paper: (2 / r) * sum_s N_s C_s^2 extra weights, plus the biases
    formula = 2 / 16 * sum(n * c * c for c in (16, 32, 64)) + sum(n * (c // 16 + c) for c in (16, 32, 64))
    assert se.num_parameters() - plain.num_parameters() == formula


def test_state_dict_keys_follow_the_pytorch_cifar_naming():
    keys = list(models.se_resnet20(shortcut="B").state_dict())
    for key in ("conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked", "layer1.0.conv1.weight",
                "layer2.1.se.fc2.weight", "layer2.0.shortcut.0.weight", "layer3.0.shortcut.1.running_var",
                "linear.weight", "linear.bias"):
        assert key in keys
    assert keys == list(torch_resnet(3, shortcut="B", reduction=16).state_dict())


# --- building blocks ----------------------------------------------------------------------------
def test_option_a_shortcut_subsamples_and_pads_a_quarter_of_the_channels_on_each_side():
    x = _images(2, c=16, size=8)
    out = models.ShortcutA(16, 32, stride=2)(ms.tensor(x)).numpy()
    expected = np.zeros((2, 32, 4, 4), dtype=np.float32)
    expected[:, 8:24] = x[:, :, ::2, ::2]
    np.testing.assert_array_equal(out, expected)


def test_resnet_convolutions_start_kaiming_normal_fan_out_and_batchnorms_at_one_and_zero():
    model = models.resnet56()
    weights = np.concatenate([m.weight.numpy().ravel() for name, m in model.named_modules()
                              if isinstance(m, nn.Conv2d) and name.startswith("layer3")])
    np.testing.assert_allclose(weights.std(), math.sqrt(2 / (64 * 9)), rtol=0.02)  # 663,552 samples
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all((bn.weight.numpy() == 1).all() and (bn.bias.numpy() == 0).all() for bn in bns)


@pytest.mark.parametrize("kwargs,message", [
    (dict(integration="middle"), "integration must be one of"),
    (dict(shortcut="C"), "shortcut must be 'A' or 'B'"),
    (dict(reduction=0), "reduction must be a positive int"),
    (dict(num_classes=0), "num_classes must be a positive int"),
])
def test_bad_model_options_raise_value_errors_naming_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.se_resnet20(**kwargs)


def test_the_zoo_builds_every_listed_model_by_name():
    names = models.list()
    assert names == sorted(names)
    assert {"resnet20", "resnet110", "se_resnet20", "se_resnet110", "inception_small",
            "se_inception_small"} <= set(names)
    assert models.get("se_resnet20", reduction=8).num_parameters() == _resnet_params(3, se_r=8)
    with pytest.raises(ValueError, match="unknown model 'resnet21'; available: inception_small"):
        models.get("resnet21")


# --- parity with PyTorch ------------------------------------------------------------------------
@pytest.mark.parametrize("in_planes,planes,stride,reduction,integration", [
    (16, 32, 2, 16, "standard"), (16, 16, 1, None, "standard"), (16, 32, 2, 4, "pre"),
    (32, 32, 1, 4, "post"), (16, 32, 2, 8, "identity")])
def test_basic_block_matches_pytorch_in_float32_output_and_every_gradient(in_planes, planes, stride, reduction,
                                                                          integration, device):
    block = models.BasicBlock(in_planes, planes, stride, "A", reduction, integration).to(device)
    twin = torch_block_class("A", reduction, integration)(in_planes, planes, stride)
    assert_module_matches_torch(block, twin, _images(2, c=in_planes, size=8), device=device, atol=1e-4, rtol=1e-3)


def test_resnet20_matches_its_pytorch_twin_in_training_and_eval():
    model = models.resnet20()
    _assert_train_and_eval_parity(model, torch_resnet(3), _images(2), _labels(2))


def test_se_resnet20_matches_its_pytorch_twin_in_training_and_eval():
    model = models.se_resnet20()
    _assert_train_and_eval_parity(model, torch_resnet(3, reduction=16), _images(2), _labels(2))


@pytest.mark.parametrize("integration", ["pre", "post", "identity"])
def test_se_integration_variants_match_the_pytorch_twin(integration):
    model = models.ResNet(1, se_reduction=4, integration=integration)
    twin = torch_resnet(1, reduction=4, integration=integration)
    _assert_train_and_eval_parity(model, twin, _images(2, size=16), _labels(2))


def test_option_b_shortcuts_and_grayscale_input_match_the_pytorch_twin():
    model = models.ResNet(1, num_classes=7, in_channels=1, shortcut="B", se_reduction=16)
    twin = torch_resnet(1, num_classes=7, in_channels=1, shortcut="B", reduction=16)
    _assert_train_and_eval_parity(model, twin, _images(3, c=1, size=28), _labels(3, 7))


def test_se_inception_small_matches_its_pytorch_twin_in_training_and_eval():
    model = models.se_inception_small()
    _assert_train_and_eval_parity(model, torch_inception(reduction=16), _images(2), _labels(2))


def test_inception_small_matches_its_pytorch_twin_and_counts_its_se_overhead():
    plain, se = models.inception_small(), models.se_inception_small()
    _assert_train_and_eval_parity(plain, torch_inception(), _images(2, size=16), _labels(2))
    overhead = sum(2 * c * c // 16 + c // 16 + c for c in (64, 128, 192))
    assert se.num_parameters() - plain.num_parameters() == overhead


def test_se_blocks_record_their_excitations_during_a_model_forward():
    model = models.se_resnet20().eval()
    model(ms.tensor(_images(2)))
    blocks = [m for m in model.modules() if isinstance(m, nn.SEBlock)]
    assert len(blocks) == 9
    for block in blocks:
        s = block.last_excitation
        assert s.shape == (2, block.channels) and ((s > 0) & (s < 1)).all()
