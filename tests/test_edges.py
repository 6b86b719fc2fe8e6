"""The seven inputs of issue 12, each with PyTorch's answer (values from PyTorch 2.x or hand math).

The kinds behind them are covered op by op in tests/test_opinfo.py; these are the
reported cases, kept as plain readable tests.
"""

import numpy as np
import pytest

import minise as ms
import minise.functional as F
from minise import models, nn, optim


# 1. a saved tensor changed in place before backward ------------------------------------------
def _linear_12():
    layer = nn.Linear(2, 1, bias=False)
    layer.weight.data[...] = [[1.0, 2.0]]
    return layer


def test_backward_after_optimizer_step_on_a_saved_weight_raises_and_names_op_tensor_and_versions():
    D = _linear_12()
    z = ms.tensor([[3.0, 4.0]], requires_grad=True)
    out = D(z).sum()
    (D(z) ** 2).sum().backward()                       # d/dw (w.z)^2 = 2 * 11 * z = [66, 88]
    optim.SGD(D.parameters(), lr=0.5).step()
    np.testing.assert_allclose(D.weight.numpy(), [[-32.0, -42.0]])   # [1, 2] - 0.5 * [66, 88]
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: Linear .*parameter 'weight' "
                                           r"of shape \(1, 2\).*at version 1; it is now at version 2"):
        out.backward()


def test_backward_before_the_step_still_gives_the_forward_weights_gradient():
    D = _linear_12()
    z = ms.tensor([[3.0, 4.0]], requires_grad=True)
    out = D(z).sum()
    out.backward()
    optim.SGD(D.parameters(), lr=0.5).step()
    np.testing.assert_allclose(z.grad.numpy(), [[1.0, 2.0]])        # dout/dz = w used in forward


def test_in_place_changes_through_minise_bump_the_version():
    bn = nn.BatchNorm2d(2)
    before = (bn.running_mean._version, bn.running_var._version)
    bn(ms.tensor(np.arange(16.0, dtype=np.float32).reshape(2, 2, 2, 2)))
    assert (bn.running_mean._version, bn.running_var._version) == (before[0] + 1, before[1] + 1)
    layer = _linear_12()
    v = layer.weight._version
    layer.load_state_dict({"weight": np.ones((1, 2), np.float32)})
    assert layer.weight._version == v + 1
    adam = optim.Adam(layer.parameters())
    layer.weight.grad = ms.tensor([[1.0, 1.0]])
    adam.step()
    assert layer.weight._version == v + 2


def test_writing_to_raw_data_bypasses_the_check_as_in_pytorch():
    D = _linear_12()
    z = ms.tensor([[3.0, 4.0]], requires_grad=True)
    out = D(z).sum()
    D.weight.data[...] = 0.0                            # .data: no version bump, documented
    out.backward()
    np.testing.assert_allclose(z.grad.numpy(), [[0.0, 0.0]])


def test_a_users_function_that_saves_its_input_is_checked_too():
    class Square(ms.Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, gy):
            (x,) = self.saved
            return 2 * x * gy

    w = nn.Parameter(np.array([3.0], np.float32))
    y = Square()(w)
    w.grad = ms.tensor([1.0])
    optim.SGD([w], lr=1.0).step()
    with pytest.raises(RuntimeError, match="Square saved its input 0"):
        y.backward(np.ones(1, np.float32))


# 2. integer true division ----------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: ms.tensor([1, 2, 3]) / ms.tensor([2, 4, 8]),
    lambda: ms.tensor([1, 2, 3]) / 2,
    lambda: 2 / ms.tensor([1, 2, 3]),
    lambda: (ms.tensor([1, 2, 3]) > 1).sum() / 3,
])
def test_integer_true_division_is_float32_like_pytorch(make):
    assert make().dtype == np.float32


def test_integer_division_values_and_a_float32_loss_stays_float32():
    np.testing.assert_allclose((ms.tensor([1, 2, 3]) / ms.tensor([2, 4, 8])).numpy(), [0.5, 0.5, 0.375])
    x = ms.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * ((ms.tensor([1, 2]) > 1).sum() / 3)).sum()
    assert loss.dtype == np.float32


