"""Gradient health over training: per-parameter gradient norm and update/weight ratio.

``GradientMonitor`` is the one debugging tool meant for training: it measures,
per parameter, the gradient norm and the size of the optimizer's update relative
to the weight (``||w_after - w_before|| / ||w_before||``), the numbers a trainer
writes to ``grad_health.csv`` and ``minise.viz.plot_grad_health`` draws.
"""

import csv
import math
from dataclasses import dataclass

from .. import backend
from ..io.atomic import atomic_path
from ..io.text import read_log_rows
from ..tensor import Tensor
from .stats import _norm_array

GRAD_HEALTH_COLUMNS = ("epoch", "step", "param", "grad_norm", "update_ratio")
GRAD_HEALTH_TYPES = dict(zip(GRAD_HEALTH_COLUMNS, (int, int, str, float, float)))   # as read back


@dataclass
class GradHealthRecord:
    """One parameter at one optimizer step: the row format of ``grad_health.csv``.

    epoch: the epoch number as the trainer counts it. step: the global
    optimizer-step count since the start of training (monotonic across
    epochs; the x axis of the plot). param: dotted parameter name
    (``layer1.0.se.fc1.weight``). grad_norm: L2 norm of the parameter's
    gradient just before the step. update_ratio: ``||w_after - w_before|| /
    ||w_before||``, the relative size of the step (about 1e-3 is the usual
    rule of thumb for a healthy rate); NaN when ``w_before`` is all zeros.
    """

    epoch: int
    step: int
    param: str
    grad_norm: float
    update_ratio: float


class GradientMonitor:
    """Per-parameter gradient norm and update/weight ratio around an optimizer step.

        monitor = GradientMonitor(model.named_parameters())
        loss.backward()
        monitor.before_step()              # gradient norms, and a copy of every weight
        optimizer.step()
        monitor.after_step(epoch, step)    # -> list of GradHealthRecord, also in monitor.records
        monitor.to_csv(run_dir / "grad_health.csv")

    Parameters without a gradient (unused, frozen) are skipped. ``before_step``
    copies every weight, so call it only on the steps you want to log.
    """

    def __init__(self, named_parameters):
        if hasattr(named_parameters, "named_parameters"):
            named_parameters = named_parameters.named_parameters()
        items = named_parameters.items() if hasattr(named_parameters, "items") else named_parameters
        self.params = [(str(name), p) for name, p in items]
        for name, p in self.params:
            if not isinstance(p, Tensor):
                raise TypeError(f"GradientMonitor: expected (name, Tensor) pairs, got {type(p).__name__} for {name!r}")
        self.records = []
        self._before = None

    def before_step(self):
        """Measure the gradients and remember the weights; call right before ``optimizer.step()``."""
        self._before = [(name, p, _norm_array(p.grad.data), p.data.copy())
                        for name, p in self.params if p.grad is not None]

    def after_step(self, epoch, step):
        """Compare each weight with its copy from ``before_step``; returns (and keeps) the new records.

        The norms stay on the device until one transfer at the end: one GPU sync per call.
        """
        if self._before is None:
            raise RuntimeError("GradientMonitor.after_step: call before_step() before optimizer.step()")
        before, self._before = self._before, None
        if not before:
            return []
        xp = backend.get_array_module(before[0][3])
        table = backend.to_numpy(xp.stack([
            xp.stack([grad_norm for _, _, grad_norm, _ in before]),
            xp.stack([_norm_array(p.data - w) for _, p, _, w in before]),
            xp.stack([_norm_array(w) for _, _, _, w in before]),
        ]))
        new = []
        for (name, *_), grad_norm, update, weight in zip(before, *table):
            ratio = float(update / weight) if weight > 0 else math.nan
            new.append(GradHealthRecord(int(epoch), int(step), name, float(grad_norm), ratio))
        self.records.extend(new)
        return new

    def to_csv(self, path):
        """Write every record so far to ``path`` (atomically), columns ``GRAD_HEALTH_COLUMNS``."""
        return write_grad_health_csv(self.records, path)


def write_grad_health_csv(records, path):
    """Write GradHealthRecords as CSV with the header epoch,step,param,grad_norm,update_ratio.

    The file is written to a temporary file beside ``path`` and renamed, so a
    crash never leaves half a file. Returns ``path``.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(GRAD_HEALTH_COLUMNS)
            for r in records:
                writer.writerow([r.epoch, r.step, r.param, repr(float(r.grad_norm)), repr(float(r.update_ratio))])
    return path


def read_grad_health_csv(path):
    """The records of a ``grad_health.csv``; raises ValueError naming the file (and the line) when it is empty,
    its header lacks one of GRAD_HEALTH_COLUMNS, or a row is not whole numbers where they belong
    (:func:`minise.io.text.read_log_rows`)."""
    rows = read_log_rows(path, GRAD_HEALTH_TYPES)      # a regular file of a sane size, every row whole, or ValueError
    return [GradHealthRecord(**row) for row in rows]
