"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay, as PyTorch applies them."""

from ..autograd import mark_modified
from .optimizer import Optimizer, _check_number

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""SGD, exactly as ``torch.optim.SGD``.

    For each parameter ``p`` with gradient ``g``, at every step::

        g = g + weight_decay * p                      # L2 penalty, added to the gradient
        if momentum:
            buf = g                                   # first step: the buffer starts at g
            buf = momentum * buf + (1 - dampening) * g    # later steps
            g = g + momentum * buf  if nesterov  else buf
        p = p - lr * g

    Note the PyTorch convention (Sutskever et al.): the learning rate multiplies
    the buffer, not the gradient inside it, so changing ``lr`` mid-training
    does not rescale the velocity already accumulated.

    params: ``model.parameters()`` or a list of parameter-group dicts.
    lr: learning rate (PyTorch's default 1e-3; the CIFAR ResNet recipe uses 0.1).
    momentum: 0 (plain SGD) or typically 0.9.  dampening: scales the new gradient
    in the buffer by ``1 - dampening``.  weight_decay: the L2 coefficient
    (1e-4 or 5e-4 for CIFAR ResNets).  nesterov: Nesterov momentum (needs
    momentum > 0 and dampening = 0).
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_number("SGD", "lr", group["lr"], low=0.0)
        _check_number("SGD", "momentum", group["momentum"], low=0.0)
        _check_number("SGD", "dampening", group["dampening"])
        _check_number("SGD", "weight_decay", group["weight_decay"], low=0.0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov=True needs momentum > 0 and dampening == 0, got momentum={group['momentum']}, "
                f"dampening={group['dampening']}"
            )

    def step(self, closure=None):
        """One update of every parameter that has a gradient (``p.grad is None``: skipped).

        closure: optional function that re-computes and returns the loss.
        Returns the closure's loss, or None.
        """
        loss = self._evaluate_closure(closure)
        for group in self.param_groups:
            lr = group["lr"]
            momentum = group["momentum"]
            dampening = group["dampening"]
            weight_decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = self._grad_of(p)           # never modified in place: it is the user's p.grad
                if weight_decay != 0:
                    d_p = p.data * weight_decay  # a new array, so the += below is safe
                    d_p += self._grad_of(p)
                if momentum != 0:
                    state = self.state.setdefault(p, {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = d_p.copy()
                        state["momentum_buffer"] = buf
                    else:
                        buf *= momentum
                        if dampening != 0:
                            buf += (1 - dampening) * d_p
                        else:
                            buf += d_p
                    if group["nesterov"]:
                        d_p = d_p + momentum * buf
                    else:
                        d_p = buf
                p.data -= lr * d_p               # in place: the model keeps its array
                mark_modified(p)                 # a graph that saved p now raises in backward
        return loss
