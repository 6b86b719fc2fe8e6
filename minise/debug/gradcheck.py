"""Numerical gradient checks: compare backward() with central differences.

For an op y = f(x1, x2, ...) we pick a fixed random weight ``v`` of y's shape
and check the gradient of the scalar L = sum(v * y). Its exact gradient is
what backward computes when handed ``grad=v``; its numerical gradient is

    dL/dx[i] ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)

one element at a time (``gradcheck``), or along one random direction u for
big inputs (``directional_gradcheck``):

    <dL/dx, u> ~ (L(x + eps u) - L(x - eps u)) / (2 eps)

Both run in float64, where central differences are accurate to about eps**2.
"""

import numpy as np

from .. import backend
from ..autograd import no_grad
from ..tensor import Tensor

__all__ = ["gradcheck", "directional_gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """backward() disagrees with the numerical gradient; the message says where."""


def _prepare(inputs):
    """float64 copies of the inputs; the float ones that require grad (or all float ones) are checked."""
    copies = []
    for x in inputs:
        if isinstance(x, Tensor):
            data = x.data
            if data.dtype.kind == "f":
                copies.append(Tensor(data.astype(np.float64), requires_grad=True))
                copies[-1]._wanted = x.requires_grad
            else:
                copies.append(Tensor(data))
        elif backend.is_array(x) and x.dtype.kind == "f":
            copies.append(Tensor(x.astype(np.float64), requires_grad=True))
            copies[-1]._wanted = True
        else:
            copies.append(x)
    checked = [i for i, c in enumerate(copies) if getattr(c, "_wanted", False)]
    if not checked:  # nothing asked for explicitly: check every float input
        checked = [i for i, c in enumerate(copies) if isinstance(c, Tensor) and c.requires_grad]
    for i, c in enumerate(copies):
        if isinstance(c, Tensor) and c.requires_grad and i not in checked:
            c.requires_grad = False
    if not checked:
        raise ValueError("gradcheck: none of the inputs is a floating point Tensor or array")
    return copies, checked


def _projected_loss(fn, inputs, v):
    """L = sum(v * fn(*inputs)) as a Python float, without recording a graph."""
    with no_grad():
        out = fn(*inputs)
    return float((out.data * v).sum())


def _analytic(fn, inputs, checked, seed):
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    xp = out.xp
    v = xp.asarray(np.random.default_rng(seed).standard_normal(out.shape))
    if not out.requires_grad:
        raise GradcheckError("gradcheck: the output does not depend on any checked input (no graph was recorded)")
    out.backward(v)
    grads = []
    for i in checked:
        g = inputs[i].grad
        grads.append(xp.zeros(inputs[i].shape) if g is None else g.data.astype(np.float64))
    return v, grads


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check fn's backward against central differences, element by element, in float64.

    fn: a callable taking ``*inputs`` and returning a Tensor.  inputs: Tensors
    or arrays (others, like ints, are passed through).  Returns True, or
    raises GradcheckError naming the input, the worst index, and the analytic
    and numerical values there.
    """
    inputs, checked = _prepare(inputs)
    v, grads = _analytic(fn, inputs, checked, seed)
    for k, i in enumerate(checked):
        x = inputs[i].data
        numerical = np.zeros(x.shape)
        flat = x.reshape(-1)  # a view: nudging it nudges x
        for j in range(flat.size):
            original = float(flat[j])
            flat[j] = original + eps
            plus = _projected_loss(fn, inputs, v)
            flat[j] = original - eps
            minus = _projected_loss(fn, inputs, v)
            flat[j] = original
            numerical.reshape(-1)[j] = (plus - minus) / (2 * eps)
        _compare(backend.to_numpy(grads[k]), numerical, i, x.shape, atol, rtol)
    return True


def directional_gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, directions=3):
    """Cheaper check for big inputs: compare <grad, u> with a central difference along random u.

    Costs 2 forward passes per direction instead of 2 per element.
    """
    inputs, checked = _prepare(inputs)
    v, grads = _analytic(fn, inputs, checked, seed)
    rng = np.random.default_rng(seed + 1)
    for d in range(directions):
        us = []
        for i in checked:
            xp = inputs[i].xp
            us.append(xp.asarray(rng.standard_normal(inputs[i].shape)))
        originals = [inputs[i].data.copy() for i in checked]
        for i, u, x0 in zip(checked, us, originals):
            inputs[i].data[...] = x0 + eps * u
        plus = _projected_loss(fn, inputs, v)
        for i, u, x0 in zip(checked, us, originals):
            inputs[i].data[...] = x0 - eps * u
        minus = _projected_loss(fn, inputs, v)
        for i, x0 in zip(checked, originals):
            inputs[i].data[...] = x0
        numerical = (plus - minus) / (2 * eps)
        analytic = float(sum(float((g * u).sum()) for g, u in zip(grads, us)))
        if not abs(analytic - numerical) <= atol + rtol * abs(numerical):  # NaN fails too
            raise GradcheckError(
                f"directional gradcheck failed along random direction {d} over inputs {checked}: "
                f"analytic <grad, u> = {analytic:.8g}, numerical = {numerical:.8g} "
                f"(difference {abs(analytic - numerical):.3g} > atol {atol} + rtol {rtol} * |numerical|)"
            )
    return True


def _compare(analytic, numerical, index, shape, atol, rtol):
    error = np.abs(analytic - numerical)
    allowed = atol + rtol * np.abs(numerical)
    excess = np.where(np.isfinite(error), error - allowed, np.inf)  # NaN/Inf count as failures
    if (excess > 0).any():
        worst = np.unravel_index(int(np.argmax(excess)), shape) if excess.ndim else ()
        raise GradcheckError(
            f"gradcheck failed for input {index} (shape {tuple(shape)}): "
            f"worst at index {tuple(int(w) for w in worst)}: "
            f"analytic {float(analytic[worst]):.8g} vs numerical {float(numerical[worst]):.8g} "
            f"(|difference| {float(error[worst]):.3g} > atol {atol} + rtol {rtol} * |numerical|); "
            f"{int((excess > 0).sum())} of {excess.size} elements are off"
        )
