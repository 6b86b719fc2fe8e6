"""The PyTorch spellings a learner types in the first hour, with PyTorch's meaning.

Oracle: PyTorch itself (values, shapes, dtypes, indices, gradients, error types), the numerical
gradient (ms.gradcheck in float64) for the new ops, and hand-written expectations.
"""

import numpy as np
import pytest
from helpers import assert_matches_torch, gradcheck_inputs, torch_or_skip

import minise as ms
import minise.functional as F
from minise import data, nn


def _t():
    return torch_or_skip()


# --- creating tensors --------------------------------------------------------------------------------
def test_creation_functions_have_pytorchs_shapes_and_dtypes():
    torch = _t()
    cases = [
        (ms.zeros(2, 3), torch.zeros(2, 3)), (ms.ones((2, 3)), torch.ones((2, 3))),
        (ms.zeros(4, dtype=ms.int64), torch.zeros(4, dtype=torch.int64)),
        (ms.full((2, 2), 7), torch.full((2, 2), 7)), (ms.full((2,), 0.5), torch.full((2,), 0.5)),
        (ms.arange(5), torch.arange(5)), (ms.arange(1, 7, 2), torch.arange(1, 7, 2)),
        (ms.arange(0.0, 1.0, 0.25), torch.arange(0.0, 1.0, 0.25)),
        (ms.linspace(0, 1, 5), torch.linspace(0, 1, 5)), (ms.eye(3), torch.eye(3)),
        (ms.zeros_like(ms.ones(2, 2, dtype=ms.float64)), torch.zeros_like(torch.ones(2, 2, dtype=torch.float64))),
    ]
    for got, expected in cases:
        assert got.shape == tuple(expected.shape)
        assert str(got.dtype) == str(expected.dtype).replace("torch.", "")
        np.testing.assert_allclose(got.numpy(), expected.numpy())


def test_random_tensors_follow_manual_seed_and_default_to_float32():
    ms.manual_seed(3)
    a = ms.randn(2, 3)
    ms.manual_seed(3)
    b = ms.randn((2, 3))
    assert a.dtype == ms.float32 and a.shape == (2, 3)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    u = ms.rand(1000)
    assert 0 <= u.numpy().min() and u.numpy().max() < 1
    r = ms.randint(0, 10, (50,))
    assert r.dtype == ms.int64 and r.numpy().min() >= 0 and r.numpy().max() < 10
    assert ms.randn(2, requires_grad=True).requires_grad
    with pytest.raises(TypeError, match="floating"):
        ms.randn(2, dtype=ms.int64)
    with pytest.raises(TypeError, match="size"):
        ms.zeros(-1)


def test_from_numpy_shares_memory_and_keeps_the_dtype():
    a = np.zeros(3)
    t = ms.from_numpy(a)
    a[1] = 5
    assert t.dtype == ms.float64 and t.numpy()[1] == 5
    with pytest.raises(TypeError, match="numpy.ndarray"):
        ms.from_numpy([1, 2])


def test_cat_stack_and_friends_live_at_the_top_level():
    a, b = ms.ones(2, 3), ms.zeros(2, 3)
    assert ms.cat([a, b], dim=1).shape == (2, 6) and ms.cat([a, b]).shape == (4, 3)
    assert ms.stack([a, b], dim=2).shape == (2, 3, 2)
    assert ms.flatten(ms.ones(2, 3, 4), 1).shape == (2, 12)
    assert ms.device("cuda:0" if ms.cuda.is_available() else "cpu") in ("cpu", "cuda:0")


# --- Tensor methods ------------------------------------------------------------------------------------
def test_size_is_pytorchs_shape_and_numel_the_count():
    x = ms.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and x.size(0) == 2 and x.size(-1) == 4 and x.numel() == 24 and x.dim() == 3
    with pytest.raises(IndexError, match=r"expected to be in range of \[-3, 2\], but got 3"):
        x.size(3)


@pytest.mark.parametrize("shape,dim", [((4, 5), 1), ((4, 5), 0), ((4, 5), -1), ((6,), 0), ((2, 3, 4), 1), ((), 0)])
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_with_a_dim_return_values_and_indices_as_pytorch(shape, dim, op):
    torch = _t()
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x, xt = ms.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    values, indices = getattr(x, op)(dim)
    expected = getattr(xt, op)(dim)
    np.testing.assert_array_equal(values.numpy(), expected.values.detach().numpy())
    np.testing.assert_array_equal(indices.numpy(), expected.indices.numpy())
    assert indices.dtype == ms.int64 and values.shape == tuple(expected.values.shape)
    gy = np.random.default_rng(1).standard_normal(values.shape).astype(np.float32)
    values.backward(ms.tensor(gy))
    expected.values.backward(torch.tensor(gy))
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())  # all of it to the one index
    kept = getattr(x, op)(dim=dim, keepdim=True)
    assert kept.values.shape == tuple(getattr(xt, op)(dim=dim, keepdim=True).values.shape)


