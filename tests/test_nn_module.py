"""nn.Module machinery: registration, state dicts, modes, hooks, devices, repr.

Oracles: PyTorch (state-dict keys, load_state_dict results, repr text), plain
NumPy values copied in and read back, and hand-counted registries.
"""

import numpy as np
import pytest
from helpers import torch_or_skip

import minise as ms
import minise.functional as F
from minise import autograd, nn


class Scale(nn.Module):
    """y = x * weight + bias, with a buffer that counts calls: one of each kind of member."""

    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(np.arange(1, n + 1, dtype=np.float32))
        self.bias = nn.Parameter(np.zeros(n, dtype=np.float32))
        self.register_buffer("calls", ms.tensor(np.array(0, dtype=np.int64)))
        self.register_buffer("scratch", ms.tensor(np.zeros(n, dtype=np.float32)), persistent=False)

    def forward(self, x):
        self.calls.data[...] += 1
        return x * self.weight + self.bias


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.body = nn.Sequential(Scale(6), nn.ReLU())
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(self.body(self.fc1(x)))


def _net():
    return Net()


def _input(n=5):
    return ms.tensor(np.random.default_rng(1).standard_normal((n, 4)).astype(np.float32))


# --- registration ----------------------------------------------------------------
def test_assigning_parameters_modules_and_buffers_registers_each_in_its_dict():
    s = Scale(3)
    assert list(s._parameters) == ["weight", "bias"]
    assert list(s._buffers) == ["calls", "scratch"]
    net = _net()
    assert list(net._modules) == ["fc1", "body", "fc2"]
    assert net.fc1 is net._modules["fc1"]
    net.note = ms.tensor([1.0])  # a plain Tensor that is not a buffer stays a plain attribute
    assert "note" not in net._buffers and "note" not in net._parameters


def test_named_parameters_gives_dotted_paths_in_assignment_order():
    names = [name for name, _ in _net().named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "body.0.weight", "body.0.bias", "fc2.weight", "fc2.bias"]


def test_a_shared_parameter_is_listed_once():
    net = _net()
    net.fc2.weight = net.fc1.weight  # tie (any shape: parameters() only walks)
    params = list(net.parameters())
    assert len(params) == 5
    assert len({id(p) for p in params}) == 5


def test_named_modules_children_and_buffers_walk_the_tree():
    net = _net()
    assert [name for name, _ in net.named_modules()] == ["", "fc1", "body", "body.0", "body.1", "fc2"]
    assert [type(m).__name__ for m in net.children()] == ["Linear", "Sequential", "Linear"]
    assert [name for name, _ in net.named_buffers()] == ["body.0.calls", "body.0.scratch"]


def test_reassigning_a_name_moves_it_between_registries():
    net = _net()
    net.fc1 = nn.Parameter(np.ones(2, dtype=np.float32))
    assert "fc1" not in net._modules and "fc1" in net._parameters
    with pytest.raises(TypeError, match="fc1 is a parameter"):
        net.fc1 = 3.0


def test_assigning_a_layer_before_super_init_names_the_fix():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Broken()


def test_parameter_is_a_tensor_that_requires_grad():
    p = nn.Parameter(np.ones((2, 3)))
    assert isinstance(p, ms.Tensor) and p.requires_grad and p.shape == (2, 3)
    assert repr(p).startswith("Parameter containing:")


def test_sequential_and_modulelist_register_children_by_index():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and seq[1] is seq._modules["1"]
    assert [name for name, _ in seq[:2].named_modules()] == ["", "0", "1"]
    with pytest.raises(IndexError, match="index 3 is out of range for 3 modules"):
        seq[3]
    ml = nn.ModuleList([nn.Linear(2, 2)]).append(nn.Linear(2, 2))
    assert [name for name, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    x = ms.tensor([[1.0, -2.0]])
    expected = seq[2](seq[1](seq[0](x)))
    np.testing.assert_array_equal(seq(x).numpy(), expected.numpy())


# --- state dicts -------------------------------------------------------------------
def test_state_dict_keys_and_order_match_pytorch_for_the_same_layers():
    torch = torch_or_skip()
    ours = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4, 2))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4),
                                 torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (k, v), (_kt, vt) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert v.shape == tuple(vt.shape), k
        assert v.dtype == vt.numpy().dtype, k  # num_batches_tracked is int64 in both