def test_mean_of_integers_raises_like_pytorch():
    with pytest.raises(RuntimeError, match="could not infer output dtype"):
        ms.tensor([1, 2, 3]).mean()


# 3. 1-D @ 1-D backward ---------------------------------------------------------------------------
def test_dot_product_of_two_vectors_backpropagates():
    a = ms.tensor([1.0, 2, 3], requires_grad=True)
    b = ms.tensor([4.0, 5, 6], requires_grad=True)
    y = a @ b
    y.backward()
    assert y.shape == () and y.item() == 32.0
    np.testing.assert_allclose(a.grad.numpy(), [4, 5, 6])    # d(a.b)/da = b
    np.testing.assert_allclose(b.grad.numpy(), [1, 2, 3])


# 4. BatchNorm eval on an integer input -------------------------------------------------------------
def test_batch_norm_eval_uses_float_running_stats_and_refuses_integers():
    bn = nn.BatchNorm2d(1).eval()
    bn.running_mean.data[...] = 0.3
    bn.running_var.data[...] = 2.0
    y = bn(ms.tensor([1.0, 2.0]).reshape(2, 1, 1, 1))
    # (x - 0.3) / sqrt(2 + 1e-5): PyTorch's [0.4950, 1.2021]
    np.testing.assert_allclose(y.numpy().ravel(), (np.array([1.0, 2.0]) - 0.3) / np.sqrt(2.0 + 1e-5), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="batch_norm: not implemented for int64"):
        bn(ms.tensor([1, 2]).reshape(2, 1, 1, 1))


# 5. float16 accumulates in float32 --------------------------------------------------------------
def test_batch_norm_on_float16_ones_keeps_finite_running_stats():
    bn = nn.BatchNorm2d(4)
    y = bn(ms.tensor(np.ones((128, 4, 32, 32), np.float16)))
    assert y.dtype == np.float16 and np.all(y.numpy() == 0)          # x - mean = 0 exactly
    np.testing.assert_allclose(bn.running_mean.numpy(), [0.1] * 4, rtol=1e-6)   # 0.9 * 0 + 0.1 * 1
    np.testing.assert_allclose(bn.running_var.numpy(), [0.9] * 4, rtol=1e-6)    # 0.9 * 1 + 0.1 * 0


def test_global_avg_pool_of_float16_hundreds_is_a_hundred():
    z = F.global_avg_pool2d(ms.tensor(np.full((1, 1, 64, 64), 100, np.float16)))
    assert z.dtype == np.float16 and z.item() == 100.0


# 6. max_pool2d backward with a NaN in a window --------------------------------------------------
def test_max_pool_routes_the_gradient_to_the_nan_like_pytorch():
    x = ms.tensor([[[[1.0, np.nan, np.nan, 2.0]]]], requires_grad=True)
    y = F.max_pool2d(x, (1, 4))
    y.sum().backward()
    assert np.isnan(y.item())
    # PyTorch's CPU kernel keeps the last NaN of the window: gradient [0, 0, 1, 0]
    np.testing.assert_array_equal(x.grad.numpy().ravel(), [0, 0, 1, 0])


# 7. out-of-range and empty inputs ----------------------------------------------------------------
def test_out_of_range_dims_raise_index_error_with_pytorchs_message():
    x = ms.tensor(np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(IndexError, match=r"expected to be in range of \[-4, 3\], but got 5"):
        F.flatten(x, 5)
    with pytest.raises(IndexError, match=r"expected to be in range of \[-4, 3\], but got 7"):
        F.transpose(x, 0, 7)
    with pytest.raises(TypeError, match="dim must be an int, got float"):
        x.sum(axis=1.5)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_a_batch_norm_model_takes_an_empty_batch_in_both_modes(mode):
    model = getattr(models.se_resnet20(), mode)()
    y = model(ms.tensor(np.zeros((0, 3, 32, 32), np.float32)))
    assert y.shape == (0, 10) and y.dtype == np.float32


@pytest.mark.parametrize("data,what", [(["a", "b"], "strings"), ([1.0, None], "NoneType")])
def test_tensor_refuses_non_numeric_data_with_a_type_error_naming_it(data, what):
    with pytest.raises(TypeError, match=what):
        ms.tensor(data)