def test_numpy_spelling_keeps_numpys_values_and_no_dim_gives_the_0d_maximum():
    x = ms.tensor([[1.0, 5.0], [3.0, 2.0]])
    np.testing.assert_array_equal(x.max(axis=1).numpy(), [5.0, 3.0])
    np.testing.assert_array_equal(x.min(axis=(0, 1), keepdims=True).numpy(), [[1.0]])
    assert x.max().shape == () and x.max().item() == 5.0
    np.testing.assert_array_equal(x.max(ms.tensor([[2.0, 2.0], [2.0, 2.0]])).numpy(), [[2, 5], [3, 2]])
    _, pred = ms.max(x, 1)  # torch.max(outputs, 1)
    np.testing.assert_array_equal(pred.numpy(), [1, 0])
    with pytest.raises(TypeError, match="axis"):
        x.max(dim=(0, 1))
    with pytest.raises(IndexError, match="non-zero size"):
        ms.zeros(0, 3).max(0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.max(2)


def test_argmax_argmin_match_pytorch():
    torch = _t()
    a = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    for dim in (None, 0, 1, -1):
        np.testing.assert_array_equal(ms.tensor(a).argmax(dim).numpy(), torch.tensor(a).argmax(dim).numpy())
        np.testing.assert_array_equal(ms.tensor(a).argmin(dim=dim).numpy(), torch.tensor(a).argmin(dim=dim).numpy())


@pytest.mark.parametrize("name,fn_ms,fn_torch,shape", [
    ("unsqueeze_front", lambda a: a.unsqueeze(0), lambda a: a.unsqueeze(0), (3, 4)),
    ("unsqueeze_end", lambda a: a.unsqueeze(-1), lambda a: a.unsqueeze(-1), (3, 4)),
    ("unsqueeze_0d", lambda a: a.unsqueeze(0), lambda a: a.unsqueeze(0), ()),
    ("squeeze_all", lambda a: a.squeeze(), lambda a: a.squeeze(), (1, 3, 1, 2)),
    ("squeeze_dim", lambda a: a.squeeze(2), lambda a: a.squeeze(2), (1, 3, 1, 2)),
    ("squeeze_dim_not_1", lambda a: a.squeeze(1), lambda a: a.squeeze(1), (1, 3, 1, 2)),
    ("clone", lambda a: a.clone() * 2, lambda a: a.clone() * 2, (2, 3)),
    ("view", lambda a: a.view(-1, 2), lambda a: a.view(-1, 2), (3, 4)),
    ("view_after_contiguous", lambda a: a.T.contiguous().view(-1), lambda a: a.T.contiguous().view(-1), (3, 4)),
    ("norm", lambda a: a.norm(), lambda a: a.norm(), (3, 4)),
    ("norm_dim", lambda a: a.norm(dim=1, keepdim=True), lambda a: a.norm(dim=1, keepdim=True), (3, 4)),
    ("norm_p1", lambda a: a.norm(p=1, dim=0), lambda a: a.norm(p=1, dim=0), (3, 4)),
    ("norm_p3", lambda a: a.norm(p=3), lambda a: a.norm(p=3), (5,)),
    ("norm_inf", lambda a: a.norm(p=float("inf"), dim=1), lambda a: a.norm(p=float("inf"), dim=1), (3, 4)),
    # awkward inputs: empty, 0-d, 1-D, non-contiguous (transposed)
    ("unsqueeze_empty", lambda a: a.unsqueeze(1), lambda a: a.unsqueeze(1), (0, 3)),
    ("squeeze_empty", lambda a: a.squeeze(), lambda a: a.squeeze(), (0, 1, 3)),
    ("view_empty", lambda a: a.view(3, -1), lambda a: a.view(3, -1), (0, 3)),
    ("norm_empty", lambda a: a.norm(), lambda a: a.norm(), (0, 3)),
    ("norm_0d", lambda a: a.norm(), lambda a: a.norm(), ()),
    ("squeeze_0d", lambda a: a.squeeze(), lambda a: a.squeeze(), ()),
    ("clone_1d", lambda a: a.clone(), lambda a: a.clone(), (5,)),
    ("unsqueeze_transposed", lambda a: a.T.unsqueeze(1), lambda a: a.T.unsqueeze(1), (3, 4)),
    ("clone_transposed", lambda a: a.T.clone(), lambda a: a.T.clone(), (3, 4)),
    ("max_dim_transposed", lambda a: a.T.max(1).values, lambda a: a.T.max(1).values, (3, 4)),
    ("norm_dim_transposed", lambda a: a.T.norm(dim=0), lambda a: a.T.norm(dim=0), (3, 4)),
    ("squeeze_dims_tuple", lambda a: a.squeeze((0, 2)), lambda a: a.squeeze((0, 2)), (1, 3, 1, 1)),
])
def test_shape_methods_match_pytorch(name, fn_ms, fn_torch, shape):
    assert_matches_torch(fn_ms, fn_torch, [shape])


@pytest.mark.parametrize("fn,shape", [
    (lambda a: a.unsqueeze(1), (3, 2)), (lambda a: a.squeeze(), (3, 1, 2)), (lambda a: a.clone(), (2, 3)),
    (lambda a: a.max(1).values, (3, 4)), (lambda a: a.min(0).values, (3, 4)), (lambda a: a.norm(), (3, 4)),
    (lambda a: a.norm(p=3, dim=0), (3, 4)), (lambda a: a.T.contiguous().view(6), (2, 3)),
])
def test_new_ops_pass_gradcheck(fn, shape):
    assert ms.gradcheck(fn, gradcheck_inputs([shape]))


def test_norm_gradient_at_zero_is_zero_as_pytorch():
    x = ms.zeros(3, requires_grad=True)
    x.norm().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0])


