"""Learning-rate schedules, with PyTorch's names, formulas and ``last_epoch`` bookkeeping.

A scheduler changes ``group["lr"]`` of its optimizer each time you call
``scheduler.step()`` -- once per epoch for ``MultiStepLR`` /
``CosineAnnealingLR``, once per batch for ``OneCycleLR`` -- always *after*
``optimizer.step()``::

    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = optim.lr_scheduler.MultiStepLR(opt, milestones=[100, 150], gamma=0.1)
    for epoch in range(200):
        train_one_epoch(model, opt)      # calls opt.step() per batch
        sched.step()

Bookkeeping, exactly as in PyTorch:

* Constructing a scheduler stores each group's starting lr as
  ``group["initial_lr"]`` (the ``base_lrs``) and performs the first step:
  ``last_epoch`` goes from -1 to 0 and the lr for epoch 0 is set.
* ``step()`` adds one to ``last_epoch`` and sets the lr for that epoch.
  ``get_last_lr()`` returns the lrs it set, one per parameter group.
* Most schedules are *chainable*: ``get_lr`` computes the new lr from the
  group's current lr (e.g. ``CosineAnnealingLR`` uses a recursive formula), so
  two schedulers on one optimizer compose. Each also has the closed form
  (``_get_closed_form_lr``) that :class:`SequentialLR` uses when it switches.
* ``state_dict()`` holds every attribute except the optimizer (plain numbers,
  lists and dicts: ``ms.save`` writes it). To resume: build the optimizer and
  the scheduler as before, then load the optimizer's and the scheduler's
  state dicts.

Linear warmup is ``LinearLR(opt, start_factor=0.1, total_iters=5)``; warmup
followed by cosine decay is ``SequentialLR(opt, [warmup, cosine], milestones=[5])``.

- ``base.py``: LRScheduler (bookkeeping, state dicts);
- ``epoch_rules.py``: LambdaLR, StepLR, MultiStepLR, LinearLR, CosineAnnealingLR;
- ``one_cycle.py``: OneCycleLR;
- ``sequential.py``: SequentialLR.
"""

from .base import LRScheduler
from .epoch_rules import CosineAnnealingLR, LambdaLR, LinearLR, MultiStepLR, StepLR
from .one_cycle import OneCycleLR
from .sequential import SequentialLR

__all__ = [
    "LRScheduler",
    "LambdaLR",
    "StepLR",
    "MultiStepLR",
    "LinearLR",
    "CosineAnnealingLR",
    "OneCycleLR",
    "SequentialLR",
]
