"""The engine itself: graphs, accumulation, hooks, no_grad, retain_graph, dtypes."""

import sys

import numpy as np
import pytest

import minise as ms


def test_tensor_from_list_is_float32_and_ints_are_int64():
    assert ms.tensor([1.0, 2.0]).dtype == np.float32
    assert ms.tensor([1, 2]).dtype == np.int64
    assert ms.tensor(np.zeros(3, dtype=np.float64)).dtype == np.float64
    assert ms.Tensor([1.0], dtype=np.float64).dtype == np.float64


def test_python_scalars_never_upcast_float32():
    x = ms.tensor([1.0, 2.0], requires_grad=True)
    for y in (x * 2.5, 2.5 * x, x + 1, 1 - x, x / 3.0, 3.0 / x, x ** 2, 2.0 ** x, -x):
        assert y.dtype == np.float32, y


def test_int_tensor_times_float_becomes_float32():
    assert (ms.tensor([1, 2]) * 0.5).dtype == np.float32
    assert (ms.tensor([1, 2]) * 2).dtype == np.int64


def test_item_numpy_and_shape():
    x = ms.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert x.shape == (2, 2) and x.ndim == 2 and x.numel() == 4 and x.size() == (2, 2) and x.size(1) == 2
    assert isinstance(x.sum().item(), float) and x.sum().item() == 10.0
    assert isinstance(x.numpy(), np.ndarray)
    assert x.device == "cpu"


def test_full_reduction_returns_0d_tensor_of_the_same_dtype():
    assert ms.tensor([[1.0, 2.0]]).sum().shape == ()
    assert ms.tensor(np.ones((2, 2))).sum().dtype == np.float64
    assert ms.tensor([[1.0, 2.0]]).mean().shape == ()


def test_backward_of_a_small_expression_matches_hand_derivative():
    # y = sum((x * b + 2)^2):  dy/dx = 2 (x b + 2) b,  dy/db = sum over rows of 2 (x b + 2) x
    xv = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    bv = np.array([1.0, 0.5, 2.0], dtype=np.float32)
    x, b = ms.tensor(xv, requires_grad=True), ms.tensor(bv, requires_grad=True)
    ((x * b + 2.0) ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (xv * bv + 2) * bv)
    np.testing.assert_allclose(b.grad.numpy(), (2 * (xv * bv + 2) * xv).sum(0))


def test_diamond_graph_sums_both_paths():
    x = ms.tensor(3.0, requires_grad=True)
    a = x * 2          # da/dx = 2
    y = a * a + a      # dy/da = 2a + 1 = 13
    y.backward()
    assert x.grad.item() == pytest.approx(26.0)


def test_tensor_used_twice_in_one_op():
    x = ms.tensor([1.0, -2.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0])


def test_gradients_accumulate_over_two_backward_calls_and_zero_grad_clears():
    x = ms.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None


def test_leaves_without_requires_grad_get_no_grad():
    x = ms.tensor([1.0, 2.0], requires_grad=True)
    c = ms.tensor([5.0, 6.0])
    (x * c).sum().backward()
    assert c.grad is None
    assert x.grad is not None


def test_non_leaf_grad_is_kept_only_with_retain_grad():
    x = ms.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    k = x * 3
    h.retain_grad()
    (h * k).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), k.numpy())
    assert k.grad is None


def test_hook_sees_gradient_and_can_replace_it():
    x = ms.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    y = x * 2
    y.register_hook(lambda g: seen.append(g.numpy().copy()))
    handle = x.register_hook(lambda g: g * 10)
    y.sum().backward()
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [20.0, 20.0])
    handle.remove()
    x.zero_grad()
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_no_grad_records_no_graph_and_enable_grad_restores_it():
    x = ms.tensor([1.0], requires_grad=True)
    with ms.no_grad():
        y = x * 2
        with ms.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.creator is None
    assert z.requires_grad and z.creator is not None
    assert ms.is_grad_enabled()


def test_no_grad_works_as_a_decorator():
    @ms.no_grad()
    def f(x):
        return x * 2

    assert not f(ms.tensor([1.0], requires_grad=True)).requires_grad


def test_second_backward_through_freed_graph_raises_clear_error():
    x = ms.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = ms.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_backward_frees_saved_buffers():
    x = ms.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    y = h.sum()
    fn = h.creator
    assert fn.saved
    y.backward()
    assert fn.saved is None and fn.inputs is None


def test_non_scalar_backward_needs_grad_argument():
    x = ms.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="one-element"):
        (x * 2).backward()
    (x * 2).backward(ms.tensor([1.0, 0.5]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 1.0])


def test_backward_on_tensor_without_graph_explains():
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        ms.tensor([1.0]).sum().backward()


def test_thousand_op_chain_does_not_hit_recursion_limit():
    x = ms.tensor(1.0, requires_grad=True)
    y = x
    n = max(3000, sys.getrecursionlimit() + 100)
    for _ in range(n):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_gradients_keep_the_dtype_of_their_tensor():
    for dtype in (np.float32, np.float64):
        x = ms.tensor(np.ones(3, dtype=dtype), requires_grad=True)
        (x * 2.0).exp().sum().backward()
        assert x.grad.dtype == dtype


def test_detach_cuts_the_graph():
    x = ms.tensor([1.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.creator is None


def test_int_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="floating point"):
        ms.tensor([1, 2], requires_grad=True)


def test_comparisons_give_boolean_tensors():
    x = ms.tensor([1.0, 2.0, 3.0])
    assert (x > 1.5).numpy().tolist() == [False, True, True]
    assert (x == ms.tensor([1.0, 0.0, 3.0])).numpy().sum() == 2


def test_user_function_as_in_the_contract():
    class Square(ms.Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, gy):
            (x,) = self.saved
            return 2 * x * gy

    x = ms.tensor([3.0, -1.0], requires_grad=True)
    y = Square()(x)
    assert isinstance(y, ms.Tensor)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, -2.0])
    assert ms.gradcheck(lambda t: Square()(t), [ms.tensor(np.random.randn(4), requires_grad=True)])


def test_user_function_broadcast_gradient_is_summed_back_by_the_engine():
    class AddRow(ms.Function):
        def forward(self, x, b):
            return x + b

        def backward(self, gy):
            return gy, gy  # gy has x's shape; the engine sums it to b's

    x = ms.tensor(np.ones((3, 2)), requires_grad=True)
    b = ms.tensor(np.ones(2), requires_grad=True)
    AddRow()(x, b).sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), [3.0, 3.0])


def test_to_cpu_is_a_no_op_and_bad_device_names_teach():
    x = ms.tensor([1.0])
    assert x.to("cpu") is x
    with pytest.raises(ms.backend.DeviceError, match="expected 'cpu', 'cuda'"):
        x.to("gpu")


def test_cuda_without_gpu_says_how_to_get_one():
    if ms.backend.gpu_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ms.backend.DeviceError, match="cuda"):
        ms.tensor([1.0], device="cuda")


def test_tensor_moves_to_device_and_back(device):
    x = ms.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(device)
    assert y.device.startswith(device)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    assert x.grad.device == "cpu"


def test_module_import_needs_no_cupy_torch_matplotlib_or_tqdm():
    """`import minise` stays light: the heavy libraries load only when a feature needs them.

    (How long the import takes is a speed figure, which belongs to benchmarks, not to a unit test
    that a loaded CI machine could fail: this checks the cause of a slow import instead.)
    """
    import subprocess

    heavy = ("cupy", "torch", "matplotlib", "tqdm", "safetensors")
    code = f"import sys, minise; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"import minise also imported {out.stdout.strip()}"