def test_state_dict_leaves_out_non_persistent_buffers_and_holds_tensors():
    state = Scale(3).state_dict()
    assert list(state) == ["weight", "bias", "calls"]
    assert all(isinstance(v, ms.Tensor) and not v.requires_grad for v in state.values())


def test_state_dict_round_trip_into_a_fresh_model_gives_identical_outputs():
    ms.manual_seed(1)
    trained = _net()
    saved = {k: v.numpy().copy() for k, v in trained.state_dict().items()}
    ms.manual_seed(2)
    fresh = _net()
    x = _input()
    assert not np.allclose(fresh(x).numpy(), trained(x).numpy())
    result = fresh.load_state_dict(saved)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), saved[k])
    np.testing.assert_array_equal(fresh(x).numpy(), trained(x).numpy())


def test_load_state_dict_copies_in_place_keeping_objects_and_dtypes():
    net = _net()
    weight = net.fc1.weight
    state = {k: v.numpy().astype(np.float64) + 1 for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    assert net.fc1.weight is weight  # an optimiser holding it still sees the new values
    assert weight.dtype == np.float32
    np.testing.assert_allclose(weight.numpy(), state["fc1.weight"], rtol=1e-6)
    assert net.body[0].calls.dtype == np.int64 and net.body[0].calls.item() == 1


def test_strict_loading_names_missing_unexpected_and_misshapen_keys():
    net = _net()
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    del state["fc2.bias"]
    state["fc3.weight"] = np.zeros(3, dtype=np.float32)
    state["fc1.weight"] = np.zeros((6, 5), dtype=np.float32)
    with pytest.raises(nn.StateDictError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert "missing key(s): fc2.bias" in message
    assert "unexpected key(s): fc3.weight" in message
    assert "fc1.weight: checkpoint has shape (6, 5), the model has (6, 4)" in message
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, ValueError)


def test_loading_fails_as_a_whole_and_copies_nothing_on_error():
    net = _net()
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    state = {k: v.numpy() + 1 for k, v in net.state_dict().items()}
    state["fc2.weight"] = np.zeros((1, 1), dtype=np.float32)
    with pytest.raises(nn.StateDictError, match="size mismatch for fc2.weight"):
        net.load_state_dict(state, strict=False)  # a wrong shape is an error even when not strict
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_non_strict_loading_returns_the_same_key_lists_as_pytorch():
    torch = torch_or_skip()
    ours = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    state = {k: v.numpy() for k, v in ours.state_dict().items() if not k.startswith("1.")}
    state["extra.weight"] = np.zeros(2, dtype=np.float32)
    result = ours.load_state_dict(state, strict=False)
    expected = theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    assert result.missing_keys == expected.missing_keys == ["1.weight", "1.bias"]
    assert result.unexpected_keys == expected.unexpected_keys == ["extra.weight"]


# --- modes ----------------------------------------------------------------------------
def test_train_and_eval_set_the_flag_on_every_submodule_and_return_self():
    net = _net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.body.train()
    assert net.body[0].training and not net.fc1.training
    with pytest.raises(ValueError, match="mode must be a bool"):
        net.train("no")


def test_batchnorm_uses_batch_statistics_in_train_mode_and_running_ones_in_eval():
    bn = nn.BatchNorm1d(3)
    x = ms.tensor(np.random.default_rng(0).normal(5.0, 2.0, (8, 3)).astype(np.float32))
    a = x.numpy()
    y = bn(x).numpy()
    np.testing.assert_allclose(y, (a - a.mean(0)) / np.sqrt(a.var(0) + 1e-5), atol=1e-5)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * a.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * a.var(0, ddof=1), rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    y_eval = bn(x).numpy()
    expected = (a - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + 1e-5)
    np.testing.assert_allclose(y_eval, expected, atol=1e-5)
    assert bn.num_batches_tracked.item() == 1  # eval leaves the statistics alone


def test_zero_grad_forgets_every_parameter_gradient():
    net = _net()
    net(_input()).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(float(np.abs(p.grad.numpy()).sum()) == 0.0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_apply_visits_every_module_children_before_parents():
    seen = []
    net = _net()
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "Scale", "ReLU", "Sequential", "Linear", "Net"]


# --- hooks and the module stack --------------------------------------------------------
def test_forward_hook_sees_inputs_and_output_and_may_replace_it_until_removed():
    net = _net()
    calls = []

    def hook(module, inputs, output):
        calls.append((module, inputs, output))
        return output * 2

    handle = net.fc2.register_forward_hook(hook)
    x = _input()
    doubled = net(x).numpy()
    (module, inputs, output), = calls
    assert module is net.fc2 and inputs[0].shape == (5, 6)
    np.testing.assert_allclose(doubled, 2 * output.numpy())
    handle.remove()
    np.testing.assert_allclose(net(x).numpy(), output.numpy(), rtol=1e-6)
    assert len(calls) == 1


def test_ops_record_the_dotted_path_of_the_module_that_ran_them():
    net = _net()
    out = net(_input())
    assert out.creator.module_path == "fc2"
    relu_out = out.creator.inputs[0]
    assert relu_out.creator.module_path == "body.1"
    scale_add = relu_out.creator.inputs[0].creator
    assert scale_add.module_path == "body.0"
    assert autograd._module_stack == []


def test_the_module_stack_is_popped_even_when_forward_raises():
    net = _net()
    with pytest.raises(ValueError, match="linear"):
        net(ms.tensor(np.zeros((2, 7), dtype=np.float32)))
    assert autograd._module_stack == []


# --- devices and dtypes -------------------------------------------------------------------
def test_to_device_moves_every_parameter_and_buffer_in_place(device):
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), Scale(3))
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    expected = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), Scale(3))
    expected.load_state_dict(net.state_dict())
    objects = [id(t) for t in list(net.parameters()) + list(net.buffers())]
    assert net.to(device) is net
    moved = list(net.parameters()) + list(net.buffers())
    assert [id(t) for t in moved] == objects
    assert len(moved) == 2 + 2 + 3 + 2 + 2  # linear, bn params, bn buffers, scale params, scale buffers
    assert all(t.device.startswith(device) for t in moved)
    assert net[1].num_batches_tracked.dtype == np.int64
    out = net(ms.tensor(x, device=device))
    assert out.device.startswith(device)
    np.testing.assert_allclose(out.numpy(), expected(ms.tensor(x)).numpy(), atol=1e-5)
    net.to("cpu")
    assert all(t.device == "cpu" for t in list(net.parameters()) + list(net.buffers()))


