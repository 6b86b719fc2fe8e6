"""conv2d, im2col and col2im.

Oracles: the numerical gradient (float64 gradcheck), PyTorch (float32 forward
and every gradient), the plain-loop reference in minise.functional.reference,
and closed forms for im2col/col2im (the adjoint identity, window counts).
"""

import numpy as np
import pytest
from helpers import assert_matches_torch, gradcheck_inputs, random_inputs, to_numpy, torch_or_skip

import minise as ms
import minise.functional as F
from minise.functional import conv, reference
from minise.functional.conv import Conv2d

# (x shape, weight shape, stride, padding, bias): stride 1/2/3 and mixed, padding 0/1/2 and
# mixed, kernels 1/3/5 and non-square, odd non-square images, batch 1, 2 and 3.
CONFIGS = [
    ((1, 3, 7, 9), (4, 3, 3, 3), 1, 1, True),
    ((3, 2, 8, 6), (5, 2, 3, 3), 2, 1, False),
    ((2, 3, 9, 7), (4, 3, 5, 5), 1, 2, True),
    ((3, 4, 5, 6), (6, 4, 1, 1), 1, 0, True),
    ((2, 2, 11, 8), (3, 2, 3, 5), (2, 1), (1, 2), True),
    ((3, 1, 6, 7), (2, 1, 5, 3), (1, 2), (0, 1), False),
    ((2, 3, 8, 8), (4, 3, 2, 2), 3, 0, True),          # stride > kernel: some pixels unused
    ((1, 2, 4, 5), (3, 2, 4, 5), 1, 0, False),         # kernel == image: one output pixel
]
IDS = [f"x{c[0]}-w{c[1]}-s{c[2]}-p{c[3]}-{'bias' if c[4] else 'nobias'}".replace(" ", "") for c in CONFIGS]


def _shapes(x_shape, w_shape, bias):
    return [x_shape, w_shape] + ([(w_shape[0],)] if bias else [])


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, bias", CONFIGS, ids=IDS)
def test_conv2d_matches_torch_forward_and_every_gradient(device, x_shape, w_shape, stride, padding, bias):
    torch = torch_or_skip()
    assert_matches_torch(
        lambda x, w, b=None: F.conv2d(x, w, b, stride=stride, padding=padding),
        lambda x, w, b=None: torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding),
        _shapes(x_shape, w_shape, bias), device=device, atol=1e-4, rtol=1e-4,
    )


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, bias", CONFIGS, ids=IDS)
def test_conv2d_passes_float64_gradcheck(device, x_shape, w_shape, stride, padding, bias):
    inputs = gradcheck_inputs(_shapes(x_shape, w_shape, bias), device=device)
    assert ms.gradcheck(lambda *t: F.conv2d(*t, stride=stride, padding=padding), inputs)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, bias", CONFIGS, ids=IDS)
