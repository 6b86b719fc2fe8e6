"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), as PyTorch applies them."""

import math

from ..autograd import mark_modified
from ..backend import get_array_module
from .optimizer import Optimizer, _check_number

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam, exactly as ``torch.optim.Adam``.

    For each parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``::

        g = g + weight_decay * p              # L2 penalty (Adam); AdamW instead does
                                              #   p = p * (1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * g       # first moment (moving mean of g)
        v = beta2 * v + (1 - beta2) * g * g   # second moment (moving mean of g^2)
        v_max = max(v_max, v)                 # only with amsgrad=True; then v_max replaces v below
        m_hat = m / (1 - beta1 ** t)          # bias corrections: m and v start at 0
        v_hat = v / (1 - beta2 ** t)
        p = p - lr * m_hat / (sqrt(v_hat) + eps)

    (computed as PyTorch does: ``p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``.)

    State per parameter: ``step`` (an int), ``exp_avg`` (m), ``exp_avg_sq`` (v)
    and, with amsgrad, ``max_exp_avg_sq``.

    decoupled_weight_decay=True gives AdamW (see :class:`AdamW`).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
                 decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group):
        name = type(self).__name__
        _check_number(name, "lr", group["lr"], low=0.0)
        _check_number(name, "eps", group["eps"], low=0.0)
        _check_number(name, "weight_decay", group["weight_decay"], low=0.0)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2) like (0.9, 0.999), got {betas!r}")
        group["betas"] = tuple(betas)
        _check_number(name, "beta1", betas[0], low=0.0, high=1.0, high_open=True)
        _check_number(name, "beta2", betas[1], low=0.0, high=1.0, high_open=True)

    def step(self, closure=None):
        """One update of every parameter that has a gradient (``p.grad is None``: skipped).

        closure: optional function that re-computes and returns the loss.
        Returns the closure's loss, or None.
        """
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            lr = group["lr"]
            beta1, beta2 = group["betas"]
            eps = group["eps"]
            weight_decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = self._grad_of(p)
                xp = get_array_module(p.data)
                state = self.state.get(p)
                if not state:
                    state = {"step": 0, "exp_avg": xp.zeros_like(p.data), "exp_avg_sq": xp.zeros_like(p.data)}
                    self.state[p] = state
                if group["amsgrad"] and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = xp.zeros_like(p.data)
                state["step"] += 1
                step = state["step"]
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]

                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        p.data *= 1 - lr * weight_decay          # AdamW: shrink p itself
                    else:
                        decayed = p.data * weight_decay          # Adam: L2 into the gradient
                        decayed += grad
                        grad = decayed

                # One scratch array per parameter, reused for every temporary below.
                scratch = grad - exp_avg
                scratch *= 1 - beta1
                exp_avg += scratch                               # m += (1 - beta1) * (g - m)
                xp.multiply(grad, 1 - beta2, out=scratch)
                scratch *= grad
                exp_avg_sq *= beta2
                exp_avg_sq += scratch                            # v = beta2 v + (1 - beta2) g^2
                second = exp_avg_sq
                if group["amsgrad"]:
                    second = state["max_exp_avg_sq"]
                    xp.maximum(second, exp_avg_sq, out=second)

                bias_correction1 = 1 - beta1 ** step
                bias_correction2 = 1 - beta2 ** step
                step_size = lr / bias_correction1
                denom = xp.sqrt(second, out=scratch)
                denom /= math.sqrt(bias_correction2)
                denom += eps
                update = xp.divide(exp_avg, denom, out=scratch)
                update *= step_size
                p.data -= update
                mark_modified(p)
        return loss


class AdamW(Adam):
    r"""Adam with *decoupled* weight decay, exactly as ``torch.optim.AdamW``.

    Instead of adding ``weight_decay * p`` to the gradient (where Adam's
    per-coordinate scaling would weaken it for parameters with large
    gradients), every step first shrinks the parameter itself::

        p = p * (1 - lr * weight_decay)

    and then takes the plain Adam step. Default weight_decay 1e-2, as PyTorch.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         decoupled_weight_decay=True)
