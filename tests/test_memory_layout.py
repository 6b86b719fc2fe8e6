"""One memory layout through a network: results laid out like their inputs.

conv2d returns channel-major arrays ((N, C, H, W) stored as (C, N, H, W)). An op that
mixed that layout with a batch-major one read one of its inputs out of order: an add at
128x16x32x32 ran 2.5x slower. Oracles: the strides themselves, NumPy's values (the layout
changes no number), PyTorch's rule for pad (constant_pad_nd keeps the input's memory
format), and a whole SE-ResNet step in which no elementwise op reads two layouts.
"""

import numpy as np
import pytest

import minise as ms
import minise.functional as F
from minise import backend, models, optim, parallel
from minise.functional.pooling import GlobalAvgPool2d
from minise.functional.shape import GetItem


def _channel_major(shape, seed=0, xp=np):
    n, c, h, w = shape
    a = np.random.default_rng(seed).standard_normal((c, n, h, w), dtype=np.float32)
    return xp.asarray(a).transpose(1, 0, 2, 3)


def _xp(device):
    return backend._import_cupy() if device == "cuda" else np


def test_memory_order_reads_the_layout_from_the_strides(device):
    xp = _xp(device)
    assert backend.memory_order(xp.zeros((2, 3, 4, 5))) == (0, 1, 2, 3)
    assert backend.memory_order(_channel_major((2, 3, 4, 5), xp=xp)) == (1, 0, 2, 3)
    assert backend.memory_order(xp.zeros((2, 3)).T) == (1, 0)
    # Axes of length 1 carry no layout: they keep their place, the others are ordered around them.
    assert backend.memory_order(_channel_major((4, 3, 1, 5), xp=xp)) == (1, 0, 2, 3)
    assert backend.memory_order(xp.zeros(())) == ()


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (1, 0, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)])
def test_empty_in_order_lays_the_axes_out_as_asked(device, order):
    xp = _xp(device)
    a = backend.empty_in_order((2, 3, 4, 5), order, np.float32, xp)
    assert a.shape == (2, 3, 4, 5) and a.dtype == np.float32
    assert backend.memory_order(a) == order
    assert [a.strides[i] for i in order] == sorted(a.strides, reverse=True)   # dense: no gaps


def test_pad_keeps_the_inputs_layout_and_values_as_pytorchs_constant_pad_nd(device):
    xp = _xp(device)
    x = _channel_major((4, 6, 5, 5), xp=xp)
    width = ((0, 0), (3, 3), (0, 0), (1, 2))
    y = F.pad(ms.tensor(x), width, value=-1.5).data
    assert backend.memory_order(y) == (1, 0, 2, 3)
    np.testing.assert_array_equal(backend.to_numpy(y),
                                  np.pad(backend.to_numpy(x), width, constant_values=-1.5))


@pytest.mark.parametrize("width", [1, (1,), (1, 2), ((1, 2),), ((1, 2), (0, 3)), np.array(2), [[1], [2]]])
def test_pad_reads_pad_width_as_numpy_pad_does(width):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(F.pad(ms.tensor(x), width, value=7.0).numpy(), np.pad(x, width, constant_values=7))


@pytest.mark.parametrize("bad", [-1, ((0, 0), (0, -2)), ((0, 0), (0, 1.5)), ((0, 0), (1,)), [(0, 1), 2],
                                 ((1, 1), (1, 1), (1, 1)), "1", True, np.uint8(2)])
def test_pad_refuses_a_width_numpy_pad_would_not_take(bad):
    with pytest.raises(ValueError, match=r"pad: pad_width must be non-negative ints as numpy.pad takes them"):
        F.pad(ms.ones(2, 3), bad)


def test_the_gradient_of_a_global_average_pool_is_laid_out_as_its_input(device):
    xp = _xp(device)
    op = GlobalAvgPool2d()
    z = op.forward(_channel_major((4, 6, 3, 3), xp=xp))
    gx = op.backward(xp.ones_like(z))
    assert backend.memory_order(gx) == (1, 0, 2, 3)
    np.testing.assert_array_equal(backend.to_numpy(gx), np.full((4, 6, 3, 3), 1 / 9, np.float32))


def test_the_gradient_of_a_slice_is_laid_out_as_its_input(device):
    xp = _xp(device)
    op = GetItem((slice(None), slice(None), slice(None, None, 2), slice(None, None, 2)))
    y = op.forward(_channel_major((4, 6, 4, 4), xp=xp))
    gx = op.backward(xp.ones_like(y))
    assert backend.memory_order(gx) == (1, 0, 2, 3)
    expected = np.zeros((4, 6, 4, 4), np.float32)
    expected[:, :, ::2, ::2] = 1
    np.testing.assert_array_equal(backend.to_numpy(gx), expected)


@pytest.mark.parametrize("threads", [1, 2])
def test_no_op_of_an_se_resnet_step_reads_two_layouts(monkeypatch, threads):
    """Forward and backward of SE-ResNet-20 (option-A shortcuts: slice and pad; SE: pool, reweight):
    every elementwise op whose inputs are whole activations reads them in one layout."""
    mixed = []
    elementwise = parallel.elementwise

    def watched(f, *args, **kwargs):
        orders = {backend.memory_order(a) for a in args
                  if isinstance(a, np.ndarray) and a.ndim == 4 and min(a.shape) > 1}
        if len(orders) > 1:
            mixed.append((getattr(f, "__name__", f), [getattr(a, "shape", a) for a in args], orders))
        return elementwise(f, *args, **kwargs)

    monkeypatch.setattr(parallel, "elementwise", watched)
    before = parallel.get_num_threads()
    parallel.set_num_threads(threads)
    try:
        model = models.se_resnet20()
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x = ms.tensor(np.random.default_rng(0).standard_normal((4, 3, 16, 16), dtype=np.float32))
        loss = F.cross_entropy(model(x), ms.tensor(np.array([0, 1, 2, 3])))
        loss.backward()
        opt.step()
    finally:
        parallel.set_num_threads(before)
    assert mixed == []
