"""The run configuration: TrainConfig, per-dataset defaults, what train() returns, and the NaN stop."""

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import backend

DATASETS = ("embedded", "cifar10", "fashion-mnist")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "step", "onecycle", "none")
AUGMENTATIONS = ("crop+flip", "flip", "none")

# What a field left as None becomes, per dataset. lr / weight_decay here are
# SGD's; Adam and AdamW default to lr 1e-3 (see TrainConfig.resolved).
# "embedded" is the README quickstart: sized to finish in under 5 minutes on
# 2 CPU cores. On this 2-core machine, SE-ResNet-20 with one-cycle reached
# 95.7% test accuracy in 2 epochs at batch 32 (624 steps), against 88.2% at
# batch 64 and 79.9% at batch 128 for the same images: per image the CPU cost
# barely depends on the batch size, so smaller batches buy more steps.
DATASET_DEFAULTS = {
    "embedded": dict(epochs=2, batch_size=32, lr=0.1, optimizer="sgd", momentum=0.9,
                     weight_decay=5e-4, nesterov=True, schedule="onecycle", warmup_epochs=0.0,
                     augment="crop+flip"),
    "cifar10": dict(epochs=30, batch_size=128, lr=0.1, optimizer="sgd", momentum=0.9,
                    weight_decay=5e-4, nesterov=True, schedule="cosine", warmup_epochs=1.0,
                    augment="crop+flip"),
    "fashion-mnist": dict(epochs=5, batch_size=128, lr=0.1, optimizer="sgd", momentum=0.9,
                          weight_decay=5e-4, nesterov=True, schedule="onecycle", warmup_epochs=0.0,
                          augment="flip"),
}

METRIC_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "time_s", "images_per_s")

# Fields a resumed run may change: they do not alter the numbers it computes
# (epochs only when there is no learning-rate schedule, see Trainer.from_checkpoint).
RESUME_OVERRIDES = ("epochs", "device", "data_dir", "progress", "grad_health")