def test_view_of_a_transposed_tensor_raises_like_pytorch_while_reshape_copies():
    x = ms.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    with pytest.raises(RuntimeError, match="Use .reshape"):
        x.T.view(-1)
    np.testing.assert_array_equal(x.T.reshape(-1).numpy(), [0, 3, 1, 4, 2, 5])
    v = x.view(3, 2)
    x.data[0, 0] = 9  # a view shares memory, as in PyTorch
    assert v.numpy()[0, 0] == 9


def test_clone_is_new_memory_and_keeps_the_graph():
    x = ms.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone()
    y.data[0] = 7
    assert x.numpy()[0] == 1 and y.creator is not None


def test_repr_indents_continuation_rows_as_pytorch():
    text = repr(ms.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert text == "tensor([[1., 2.],\n        [3., 4.]])"
    assert repr(ms.arange(3)) == "tensor([0, 1, 2])"  # int64 is not printed, as in PyTorch


# --- nn layers and losses ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,make_ms,make_torch,labels", [
    ("cross_entropy", lambda: nn.CrossEntropyLoss(), lambda t: t.nn.CrossEntropyLoss(), True),
    ("cross_entropy_sum_smooth", lambda: nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1),
     lambda t: t.nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1), True),
    ("nll", lambda: nn.NLLLoss(), lambda t: t.nn.NLLLoss(), True),
    ("mse", lambda: nn.MSELoss(), lambda t: t.nn.MSELoss(), False),
    ("mse_none", lambda: nn.MSELoss(reduction="none"), lambda t: t.nn.MSELoss(reduction="none"), False),
    ("l1", lambda: nn.L1Loss(), lambda t: t.nn.L1Loss(), False),
    ("bce_logits", lambda: nn.BCEWithLogitsLoss(), lambda t: t.nn.BCEWithLogitsLoss(), False),
])
def test_loss_modules_match_pytorch(name, make_ms, make_torch, labels):
    torch = _t()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    if name == "nll":
        x = x - np.log(np.exp(x).sum(1, keepdims=True))
    if labels:
        target = rng.integers(0, 4, 5)
        assert_matches_torch(lambda a: make_ms()(a, target), lambda a: make_torch(torch)(a, torch.tensor(target)),
                             inputs=[x])
    else:
        target = rng.uniform(0, 1, (5, 4)).astype(np.float32)
        assert_matches_torch(lambda a, b: make_ms()(a, b), lambda a, b: make_torch(torch)(a, b), inputs=[x, target])


def test_mse_loss_refuses_shapes_that_would_broadcast():
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\)"):
        nn.MSELoss()(ms.zeros(4, 1), ms.zeros(4))


@pytest.mark.parametrize("size,shape", [(1, (2, 3, 6, 4)), ((2, 2), (2, 3, 6, 4)), ((3, None), (1, 2, 6, 4))])
def test_adaptive_pools_match_pytorch(size, shape):
    torch = _t()
    assert_matches_torch(nn.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size), [shape])
    assert_matches_torch(nn.AdaptiveMaxPool2d(size), torch.nn.AdaptiveMaxPool2d(size), [shape])


