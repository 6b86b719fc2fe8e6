"""Anomaly detection: the first op whose forward or backward makes a NaN or an Inf raises.

``detect_anomaly()`` adds two observers to the engine (``minise.autograd``'s
``_forward_observers`` and ``_backward_observers``): one checks every op's
output, the other every gradient an op's backward returned. Outside the block
the engine runs with no check at all.
"""

import contextlib

from .. import autograd, backend
from ..tensor import _is_float

__all__ = ["detect_anomaly", "AnomalyError"]


class AnomalyError(FloatingPointError):
    """An op produced NaN or Inf while ``detect_anomaly()`` was active."""


def _check_finite(fn, arrays, phase):
    """Raise AnomalyError naming ``fn`` and its module if any float array in ``arrays`` is not finite."""
    for i, a in enumerate(arrays):
        if a is None or not _is_float(a.dtype):
            continue
        xp = backend.get_array_module(a)
        if not bool(xp.isfinite(a).all()):
            stack = getattr(fn, "module_stack", ())
            if fn.module_path:
                where = fn.module_path
            elif stack:  # ran in the forward of the top-level module itself
                where = f"(the top-level {type(stack[0]).__name__})"
            else:
                where = "(outside any module)"
            what = "its output" if phase == "forward" else f"the gradient for input {i}"
            n_nan = int(xp.isnan(a).sum())
            n_inf = int(xp.isinf(a).sum())
            raise AnomalyError(
                f"detect_anomaly: {fn.name} in module {where} produced non-finite values in {phase} "
                f"({what}: {n_nan} NaN, {n_inf} Inf, shape {tuple(a.shape)})"
            )


def _check_forward(fn, inputs, output):
    _check_finite(fn, (output.data,), "forward")


def _check_backward(record):
    _check_finite(record["function"], record["grad_inputs"], "backward")


_active = False


def _set_active(enabled):
    """Turn the checks on or off; returns the previous setting."""
    global _active
    previous = _active
    if enabled and not previous:
        autograd._forward_observers.append(_check_forward)
        autograd._backward_observers.append(_check_backward)
    elif previous and not enabled:
        autograd._forward_observers.remove(_check_forward)
        autograd._backward_observers.remove(_check_backward)
    _active = enabled
    return previous


class detect_anomaly(contextlib.ContextDecorator):
    """Inside this block, the first op whose forward or backward makes a NaN or an Inf raises.

        with ms.detect_anomaly():
            loss = model(x).log().sum()      # AnomalyError: Log in module layer1.0.se ...
            loss.backward()

    The error (``ms.AnomalyError``, a FloatingPointError) names the op, the
    module path that ran it, whether forward or backward, and how many values
    are NaN / Inf. Leaving the block restores the previous setting, so blocks
    nest. Works as a decorator too. Each op then checks its result
    (``isfinite`` over the whole array): slower, for debugging only.
    """

    def __init__(self, enabled=True):
        self.enabled = bool(enabled)
        self._previous = []

    def __enter__(self):
        self._previous.append(_set_active(self.enabled))
        return self

    def __exit__(self, *exc):
        _set_active(self._previous.pop())
        return False