@dataclass
class TrainConfig:
    """Everything that defines a training run. ``None`` means "the dataset's default"."""

    model: str = "se_resnet20"
    dataset: str = "embedded"
    epochs: int = None
    batch_size: int = None
    lr: float = None
    optimizer: str = None        # "sgd", "adam" or "adamw"
    momentum: float = None       # SGD only
    weight_decay: float = None
    nesterov: bool = None        # SGD only
    schedule: str = None         # "cosine", "step" (x0.1 at 50% and 75%), "onecycle", "none"
    warmup_epochs: float = None  # linear warmup from lr/10 (cosine and step schedules)
    augment: str = None          # "crop+flip", "flip" or "none"
    device: str = "cpu"
    seed: int = 0
    out: str = None              # run folder; default runs/<model>-<dataset>-<time>
    data_dir: str = None         # default: minise.data.default_data_dir() (MINISE_DATA, ~/.cache/minise)
    subset: int = None           # use only the first N training and N test images
    eval_batch_size: int = 256
    grad_health: int = 0         # log gradient health every N steps (0: off)
    progress: bool = True        # tqdm progress bar

    def resolved(self):
        """A copy with every ``None`` filled in from the dataset's defaults, checked."""
        if self.dataset not in DATASETS:
            raise ValueError(f"TrainConfig: unknown dataset {self.dataset!r}; expected one of {DATASETS}")
        values = dataclasses.asdict(self)
        # the fields a user set: kept on the result, so that resolving twice checks the same thing
        given = getattr(self, "_given", None)
        given = {key for key, value in values.items() if value is not None} if given is None else given
        defaults = dict(DATASET_DEFAULTS[self.dataset])
        optimizer = values["optimizer"] or defaults["optimizer"]
        if optimizer in ("adam", "adamw"):
            defaults.update(lr=1e-3, weight_decay=1e-2 if optimizer == "adamw" else 0.0)
        for key, value in defaults.items():
            if values[key] is None:
                values[key] = value
        config = TrainConfig(**values)
        config._check()
        config._check_unused(given)
        config._given = frozenset(given)
        return config

    def _check_unused(self, given):
        """Refuse a field that was set (``given``) but that this optimiser or schedule would silently ignore."""
        if self.optimizer in ("adam", "adamw"):
            unused = [f"{key} {getattr(self, key)}" for key in ("momentum", "nesterov") if key in given]
            if unused:
                raise ValueError(f"TrainConfig: {' and '.join(unused)} {'has' if len(unused) == 1 else 'have'} "
                                 f"no effect with optimizer {self.optimizer}: Adam's betas play that role (as in "
                                 f"PyTorch); {'it applies' if len(unused) == 1 else 'they apply'} with optimizer sgd")
        elif "momentum" in given and self.schedule == "onecycle":
            raise ValueError(f"TrainConfig: momentum {self.momentum:g} has no effect with schedule onecycle, "
                             "which cycles it between 0.95 and 0.85 (as PyTorch's OneCycleLR does); "
                             "to set it, choose schedule cosine, step or none")
        elif self.nesterov and "nesterov" in given and self.momentum == 0:
            raise ValueError("TrainConfig: nesterov True needs momentum > 0 (as in PyTorch's SGD), got momentum 0")
        if "warmup_epochs" in given and self.warmup_epochs > 0 and self.schedule in ("onecycle", "none"):
            raise ValueError(f"TrainConfig: warmup_epochs {self.warmup_epochs:g} has no effect with schedule "
                             f"{self.schedule}: only the cosine and step schedules have a warmup"
                             + (" (onecycle ramps the learning rate up by itself)" if self.schedule == "onecycle"
                                else "") + "; drop it or choose schedule cosine or step")

    def _check(self):
        choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "augment": AUGMENTATIONS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"TrainConfig: unknown {key} {getattr(self, key)!r}; expected one of {allowed}")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "eval_batch_size": self.eval_batch_size}
        if self.subset is not None:
            positive["subset"] = self.subset
        for key, value in positive.items():
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"TrainConfig: {key} must be a positive integer, got {value!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig: lr must be a finite number > 0, got {self.lr!r}")
        for key in ("weight_decay", "momentum", "warmup_epochs", "grad_health"):
            value = getattr(self, key)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"TrainConfig: {key} must be a finite number >= 0, got {value!r}")
        if self.seed is not None and not (isinstance(self.seed, (int, np.integer)) and self.seed >= 0):
            raise ValueError(f"TrainConfig: seed must be an integer >= 0, got {self.seed!r}")
        backend.parse_device(self.device)

    @staticmethod
    def describe_schedule(schedule, warmup_epochs):
        """``cosine (warmup 1 epoch)``: the schedule as the run header and ``minise train --help`` print it,
        with its warmup where the schedule has one (cosine, step)."""
        if not warmup_epochs or schedule not in ("cosine", "step"):
            return schedule
        return f"{schedule} (warmup {warmup_epochs:g} epoch{'' if warmup_epochs == 1 else 's'})"

    @staticmethod
    def describe_momentum(schedule, momentum):
        """SGD's momentum as the run header and ``minise train --help`` print it: onecycle cycles it."""
        return "0.95-0.85 (cycled by onecycle)" if schedule == "onecycle" else f"{momentum:g}"

    @staticmethod
    def resume_epochs_error(saved, epochs):
        """Why a saved run (its config dict ``saved``) cannot run for ``epochs``, or None when it can: a learning-rate
        schedule is planned for the run's number of epochs; only a run without one (schedule "none") changes length."""
        if epochs is None or epochs == saved["epochs"] or saved["schedule"] == "none":
            return None
        return (f"resume: this run's {saved['schedule']} learning-rate schedule was planned for {saved['epochs']} "
                f"epoch{'' if saved['epochs'] == 1 else 's'}, so it cannot run for {epochs}; start a new run with "
                f"--epochs {epochs} (changing the length of a run works with --schedule none)")

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """A config from a dict (a checkpoint's ``config``); unknown keys are dropped, types are checked.

        Raises ValueError naming the field when a value has the wrong type
        (a number for ``model``, a string for ``lr``...), so a damaged or
        hostile checkpoint fails here, with its field named. A dict holding every
        field (a run's ``config.json``, written by :meth:`to_dict`) is that run's
        resolved settings, checked when it started: :meth:`resolved` does not refuse
        its unused values again (a default run's momentum 0.9 under onecycle).
        """
        known = {f.name: f.type for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in known}
        for key, value in kept.items():
            allowed = _FIELD_TYPES[known[key]]
            if value is not None and (not isinstance(value, allowed) or
                                      (isinstance(value, bool) and bool not in allowed)):
                raise ValueError(f"TrainConfig: {key} must be {' or '.join(t.__name__ for t in allowed)}, "
                                 f"got {type(value).__name__} {value!r:.60}")
        config = cls(**kept)
        if len(kept) == len(known):
            config._given = frozenset()
        return config


