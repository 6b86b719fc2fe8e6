"""nn.SEBlock: the three steps against closed forms (eqs. 2-4), the whole block against
the numerical gradient (float64) and against a PyTorch SE module built here from the same weights.
"""

import numpy as np
import pytest
from helpers import assert_module_matches_torch, torch_or_skip

import minise as ms
from minise import nn


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _np_excite(block, z, gate="sigmoid"):
    """s = gate(W2 relu(W1 z + b1) + b2), written with NumPy from the block's weights."""
    h = np.maximum(z @ block.fc1.weight.numpy().T + block.fc1.bias.numpy(), 0)
    a = h @ block.fc2.weight.numpy().T + block.fc2.bias.numpy()
    return {"sigmoid": 1 / (1 + np.exp(-a)), "tanh": np.tanh(a), "relu": np.maximum(a, 0)}[gate]


# --- construction ---------------------------------------------------------------
@pytest.mark.parametrize("channels,reduction,hidden", [(64, 16, 4), (16, 16, 1), (8, 16, 1), (32, 4, 8)])
def test_the_bottleneck_has_max_1_c_over_r_units(channels, reduction, hidden):
    block = nn.SEBlock(channels, reduction)
    assert block.fc1.weight.shape == (hidden, channels) and block.fc2.weight.shape == (channels, hidden)
    assert block.num_parameters() == 2 * channels * hidden + hidden + channels


@pytest.mark.parametrize("kwargs,message", [
    (dict(channels=0), "channels must be a positive int"),
    (dict(channels=8, reduction=0), "reduction must be a positive int"),
    (dict(channels=8, squeeze="median"), "squeeze must be one of"),
    (dict(channels=8, gate="softmax"), "gate must be one of"),
])
def test_bad_options_raise_value_errors_that_name_the_option(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nn.SEBlock(**kwargs)


def test_an_input_with_the_wrong_channel_count_is_rejected_by_name():
    with pytest.raises(ValueError, match=r"SEBlock: expected x of shape \(N, 8, H, W\), got \(2, 4, 3, 3\)"):
        nn.SEBlock(8, 4)(ms.tensor(_x((2, 4, 3, 3))))


# --- the three steps, each against its closed form -----------------------------------
def test_squeeze_is_the_mean_over_height_and_width(device):
    block = nn.SEBlock(6, 2).to(device)
    x = _x((3, 6, 5, 7))
    z = block.squeeze(ms.tensor(x, device=device))
    assert z.shape == (3, 6)
    np.testing.assert_allclose(z.numpy(), x.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)


def test_max_squeeze_is_the_maximum_over_height_and_width():
    x = _x((2, 6, 4, 3))
    z = nn.SEBlock(6, 2, squeeze="max").squeeze(ms.tensor(x))
    np.testing.assert_array_equal(z.numpy(), x.max(axis=(2, 3)))


@pytest.mark.parametrize("gate", ["sigmoid", "tanh", "relu"])
def test_excite_is_gate_of_w2_relu_w1_z(gate, device):
    block = nn.SEBlock(12, 3, gate=gate)
    z = _x((4, 12), seed=3)
    expected = _np_excite(block, z, gate)
    s = block.to(device).excite(ms.tensor(z, device=device))
    np.testing.assert_allclose(s.numpy(), expected, rtol=1e-5, atol=1e-6)
    if gate == "sigmoid":
        assert ((s.numpy() > 0) & (s.numpy() < 1)).all()


def test_reweight_multiplies_each_channel_by_its_gate():
    x, s = _x((2, 3, 4, 5)), np.random.default_rng(1).uniform(0, 1, (2, 3)).astype(np.float32)
    out = nn.SEBlock(3, 1).reweight(ms.tensor(x), ms.tensor(s))
    np.testing.assert_allclose(out.numpy(), x * s[:, :, None, None], rtol=1e-6)
    with pytest.raises(ValueError, match=r"s must have shape \(N, C\) = \(2, 3\)"):
        nn.SEBlock(3, 1).reweight(ms.tensor(x), ms.tensor(s.T))


def test_forward_is_reweight_of_excite_of_squeeze_and_keeps_the_excitation(device):
    block = nn.SEBlock(16, 4)
    x = _x((2, 16, 3, 5))
    s = _np_excite(block, x.mean(axis=(2, 3)))
    block.to(device)
    assert block.last_excitation is None
    out = block(ms.tensor(x, device=device))
    np.testing.assert_allclose(out.numpy(), x * s[:, :, None, None], rtol=1e-5, atol=1e-6)
    assert isinstance(block.last_excitation, np.ndarray)  # NumPy even when the block runs on the GPU
    np.testing.assert_allclose(block.last_excitation, s, rtol=1e-5, atol=1e-6)


# --- gradients ------------------------------------------------------------------------
def _functional_call(block, names):
    """fn(x, *params) running ``block`` with the given tensors in place of its parameters."""
    def fn(x, *params):
        for name, p in zip(names, params):
            owner, attr = name.rsplit(".", 1)
            getattr(block, owner)._parameters[attr] = p
        return block(x)
    return fn


@pytest.mark.parametrize("squeeze,gate", [("avg", "sigmoid"), ("max", "tanh")])
def test_the_whole_block_passes_gradcheck_in_float64(squeeze, gate):
    block = nn.SEBlock(8, 4, squeeze=squeeze, gate=gate).double()
    names, params = zip(*block.named_parameters())
    x = ms.tensor(np.random.default_rng(0).standard_normal((2, 8, 3, 3)), requires_grad=True)
    inputs = [x] + [ms.tensor(p.data, requires_grad=True) for p in params]
    assert ms.gradcheck(_functional_call(block, names), inputs)


class TorchSE:
    """The SE block written directly in PyTorch, the way the paper draws it (Fig. 3)."""

    @staticmethod
    def build(channels, hidden):
        torch = torch_or_skip()

        class SE(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = torch.nn.Linear(channels, hidden)
                self.fc2 = torch.nn.Linear(hidden, channels)

            def forward(self, x):
                z = x.mean(dim=(2, 3))                                       # squeeze (eq. 2)
                s = torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))         # excite (eq. 3)
                return x * s[:, :, None, None]                               # reweight (eq. 4)

        return SE()


@pytest.mark.parametrize("shape,reduction", [((2, 16, 5, 7), 4), ((3, 32, 4, 4), 16), ((1, 8, 6, 3), 16)])
def test_the_block_matches_a_pytorch_se_module_in_output_and_every_gradient(shape, reduction, device):
    block = nn.SEBlock(shape[1], reduction).to(device)
    twin = TorchSE.build(shape[1], block.hidden)
    assert_module_matches_torch(block, twin, _x(shape), device=device, atol=1e-5, rtol=1e-4)