def test_conv2d_agrees_with_the_plain_loop_reference(device, x_shape, w_shape, stride, padding, bias):
    x, w, b, gy_seed = *random_inputs([x_shape, w_shape, (w_shape[0],)], dtype=np.float64), 1
    b = b if bias else None
    y_ref = reference.conv2d_reference(x, w, b, stride, padding)
    gy = np.random.default_rng(gy_seed).standard_normal(y_ref.shape)
    dx_ref, dw_ref, db_ref = reference.conv2d_reference_backward(x, w, gy, stride, padding)

    xt, wt = ms.tensor(x, requires_grad=True, device=device), ms.tensor(w, requires_grad=True, device=device)
    bt = None if b is None else ms.tensor(b, requires_grad=True, device=device)
    y = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    y.backward(ms.tensor(gy, device=device))
    np.testing.assert_allclose(y.numpy(), y_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(xt.grad.numpy(), dx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(wt.grad.numpy(), dw_ref, rtol=1e-10, atol=1e-10)
    if bt is not None:
        np.testing.assert_allclose(bt.grad.numpy(), db_ref, rtol=1e-10, atol=1e-10)


def test_conv2d_of_images_skips_the_input_gradient_and_still_trains_the_weight(device):
    torch = torch_or_skip()
    x, w = random_inputs([(2, 3, 6, 5), (4, 3, 3, 3)])
    xt = ms.tensor(x, device=device)                       # the images: no gradient wanted
    wt = ms.tensor(w, requires_grad=True, device=device)
    F.conv2d(xt, wt, padding=1).sum().backward()
    w_torch = torch.tensor(w, requires_grad=True)
    torch.nn.functional.conv2d(torch.tensor(x), w_torch, padding=1).sum().backward()
    assert xt.grad is None
    np.testing.assert_allclose(wt.grad.numpy(), w_torch.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_conv2d_with_a_frozen_weight_still_gives_the_input_gradient(device):
    x, w = random_inputs([(2, 2, 5, 5), (3, 2, 3, 3)], dtype=np.float64)
    xt, wt = ms.tensor(x, requires_grad=True, device=device), ms.tensor(w, device=device)
    F.conv2d(xt, wt, stride=2, padding=1).sum().backward()
    gy = np.ones((2, 3, 3, 3))
    dx_ref, _, _ = reference.conv2d_reference_backward(x, w, gy, stride=2, padding=1)
    assert wt.grad is None
    np.testing.assert_allclose(xt.grad.numpy(), dx_ref, rtol=1e-10, atol=1e-10)


def test_conv2d_backward_twice_with_retain_graph_doubles_every_gradient(device):
    x, w, b = random_inputs([(2, 3, 6, 6), (4, 3, 3, 3), (4,)], dtype=np.float64)
    xt, wt, bt = (ms.tensor(a, requires_grad=True, device=device) for a in (x, w, b))
    y = F.conv2d(xt, wt, bt, padding=1)
    y.sum().backward(retain_graph=True)
    first = [t.grad.numpy().copy() for t in (xt, wt, bt)]
    y.sum().backward()
    for t, g in zip((xt, wt, bt), first):
        np.testing.assert_allclose(t.grad.numpy(), 2 * g, rtol=1e-12)


@pytest.mark.parametrize("x_shape, w_shape", [((1, 3, 4, 4), (2, 3, 1, 1)), ((1, 2, 3, 3), (2, 2, 3, 3))])
def test_conv2d_backward_leaves_its_inputs_unchanged(device, x_shape, w_shape):
    # 1x1 kernels on one image, or a kernel as large as the image: cases where a lazy im2col
    # could hand back a view of x, which backward then overwrites with dcol.
    x, w = random_inputs([x_shape, w_shape], dtype=np.float64)
    xt, wt = ms.tensor(x.copy(), requires_grad=True, device=device), ms.tensor(w.copy(), requires_grad=True,
                                                                              device=device)
    F.conv2d(xt, wt).sum().backward()
    np.testing.assert_array_equal(xt.numpy(), x)
    np.testing.assert_array_equal(wt.numpy(), w)


@pytest.mark.parametrize("x_shape, w_shape, padding", [
    ((2, 4, 7, 5), (4, 4, 3, 3), 1),            # O == C
    ((2, 3, 6, 6), (5, 3, 3, 3), 0),            # O != C
    ((1, 2, 6, 7), (2, 2, 5, 3), (2, 0)),
    ((2, 3, 4, 5), (3, 3, 1, 1), 0),
])
def test_conv2d_stride_1_input_gradient_by_convolution_equals_the_col2im_path(device, x_shape, w_shape, padding):
    x, w, gy_seed = *random_inputs([x_shape, w_shape], dtype=np.float64), 2
    x, w = ms.tensor(x, device=device).data, ms.tensor(w, device=device).data
    grads = []
    for path in ("convolution", "col2im"):
        op = Conv2d(stride=1, padding=padding)
        op.needs_input_grad = (True, True)
        y = op.forward(x, w)
        gy = ms.tensor(np.random.default_rng(gy_seed).standard_normal(y.shape), device=device).data
        if path == "convolution":    # (C, N*H*W) -> (N, C, H, W)
            gy_pad, gy_padding = op._gy_padded(gy, w)
            conv._fill_padded(gy_pad, gy, gy_padding)
            gy_windows = conv._windows(gy_pad, w.shape[2:], (1, 1), x.shape[2:])
            dx = op._grad_input_by_convolution(conv._turned(w), gy_windows, 0, x.shape[0])
            grads.append(dx.reshape(x.shape[1], x.shape[0], *x.shape[2:]).transpose(1, 0, 2, 3))
        else:                        # (N, C, H, W)
            gy_col = gy.transpose(1, 0, 2, 3).reshape(w.shape[0], -1)
            grads.append(op._grad_input_by_col2im(x.shape, w, gy_col, gy.shape[2:]))
    np.testing.assert_allclose(to_numpy(grads[0]), to_numpy(grads[1]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", [1, 3])   # 1: by convolution; 3 >= kernel: by col2im
def test_conv2d_stride_1_backward_twice_with_retain_graph_matches_the_reference(device, padding):
    x, w = random_inputs([(2, 3, 5, 5), (3, 3, 3, 3)], dtype=np.float64)
    gy = np.random.default_rng(3).standard_normal(reference.conv2d_reference(x, w, None, 1, padding).shape)
    dx_ref, dw_ref, _ = reference.conv2d_reference_backward(x, w, gy, 1, padding)
    xt, wt = ms.tensor(x, requires_grad=True, device=device), ms.tensor(w, requires_grad=True, device=device)
    y = F.conv2d(xt, wt, padding=padding)
    y.backward(ms.tensor(gy, device=device), retain_graph=True)
    y.backward(ms.tensor(gy, device=device))
    np.testing.assert_allclose(xt.grad.numpy(), 2 * dx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(wt.grad.numpy(), 2 * dw_ref, rtol=1e-10, atol=1e-10)


def test_conv2d_keeps_float32_and_float64(device):
    for dtype in (np.float32, np.float64):
        x, w = random_inputs([(1, 2, 5, 5), (3, 2, 3, 3)], dtype=dtype)
        xt, wt = ms.tensor(x, requires_grad=True, device=device), ms.tensor(w, requires_grad=True, device=device)
        y = F.conv2d(xt, wt, padding=1)
        y.sum().backward()
        assert y.dtype == dtype and xt.grad.dtype == dtype and wt.grad.dtype == dtype


# --- im2col / col2im ----------------------------------------------------------------
def test_im2col_rows_are_the_flattened_patches_of_the_padded_input(device):
    x = random_inputs([(2, 3, 5, 4)])[0]
    col = to_numpy(F.im2col(ms.tensor(x, device=device).data, (3, 2), stride=(2, 1), padding=1))
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    Ho, Wo = (5 + 2 - 3) // 2 + 1, (4 + 2 - 2) // 1 + 1
    assert col.shape == (3 * 3 * 2, 2 * Ho * Wo)
    expected = np.stack([x_pad[n, :, ho * 2:ho * 2 + 3, wo:wo + 2].reshape(-1)
                         for n in range(2) for ho in range(Ho) for wo in range(Wo)], axis=1)
    np.testing.assert_array_equal(col, expected)
    from_tensor = F.im2col(ms.tensor(x, device=device), (3, 2), stride=(2, 1), padding=1)   # Tensors unwrap
    np.testing.assert_array_equal(to_numpy(from_tensor), expected)


@pytest.mark.parametrize("x_shape, kernel, stride, padding", [
    ((2, 3, 7, 6), 3, 1, 1), ((1, 2, 9, 8), (3, 2), (2, 3), (1, 0)), ((3, 1, 5, 5), 5, 1, 2)])
def test_col2im_is_the_adjoint_of_im2col(device, x_shape, kernel, stride, padding):
    x = ms.tensor(random_inputs([x_shape], dtype=np.float64)[0], device=device).data
    col = F.im2col(x, kernel, stride, padding)
    c = ms.tensor(np.random.default_rng(3).standard_normal(col.shape), device=device).data
    lhs = float((col * c).sum())                                       # <im2col(x), c>
    rhs = float((x * F.col2im(c, x_shape, kernel, stride, padding)).sum())  # <x, col2im(c)>
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_col2im_of_ones_counts_the_windows_covering_each_pixel(device):
    x_shape = (1, 1, 4, 4)
    ones = ms.tensor(np.ones((9, 4)), device=device).data          # 3x3 kernel, 2x2 outputs
    counts = to_numpy(F.col2im(ones, x_shape, 3, stride=1, padding=0))[0, 0]
    expected = np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    np.testing.assert_array_equal(counts, expected)


# --- bad input ----------------------------------------------------------------------
BAD_CONV = [
    ("wrong input ndim", lambda: F.conv2d(ms.tensor(np.zeros((5, 5))), ms.tensor(np.zeros((2, 3, 3, 3)))),
     r"conv2d: expected a 4-D input \(N, C, H, W\), got shape \(5, 5\)"),  # (C, H, W) is fine, as PyTorch
    ("wrong weight ndim", lambda: F.conv2d(ms.tensor(np.zeros((1, 3, 5, 5))), ms.tensor(np.zeros((2, 3, 3)))),
     r"conv2d: expected a 4-D weight \(out_channels, in_channels, kh, kw\), got shape \(2, 3, 3\)"),
    ("channel mismatch", lambda: F.conv2d(ms.tensor(np.zeros((1, 4, 5, 5))), ms.tensor(np.zeros((2, 3, 3, 3)))),
     r"conv2d: input has 4 channels \(shape \(1, 4, 5, 5\)\) but weight \(2, 3, 3, 3\) expects 3"),
    ("kernel larger than padded input",
     lambda: F.conv2d(ms.tensor(np.zeros((1, 1, 3, 3))), ms.tensor(np.zeros((1, 1, 6, 6))), padding=1),
     r"conv2d: kernel size \(6, 6\) is larger than the padded input \(5, 5\)"),
    ("zero stride", lambda: F.conv2d(ms.tensor(np.zeros((1, 1, 5, 5))), ms.tensor(np.zeros((1, 1, 3, 3))), stride=0),
     r"conv2d: stride must be positive, got stride=\(0, 0\)"),
    ("negative padding",
     lambda: F.conv2d(ms.tensor(np.zeros((1, 1, 5, 5))), ms.tensor(np.zeros((1, 1, 3, 3))), padding=(1, -1)),
     r"conv2d: padding must be non-negative, got padding=\(1, -1\)"),
    ("bias of the wrong size",
     lambda: F.conv2d(ms.tensor(np.zeros((1, 1, 5, 5))), ms.tensor(np.zeros((2, 1, 3, 3))), ms.tensor(np.zeros(3))),
     r"conv2d: bias has shape \(3,\), expected \(2,\)"),
    ("col of the wrong shape", lambda: F.col2im(np.zeros((9, 5)), (1, 1, 4, 4), 3),
     r"col2im: col has shape \(9, 5\), expected \(9, 4\)"),
]


@pytest.mark.parametrize("call, message", [c[1:] for c in BAD_CONV], ids=[c[0] for c in BAD_CONV])
def test_conv2d_rejects_bad_input_with_a_message_naming_op_shapes_and_expectation(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_conv2d_rejects_a_stride_that_is_not_an_int_pair():
    with pytest.raises(TypeError, match=r"conv2d: stride must be an int or a pair of ints"):
        F.conv2d(ms.tensor(np.zeros((1, 1, 5, 5))), ms.tensor(np.zeros((1, 1, 3, 3))), stride=(1, 2, 3))


@pytest.mark.parametrize("tile_bytes", [1, 1 << 30])   # one image a tile; the whole batch in one tile
@pytest.mark.parametrize("padding, stride", [(1, 1), ((2, 1), 1), (1, 2)])
def test_tiled_conv2d_writes_every_pixel_of_its_padded_buffers(monkeypatch, tile_bytes, padding, stride):
    # Each tile pads its own images (x in forward, gy for the stride-1 input gradient) into a
    # buffer that starts uninitialised: start it full of NaN, and a pixel a tile forgot shows.
    from minise import parallel
    monkeypatch.setattr(parallel, "TILE_BYTES", tile_bytes)
    fresh = conv._padded_buffer

    def full_of_nan(x, p):
        buffer = fresh(x, p)
        if buffer is not x:       # (no padding: x itself)
            buffer[...] = np.nan
        return buffer

    monkeypatch.setattr(conv, "_padded_buffer", full_of_nan)
    x, w, b = random_inputs([(5, 2, 6, 7), (3, 2, 3, 3), (3,)], dtype=np.float64)
    y_ref = reference.conv2d_reference(x, w, b, stride, padding)
    gy = np.random.default_rng(3).standard_normal(y_ref.shape)
    dx_ref, dw_ref, _ = reference.conv2d_reference_backward(x, w, gy, stride, padding)
    xt, wt, bt = (ms.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    y.backward(ms.tensor(gy))
    np.testing.assert_allclose(y.numpy(), y_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(xt.grad.numpy(), dx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(wt.grad.numpy(), dw_ref, rtol=1e-10, atol=1e-10)