def test_to_rejects_an_unknown_device_before_moving_anything():
    net = _net()
    with pytest.raises(ms.backend.DeviceError, match="unknown device 'tpu'"):
        net.to("tpu")


def test_double_converts_floating_parameters_and_buffers_but_not_counters():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    weight = net[0].weight
    net.double()
    assert net[0].weight is weight and weight.dtype == np.float64
    assert net[1].running_var.dtype == np.float64
    assert net[1].num_batches_tracked.dtype == np.int64
    net.float()
    assert weight.dtype == np.float32


# --- printing -----------------------------------------------------------------------------
def test_repr_matches_pytorchs_nested_format():
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                        nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), nn.Sequential())
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
        "  (1): BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)\n"
        "  (2): ReLU()\n"
        "  (3): Sequential(\n"
        "    (0): Flatten(start_dim=1, end_dim=-1)\n"
        "    (1): Linear(in_features=4, out_features=3, bias=True)\n"
        "  )\n"
        "  (4): Sequential()\n"
        ")"
    )


def test_functional_ops_inside_a_module_follow_its_parameters():
    """A module is only bookkeeping: the same math written with F gives the same numbers."""
    net = _net()
    x = _input()
    scale = net.body[0]
    h = F.linear(x, net.fc1.weight, net.fc1.bias)
    h = F.relu(h * scale.weight + scale.bias)
    expected = F.linear(h, net.fc2.weight, net.fc2.bias)
    np.testing.assert_array_equal(net(x).numpy(), expected.numpy())
