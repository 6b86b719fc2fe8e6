"""Core ops: float64 gradcheck and PyTorch parity (forward and backward), one table.

Each case: (name, minise fn, torch fn, input shapes, value range). Shapes cover
broadcasting, odd sizes and batching. Oracles: the numerical gradient and PyTorch.
"""

import numpy as np
import pytest
from helpers import assert_matches_torch, gradcheck_inputs, torch_or_skip

import minise as ms
import minise.functional as F


def _t():
    import torch

    return torch


POS = (0.5, 3.0)    # for log, sqrt, pow bases
ANY = (-2.0, 2.0)

CASES = [
    ("add", lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (3, 4)], ANY),
    ("add_broadcast_row", lambda a, b: a + b, lambda a, b: a + b, [(5, 3), (3,)], ANY),
    ("add_broadcast_both", lambda a, b: a + b, lambda a, b: a + b, [(2, 1, 3), (4, 1)], ANY),
    ("sub_broadcast", lambda a, b: a - b, lambda a, b: a - b, [(3, 1), (1, 5)], ANY),
    ("mul_broadcast", lambda a, b: a * b, lambda a, b: a * b, [(2, 3, 5), (3, 1)], ANY),
    ("div", lambda a, b: a / b, lambda a, b: a / b, [(4, 3), (4, 3)], POS),
    ("div_broadcast", lambda a, b: a / b, lambda a, b: a / b, [(2, 3, 3), (1, 3)], POS),
    ("pow_tensor_tensor", lambda a, b: a ** b, lambda a, b: a ** b, [(3, 4), (4,)], POS),
    ("pow_scalar_exponent", lambda a: a ** 3, lambda a: a ** 3, [(7,)], ANY),
    ("rpow_scalar_base", lambda a: 2.0 ** a, lambda a: 2.0 ** a, [(2, 3)], ANY),
    ("neg", lambda a: -a, lambda a: -a, [(3, 2)], ANY),
    ("exp", F.exp, lambda a: a.exp(), [(2, 5)], ANY),
    ("log", F.log, lambda a: a.log(), [(5, 3)], POS),
    ("sqrt", F.sqrt, lambda a: a.sqrt(), [(4, 1, 3)], POS),
    ("abs", F.abs, lambda a: a.abs(), [(3, 5)], ANY),
    ("maximum", F.maximum, lambda a, b: _t().maximum(a, b), [(3, 4), (4,)], ANY),
    ("minimum", F.minimum, lambda a, b: _t().minimum(a, b), [(2, 3, 1), (3, 4)], ANY),
    ("clip", lambda a: F.clip(a, -0.5, 1.0), lambda a: a.clamp(-0.5, 1.0), [(5, 5)], ANY),
    ("matmul_2d", lambda a, b: a @ b, lambda a, b: a @ b, [(3, 4), (4, 5)], ANY),
    ("matmul_batched", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3, 4), (2, 4, 5)], ANY),
    ("matmul_broadcast_batch", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 1, 3, 4), (5, 4, 2)], ANY),
    ("matmul_vector", lambda a, b: a @ b, lambda a, b: a @ b, [(3, 4), (4,)], ANY),
    ("vector_matmul", lambda a, b: a @ b, lambda a, b: a @ b, [(4,), (2, 4, 3)], ANY),
    ("sum_all", lambda a: a.sum(), lambda a: a.sum(), [(3, 4)], ANY),
    ("sum_axis", lambda a: a.sum(axis=1), lambda a: a.sum(dim=1), [(3, 4, 5)], ANY),
    ("sum_axes_keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True),
     lambda a: a.sum(dim=(0, 2), keepdim=True), [(3, 4, 5)], ANY),
    ("mean_negative_axis", lambda a: a.mean(dim=-1), lambda a: a.mean(dim=-1), [(3, 7)], ANY),
    ("mean_all", lambda a: a.mean(), lambda a: a.mean(), [(2, 3, 4)], ANY),
    ("max_axis", lambda a: a.max(axis=1), lambda a: a.amax(dim=1), [(4, 5)], ANY),
    ("max_all", lambda a: a.max(), lambda a: a.max(), [(3, 5)], ANY),
    ("min_axis_keepdims", lambda a: a.min(axis=0, keepdims=True),
     lambda a: a.amin(dim=0, keepdim=True), [(4, 3)], ANY),
    ("reshape", lambda a: a.reshape(4, 6), lambda a: a.reshape(4, 6), [(2, 3, 4)], ANY),
    ("reshape_tuple", lambda a: a.reshape((3, -1)), lambda a: a.reshape(3, -1), [(3, 2, 2)], ANY),
    ("transpose", lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2), [(2, 3, 4)], ANY),
    ("permute", lambda a: a.permute(2, 0, 1), lambda a: a.permute(2, 0, 1), [(2, 3, 4)], ANY),
    ("T", lambda a: a.T, lambda a: a.T, [(3, 5)], ANY),
    ("flatten", lambda a: a.flatten(1), lambda a: a.flatten(1), [(2, 3, 4, 5)], ANY),
    ("index_int", lambda a: a[1], lambda a: a[1], [(3, 4)], ANY),
    ("index_slices", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [(4, 5)], ANY),
    ("index_int_array_repeats", lambda a: a[np.array([0, 2, 0])], lambda a: a[[0, 2, 0]], [(3, 4)], ANY),
    ("index_mixed", lambda a: a[np.array([1, 1]), 2:], lambda a: a[[1, 1], 2:], [(3, 4)], ANY),
    ("concatenate", lambda a, b: F.concatenate([a, b], axis=1),
     lambda a, b: _t().cat([a, b], dim=1), [(2, 3), (2, 5)], ANY),
    ("stack", lambda a, b: F.stack([a, b], axis=1), lambda a, b: _t().stack([a, b], dim=1), [(2, 3), (2, 3)], ANY),
    ("pad", lambda a: F.pad(a, [(0, 0), (1, 2), (2, 0)]),
     lambda a: _t().nn.functional.pad(a, (2, 0, 1, 2)), [(2, 3, 4)], ANY),
]