_FIELD_TYPES = {int: (int,), float: (int, float), str: (str,), bool: (bool,)}


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path
    status: str                  # "finished" or "interrupted"
    epochs_completed: int
    best_acc: float
    best_epoch: int
    metrics: list
    model: object = None

    @property
    def final_test_acc(self):
        return self.metrics[-1]["test_acc"] if self.metrics else float("nan")


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; says where, and that the last good checkpoint is kept."""

    def __init__(self, epoch, step, global_step, value, phase="train", run_dir=None, last_good_epoch=None):
        self.epoch, self.step, self.global_step, self.value = epoch, step, global_step, value
        self.phase, self.run_dir, self.last_good_epoch = phase, run_dir, last_good_epoch
        super().__init__(self._message())

    def _message(self):
        where = (f"at epoch {self.epoch}, step {self.step} (global step {self.global_step})"
                 if self.phase == "train" else f"on the test set after epoch {self.epoch}")
        text = f"the {self.phase} loss became {self.value} {where}; training stopped."
        if self.run_dir is not None:
            text += self._kept() + " Try a smaller --lr, a longer --warmup-epochs, or look for the op with " \
                                   "ms.detect_anomaly()."
        return text

    def _kept(self):
        """Where the last good state is: " RUN/last.ckpt still holds the end of epoch N, ..." """
        kept = (f"the end of epoch {self.last_good_epoch}" if self.last_good_epoch
                else "the initial weights (no epoch had completed)")
        return f" {Path(self.run_dir) / 'last.ckpt'} still holds {kept}, the last good state."

    def attach(self, run_dir, last_good_epoch):
        self.run_dir, self.last_good_epoch = run_dir, last_good_epoch
        self.args = (self._message(),)
        return self


class NonFiniteStateError(NonFiniteLossError):
    """A parameter or buffer became NaN or infinite (the loss may still be finite): stops the run like a NaN loss."""

    def __init__(self, epoch, names, run_dir=None, last_good_epoch=None):
        self.names = list(names)
        super().__init__(epoch, None, None, None, phase="state", run_dir=run_dir, last_good_epoch=last_good_epoch)

    def _message(self):
        shown = ", ".join(self.names[:4]) + (f" and {len(self.names) - 4} more" if len(self.names) > 4 else "")
        text = (f"after epoch {self.epoch}, {len(self.names)} parameter(s) or buffer(s) hold NaN or infinity "
                f"({shown}); training stopped and this state was not saved.")
        if self.run_dir is not None:
            text += self._kept() + " Try a smaller --lr or a longer --warmup-epochs."
        return text


def default_run_dir(config):
    """``runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>``: where a run goes unless ``out`` is given."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.model}-{config.dataset}-{stamp}"