@pytest.mark.parametrize("size,shape", [(5, (2, 3, 7, 6)), ((3, 4), (1, 2, 10, 7)), ((7, 1), (1, 1, 5, 5))])
def test_adaptive_pools_with_sizes_that_do_not_divide_use_pytorchs_overlapping_windows(size, shape):
    torch = _t()
    assert_matches_torch(nn.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size), [shape])
    assert_matches_torch(nn.AdaptiveMaxPool2d(size), torch.nn.AdaptiveMaxPool2d(size), [shape])
    assert ms.gradcheck(lambda a: F.adaptive_avg_pool2d(a, size), gradcheck_inputs([shape]))
    assert ms.gradcheck(lambda a: F.adaptive_max_pool2d(a, size), gradcheck_inputs([shape]))


def test_softmax_modules_match_pytorch():
    torch = _t()
    assert_matches_torch(nn.Softmax(dim=1), torch.nn.Softmax(dim=1), [(3, 5)])
    assert_matches_torch(nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1), [(3, 5)])


def test_a_float64_batch_into_a_float32_model_raises_naming_the_layer():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 3))  # float64, as NumPy makes it
    with pytest.raises(RuntimeError, match=r"Conv2d '0': the input is float64 but the layer's parameters are "
                                           r"float32"):
        model(ms.tensor(x))
    assert model(ms.tensor(x).float()).dtype == ms.float32
    model.double()
    assert model(ms.tensor(x)).dtype == ms.float64
    with pytest.raises(RuntimeError, match="Linear: the input is float32"):
        nn.Linear(3, 2).double()(ms.zeros(1, 3))
    with pytest.raises(RuntimeError, match="BatchNorm2d"):
        nn.BatchNorm2d(2)(ms.zeros(2, 2, 1, 1, dtype=ms.float64))


# --- data and files ------------------------------------------------------------------------------------
def test_tensor_dataset_indexes_to_tuples_and_batches_in_the_dataloader():
    x, y = ms.arange(20, dtype=ms.float32).reshape(10, 2), ms.arange(10)
    ds = data.TensorDataset(x, y)
    assert len(ds) == 10
    row, label = ds[3]
    np.testing.assert_array_equal(row.numpy(), [6.0, 7.0])
    assert label.item() == 3 and label.shape == ()
    batches = list(data.DataLoader(ds, batch_size=4))
    assert [b[1].numpy().tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].dtype == ms.float32 and batches[0][1].dtype == ms.int64
    shuffled = np.concatenate([b[1].numpy() for b in data.DataLoader(ds, batch_size=3, shuffle=True, seed=0)])
    assert sorted(shuffled.tolist()) == list(range(10)) and shuffled.tolist() != list(range(10))
    with pytest.raises(ValueError, match="first size"):
        data.TensorDataset(ms.zeros(3), ms.zeros(4))


def test_load_accepts_map_location_and_weights_only(tmp_path):
    ms.save({"w": ms.ones(2)}, tmp_path / "a.ckpt")
    for where in (None, "cpu"):
        loaded = ms.load(tmp_path / "a.ckpt", map_location=where, weights_only=True)
        np.testing.assert_array_equal(loaded["w"].numpy(), [1, 1])
    with pytest.raises(TypeError, match="map_location"):
        ms.load(tmp_path / "a.ckpt", map_location={"cuda:0": "cpu"})
    with pytest.raises(ms.backend.DeviceError):
        ms.load(tmp_path / "a.ckpt", map_location="tpu")


def test_safetensors_keep_dtypes_and_check_the_hash(tmp_path):
    pytest.importorskip("safetensors")
    state = {"w": ms.randn(2, 3), "n": ms.tensor(np.array(5, dtype=np.int64)), "d": ms.zeros(2, dtype=ms.float64)}
    ms.save_safetensors(state, tmp_path / "s.safetensors")
    back = ms.load_safetensors(tmp_path / "s.safetensors")
    for key, value in state.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape
        np.testing.assert_array_equal(back[key].numpy(), value.numpy())
    digest = ms.models.sha256sum(tmp_path / "s.safetensors")
    assert ms.load_safetensors(tmp_path / "s.safetensors", sha256=digest[:8].upper())["n"].item() == 5
    with pytest.raises(ms.models.WeightsError, match=digest):
        ms.load_safetensors(tmp_path / "s.safetensors", sha256="deadbeef")
    with pytest.raises(TypeError, match="'x'"):
        ms.save_safetensors({"x": [1, 2]}, tmp_path / "bad.safetensors")


def test_nn_functional_is_there_after_import_minise_as_torch_nn_functional():
    # `ms.nn.functional.relu` was an AttributeError unless `import minise.nn.functional` came first
    import subprocess
    import sys

    code = "import minise as ms; print(ms.nn.functional.relu(ms.tensor([-1.0, 2.0])).tolist())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[0.0, 2.0]", out.stderr
