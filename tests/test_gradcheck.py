"""gradcheck catches a wrong backward and names where it is wrong."""

import numpy as np
import pytest

import minise as ms


class SquareWithWrongBackward(ms.Function):
    """y = x**2 but backward claims 3x: gradcheck must refuse it."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, gy):
        (x,) = self.saved
        return 3 * x * gy


def test_gradcheck_accepts_a_correct_backward():
    x = ms.tensor(np.random.randn(3, 4), requires_grad=True)
    assert ms.gradcheck(lambda t: (t * t).sum(axis=1), [x])


def test_gradcheck_rejects_a_wrong_backward_and_names_input_and_index():
    x = ms.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    with pytest.raises(ms.GradcheckError) as info:
        ms.gradcheck(lambda t: SquareWithWrongBackward()(t), [x])
    message = str(info.value)
    assert "input 0" in message and "worst at index (2,)" in message
    assert "analytic" in message and "numerical" in message
    assert isinstance(info.value, AssertionError)


def test_directional_gradcheck_rejects_a_wrong_backward():
    x = ms.tensor(np.random.randn(50), requires_grad=True)
    assert ms.directional_gradcheck(lambda t: (t * t), [x])
    with pytest.raises(ms.GradcheckError, match="directional"):
        ms.directional_gradcheck(lambda t: SquareWithWrongBackward()(t), [x])


def test_gradcheck_runs_in_float64_even_for_float32_inputs():
    seen = []

    def f(t):
        seen.append(t.dtype)
        return t * 2

    ms.gradcheck(f, [ms.tensor(np.ones(2, dtype=np.float32), requires_grad=True)])
    assert set(seen) == {np.dtype(np.float64)}


def test_gradcheck_fails_on_nan_gradients():
    class NanBackward(ms.Function):
        def forward(self, x):
            return x * 1

        def backward(self, gy):
            return gy * np.nan

    with pytest.raises(ms.GradcheckError):
        ms.gradcheck(lambda t: NanBackward()(t), [ms.tensor(np.ones(2), requires_grad=True)])


def test_gradcheck_checks_only_inputs_that_require_grad():
    a = ms.tensor(np.random.randn(3), requires_grad=True)
    b = ms.tensor(np.random.randn(3))  # a constant: not checked, never gets .grad
    assert ms.gradcheck(lambda x, y: x * y, [a, b])
