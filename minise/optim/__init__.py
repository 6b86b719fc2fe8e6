"""Optimisers and learning-rate schedules, with PyTorch's names and update rules.

    from minise import optim
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)

Every step: ``loss.backward()``, ``opt.step()`` (updates ``p.data`` in place
from ``p.grad``), ``opt.zero_grad()``; once per epoch: ``sched.step()``.
"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