@pytest.mark.parametrize("name,fn,fn_torch,shapes,value_range", CASES, ids=[c[0] for c in CASES])
def test_op_passes_float64_gradcheck(name, fn, fn_torch, shapes, value_range, device):
    inputs = gradcheck_inputs(shapes, low=value_range[0], high=value_range[1], device=device)
    assert ms.gradcheck(fn, inputs)


@pytest.mark.parametrize("name,fn,fn_torch,shapes,value_range", CASES, ids=[c[0] for c in CASES])
def test_op_matches_torch_forward_and_backward(name, fn, fn_torch, shapes, value_range, device):
    assert_matches_torch(fn, fn_torch, shapes, low=value_range[0], high=value_range[1], device=device)


def test_max_ties_share_the_gradient_like_torch_amax():
    torch = torch_or_skip()
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], dtype=np.float32)
    assert_matches_torch(lambda x: x.max(axis=1), lambda x: x.amax(dim=1), inputs=[a])
    x = ms.tensor(a, requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [0, 0, 0]])
    del torch


def test_clip_boundary_values_pass_the_gradient_like_torch_clamp():
    a = np.array([-1.0, -0.5, 0.0, 1.0, 2.0], dtype=np.float32)
    assert_matches_torch(lambda x: F.clip(x, -0.5, 1.0), lambda x: x.clamp(-0.5, 1.0), inputs=[a])


def test_maximum_ties_split_the_gradient_like_torch():
    a = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    b = np.array([1.0, 5.0, 0.0], dtype=np.float32)
    assert_matches_torch(F.maximum, lambda x, y: _t().maximum(x, y), inputs=[a, b])


def test_boolean_mask_indexing_scatters_gradient_back():
    a = np.array([[1.0, -2.0], [-3.0, 4.0]], dtype=np.float32)
    x = ms.tensor(a, requires_grad=True)
    x[a > 0].sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[1, 0], [0, 1]])


def test_reshape_with_wrong_size_names_the_shapes():
    with pytest.raises(RuntimeError, match=r"reshape: cannot view a tensor of shape \(2, 3\).*\(4, 2\)"):
        ms.tensor(np.zeros((2, 3))).reshape(4, 2)


def test_permute_with_bad_dims_says_so():
    with pytest.raises(RuntimeError, match="permute: duplicate dims"):  # as PyTorch
        ms.tensor(np.zeros((2, 3))).permute(0, 0)


def test_reduction_axis_out_of_range_says_so():
    # PyTorch: IndexError "Dimension out of range (expected to be in range of [-2, 1], but got 3)"
    with pytest.raises(IndexError, match=r"range of \[-2, 1\], but got 3"):
        ms.tensor(np.zeros((2, 3))).sum(axis=3)


def test_reductions_accept_torch_style_dim_and_keepdim():
    x = ms.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_allclose(x.sum(dim=0, keepdim=True).numpy(), [[3.0, 5.0, 7.0]])
    values, indices = x.max(dim=1)  # PyTorch's spelling: PyTorch's (values, indices)
    np.testing.assert_allclose(values.numpy(), [2.0, 5.0])
    np.testing.assert_array_equal(indices.numpy(), [2, 2])
    np.testing.assert_allclose(x.max(axis=1).numpy(), [2.0, 5.0])  # NumPy's spelling: the values
