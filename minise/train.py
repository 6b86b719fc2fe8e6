"""The training loop shared by ``minise train`` and the tutorials.

From Python::

    from minise.train import TrainConfig, train
    result = train(TrainConfig(model="se_resnet20", dataset="embedded"))
    result.best_acc, result.run_dir, result.model

or step by step, to look inside::

    trainer = Trainer(TrainConfig(model="se_resnet20", dataset="embedded", epochs=2))
    trainer.fit()                       # or trainer.fit(epochs=1) to train one epoch only
    evaluate(trainer.model, trainer.test_loader)

Fields left as ``None`` in :class:`TrainConfig` take the dataset's defaults
(:data:`DATASET_DEFAULTS`): the CIFAR ResNet recipe (SGD, lr 0.1, momentum 0.9,
weight decay 5e-4, batch 128, cosine schedule, random crop + flip).

The run folder (``runs/<model>-<dataset>-<time>`` unless ``out`` is given) holds

- ``config.json``: the resolved configuration;
- ``metrics.csv``: one row per epoch: epoch, lr (at the epoch's start),
  train_loss, train_acc, test_loss, test_acc (accuracies are fractions),
  time_s, images_per_s (training images per second);
- ``last.ckpt`` (after every epoch) and ``best.ckpt`` (highest test accuracy);
- ``curves.png``: loss, accuracy and learning rate, redrawn every epoch;
- ``grad_health.csv`` with ``grad_health=N``: every N optimiser steps, each
  parameter's gradient norm and update/weight ratio.

Every file is written atomically (temporary file, then rename).

**Resuming.** A checkpoint holds the model, the optimiser and the scheduler,
the epoch, the step count, the best accuracy, every random state (minise's
global generator and the training loader's) and the metrics so far, so
``Trainer.from_checkpoint(path).fit()`` continues exactly where the run was:
its metrics and weights are bit-identical to a run that was never stopped.
(On a GPU, CuPy's own generator, which only dropout uses, is not saved: a
model with dropout resumes correctly there, but not bit for bit.)

**Ctrl-C** (KeyboardInterrupt) saves ``last.ckpt`` as it was at the end of the
last *completed* epoch and returns; the interrupted epoch starts again from its
beginning on resume, which is what keeps resuming bit-identical.

**A non-finite loss** stops the run with :class:`NonFiniteLossError`, naming the
epoch and the step; the checkpoints on disk are those of the last good epoch.
"""

import csv
import dataclasses
import io
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import backend
from .autograd import Tensor, no_grad
from .checkpoint import atomic_path, atomic_write_text, load_checkpoint, save_checkpoint, to_host

__all__ = [
    "DATASETS",
    "OPTIMIZERS",
    "SCHEDULES",
    "AUGMENTATIONS",
    "DATASET_DEFAULTS",
    "METRIC_COLUMNS",
    "GRAD_HEALTH_COLUMNS",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "NonFiniteLossError",
    "train",
    "resume",
    "evaluate",
    "load_model",
    "load_dataset",
    "load_datasets",
    "normalization",
    "make_train_loader",
    "make_test_loader",
    "read_metrics",
    "write_metrics",
    "Excitations",
    "excitations_per_class",
]

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
GRAD_HEALTH_COLUMNS = ("epoch", "step", "param", "grad_norm", "update_ratio")

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
        defaults = dict(DATASET_DEFAULTS[self.dataset])
        optimizer = values["optimizer"] or defaults["optimizer"]
        if optimizer in ("adam", "adamw"):
            defaults.update(lr=1e-3, weight_decay=1e-2 if optimizer == "adamw" else 0.0)
        for key, value in defaults.items():
            if values[key] is None:
                values[key] = value
        config = TrainConfig(**values)
        config._check()
        return config

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
        if not self.lr > 0:
            raise ValueError(f"TrainConfig: lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0 or self.momentum < 0 or self.warmup_epochs < 0 or self.grad_health < 0:
            raise ValueError("TrainConfig: weight_decay, momentum, warmup_epochs and grad_health must be >= 0, got "
                             f"{self.weight_decay}, {self.momentum}, {self.warmup_epochs}, {self.grad_health}")
        backend.parse_device(self.device)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


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
            kept = (f"the end of epoch {self.last_good_epoch}" if self.last_good_epoch
                    else "the initial weights (no epoch had completed)")
            text += (f" {Path(self.run_dir) / 'last.ckpt'} still holds {kept}, the last good state."
                     " Try a smaller --lr, a longer --warmup-epochs, or look for the op with ms.detect_anomaly().")
        return text

    def attach(self, run_dir, last_good_epoch):
        self.run_dir, self.last_good_epoch = run_dir, last_good_epoch
        self.args = (self._message(),)
        return self


# --- datasets and loaders -------------------------------------------------------
def load_dataset(config, train=True):
    """The training (or test) split of ``config.dataset``, cut to its first ``config.subset`` images if set."""
    from . import data

    download = config.dataset != "embedded"
    dataset = data.get_dataset(config.dataset, root=config.data_dir, train=train, download=download)
    if config.subset is not None and config.subset < len(dataset):
        dataset = data.Subset(dataset, np.arange(config.subset))
    return dataset


def load_datasets(config):
    """(train_set, test_set) for ``config`` (see :func:`load_dataset`)."""
    return load_dataset(config, train=True), load_dataset(config, train=False)


def normalization(config, train_set):
    """(mean, std) per channel for ``Normalize``: the dataset's published constants
    (``data.MEAN_STD``) when it has them, else measured on ``train_set``."""
    from . import data

    constants = getattr(data, "MEAN_STD", {})
    if config.dataset in constants:
        mean, std = constants[config.dataset]
        return [float(v) for v in mean], [float(v) for v in std]
    return list(train_set.mean()), list(train_set.std())


def make_train_loader(config, train_set, mean, std):
    """Shuffled, augmented (``config.augment``) and normalised batches, seeded by ``config.seed``."""
    from . import data

    size = train_set.images.shape[-1]
    steps = []
    if config.augment == "crop+flip":
        steps.append(data.RandomCrop(size, padding=4))
    if config.augment in ("crop+flip", "flip"):
        steps.append(data.RandomHorizontalFlip())
    steps.append(data.Normalize(mean, std))
    return data.DataLoader(train_set, config.batch_size, shuffle=True,
                           drop_last=len(train_set) >= config.batch_size,
                           transform=data.Compose(steps), seed=config.seed, device=config.device)


def make_test_loader(test_set, mean, std, batch_size=256, device="cpu"):
    """The test set in order, normalised, no augmentation."""
    from . import data

    return data.DataLoader(test_set, batch_size, shuffle=False, transform=data.Normalize(mean, std),
                           device=device)


def build_model(config, num_classes, in_channels):
    from . import models

    return models.get(config.model, num_classes=num_classes, in_channels=in_channels)


def build_optimizer(config, parameters):
    from . import optim

    if config.optimizer == "sgd":
        return optim.SGD(parameters, lr=config.lr, momentum=config.momentum,
                         weight_decay=config.weight_decay, nesterov=config.nesterov and config.momentum > 0)
    cls = optim.Adam if config.optimizer == "adam" else optim.AdamW
    return cls(parameters, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(config, optimizer, steps_per_epoch):
    """A scheduler stepped once per optimiser step, or None for a constant learning rate."""
    from .optim import lr_scheduler

    total = config.epochs * steps_per_epoch
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    if config.schedule == "none":
        return None
    if config.schedule == "onecycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    if config.schedule == "cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup))
    else:
        main = lr_scheduler.MultiStepLR(optimizer, milestones=[total // 2 - warmup, (3 * total) // 4 - warmup],
                                        gamma=0.1)
    if warmup == 0:
        return main
    ramp = lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warmup)
    return lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


# --- evaluation -----------------------------------------------------------------
def _labels_of(y):
    return y.data if isinstance(y, Tensor) else y


def evaluate(model, loader, num_classes=None, loss_fn=None):
    """Mean loss, accuracy and (with ``num_classes``) the confusion matrix of ``model`` on ``loader``.

    Runs in eval mode under ``no_grad``; counts stay on the device and reach the
    host once, at the end. Returns ``{"loss", "acc", "count"}`` plus
    ``"confusion"``: a (K, K) int64 array, rows the true class, columns the prediction.
    """
    from . import functional as F

    loss_fn = loss_fn or F.cross_entropy
    was_training = model.training
    model.eval()
    loss_sums, corrects, confusion, count = [], [], None, 0
    try:
        with no_grad():
            for x, y in loader:
                logits = model(x)
                labels = _labels_of(y)
                xp = backend.get_array_module(logits.data)
                loss_sums.append(loss_fn(logits, y).data * len(labels))
                predicted = logits.data.argmax(axis=1)
                corrects.append((predicted == labels).sum())
                count += len(labels)
                if num_classes is not None:
                    pairs = xp.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
                    confusion = pairs if confusion is None else confusion + pairs
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: the loader yielded no images")
    xp = backend.get_array_module(loss_sums[0])
    loss = float(backend.to_numpy(xp.stack(loss_sums)).astype(np.float64).sum()) / count
    acc = int(backend.to_numpy(xp.stack(corrects)).sum()) / count
    result = {"loss": loss, "acc": acc, "count": count}
    if num_classes is not None:
        result["confusion"] = backend.to_numpy(confusion).reshape(num_classes, num_classes).astype(np.int64)
    return result


# --- the trainer ----------------------------------------------------------------
class Trainer:
    """Owns a run: data, model, optimiser, scheduler, the run folder and the loop.

    ``callbacks``: callables ``cb(trainer, epoch, step)`` run after every
    optimiser step (``step`` counts from 1 within the epoch); the tests use one
    to press Ctrl-C at a chosen step. ``loss_fn(logits, labels)`` defaults to
    ``F.cross_entropy``.
    """

    def __init__(self, config, callbacks=(), loss_fn=None, _checkpoint=None):
        from . import functional as F

        self.config = config.resolved()
        self.callbacks = list(callbacks)
        self.loss_fn = loss_fn or F.cross_entropy
        self.run_dir = Path(self.config.out or default_run_dir(self.config))
        if _checkpoint is None and (self.run_dir / "last.ckpt").exists():
            raise FileExistsError(
                f"{self.run_dir} already holds a run (last.ckpt): continue it with "
                f"`minise train --resume {self.run_dir}`, or choose another --out"
            )
        self.config.out = str(self.run_dir)

        import minise

        minise.manual_seed(self.config.seed)
        self.train_set, self.test_set = load_datasets(self.config)
        self.classes = list(self.train_set.classes)
        if _checkpoint is not None and "normalize" in _checkpoint:
            self.mean, self.std = _checkpoint["normalize"]["mean"], _checkpoint["normalize"]["std"]
        else:
            self.mean, self.std = normalization(self.config, self.train_set)
        self.train_loader = make_train_loader(self.config, self.train_set, self.mean, self.std)
        self.test_loader = make_test_loader(self.test_set, self.mean, self.std, self.config.eval_batch_size,
                                            self.config.device)
        in_channels = self.train_set.images.shape[1]
        self.model = build_model(self.config, len(self.classes), in_channels).to(self.config.device)
        self.optimizer = build_optimizer(self.config, self.model.parameters())
        self.steps_per_epoch = len(self.train_loader)
        self.scheduler = build_scheduler(self.config, self.optimizer, self.steps_per_epoch)
        self.named_parameters = list(self.model.named_parameters())

        self.epoch = 0             # completed epochs
        self.global_step = 0       # optimiser steps taken
        self.best_acc = -1.0
        self.best_epoch = 0
        self.metrics = []
        self.grad_health_rows = []
        if _checkpoint is not None:
            self._load_state(_checkpoint)
        self._last_good = self.snapshot()   # what Ctrl-C writes: the state at the last epoch boundary
        self._bar = None

    @classmethod
    def from_checkpoint(cls, path, callbacks=(), loss_fn=None, **overrides):
        """A trainer that continues the run saved in ``path`` (a .ckpt file or a run folder).

        ``overrides`` may change only fields that leave the numbers unchanged:
        device, data_dir, progress, grad_health, and epochs when the run has no
        learning-rate schedule (a schedule is planned for its number of epochs).
        The run folder is the checkpoint's folder.
        """
        from .checkpoint import resolve_checkpoint_path

        path = resolve_checkpoint_path(path)
        state = load_checkpoint(path)
        bad = sorted(set(overrides) - set(RESUME_OVERRIDES))
        if bad:
            raise ValueError(f"resume: cannot change {', '.join(bad)} of a saved run (only {RESUME_OVERRIDES}); "
                             "start a new run with a new --out instead")
        values = dict(state["config"])
        epochs = overrides.get("epochs")
        if epochs is not None and epochs != values["epochs"] and values["schedule"] != "none":
            raise ValueError(
                f"resume: this run's {values['schedule']} learning-rate schedule was planned for "
                f"{values['epochs']} epochs, so it cannot run for {epochs}; start a new run with --epochs {epochs} "
                "(changing the length of a run works with --schedule none)")
        values["out"] = str(path.parent)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(TrainConfig.from_dict(values), callbacks=callbacks, loss_fn=loss_fn, _checkpoint=state)

    # --- state -------------------------------------------------------------------
    def snapshot(self):
        """Everything needed to continue this run, as host (NumPy) copies: a checkpoint dict."""
        return {
            "model": to_host(self.model.state_dict(), copy=True),
            "optimizer": to_host(self.optimizer.state_dict(), copy=True),
            "scheduler": to_host(self.scheduler.state_dict(), copy=True) if self.scheduler else None,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best_acc": self.best_acc,
            "best_epoch": self.best_epoch,
            "rng": {"minise": backend.get_rng_state(),
                    "train_loader": to_host(self.train_loader.state_dict(), copy=True)},
            "config": self.config.to_dict(),
            "metrics": [dict(row) for row in self.metrics],
            "classes": list(self.classes),
            "normalize": {"mean": list(self.mean), "std": list(self.std)},
        }

    def _load_state(self, state):
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        backend.set_rng_state(state["rng"]["minise"])
        self.train_loader.load_state_dict(state["rng"]["train_loader"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.best_acc = float(state["best_acc"])
        self.best_epoch = int(state["best_epoch"])
        self.metrics = [dict(row) for row in state["metrics"]]
        health = self.run_dir / "grad_health.csv"
        if health.exists():  # rows of the interrupted epoch are dropped: it runs again
            with open(health, newline="") as f:
                self.grad_health_rows = [row for row in csv.DictReader(f) if int(row["epoch"]) <= self.epoch]

    @property
    def lr(self):
        return float(self.optimizer.param_groups[0]["lr"])

    # --- the loop ----------------------------------------------------------------
    def fit(self, epochs=None):
        """Train up to ``config.epochs`` (or only ``epochs`` more); returns a :class:`TrainResult`.

        Ctrl-C returns a result with status "interrupted" after saving; a
        non-finite loss raises :class:`NonFiniteLossError`.
        """
        stop = self.config.epochs if epochs is None else min(self.config.epochs, self.epoch + epochs)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / "config.json", json.dumps(self.config.to_dict(), indent=2) + "\n")
        if not (self.run_dir / "last.ckpt").exists():
            save_checkpoint(self._last_good, self.run_dir / "last.ckpt")
        self._print_header()
        try:
            while self.epoch < stop:
                self._run_epoch(self.epoch + 1)
        except KeyboardInterrupt:
            self._close_bar()
            self._save_interrupted()
            return self.result("interrupted")
        except NonFiniteLossError as err:
            self._close_bar()
            raise err.attach(self.run_dir, self._last_good["epoch"]) from None
        if self.epoch >= self.config.epochs:
            self._print(f"done: best test accuracy {100 * self.best_acc:.2f}% at epoch {self.best_epoch}; "
                        f"run folder {self.run_dir}")
        return self.result("finished")

    def result(self, status):
        return TrainResult(self.run_dir, status, self.epoch, self.best_acc, self.best_epoch,
                           [dict(m) for m in self.metrics], self.model)

    def _run_epoch(self, epoch):
        start = time.perf_counter()
        lr = self.lr
        stats = self.train_epoch(epoch)
        test = evaluate(self.model, self.test_loader, loss_fn=self.loss_fn)
        if not math.isfinite(test["loss"]):
            raise NonFiniteLossError(epoch, None, self.global_step, test["loss"], phase="test")
        row = {"epoch": epoch, "lr": lr, "train_loss": stats["loss"], "train_acc": stats["acc"],
               "test_loss": test["loss"], "test_acc": test["acc"], "time_s": time.perf_counter() - start,
               "images_per_s": stats["images_per_s"]}
        self.metrics.append(row)
        self.epoch = epoch
        is_best = test["acc"] > self.best_acc
        if is_best:
            self.best_acc, self.best_epoch = test["acc"], epoch
        snapshot = self.snapshot()
        if is_best:
            save_checkpoint(snapshot, self.run_dir / "best.ckpt")
        save_checkpoint(snapshot, self.run_dir / "last.ckpt")
        self._last_good = snapshot
        self._write_logs(self.metrics, self.grad_health_rows)
        self._print(self._summary(row, is_best))

    def train_epoch(self, epoch):
        """One pass over the training set; returns mean loss, accuracy and images/s.

        Losses and correct counts stay on the device and reach the host once
        every ``sync_every`` steps (for the progress bar and the NaN check).
        """
        self.model.train()
        steps = self.steps_per_epoch
        sync_every = max(1, min(10, steps // 20 or 1))
        self._bar = self._progress(epoch, steps)
        pending_loss, pending_correct, pending_n = [], [], []
        loss_sum, correct, seen = 0.0, 0, 0
        start = time.perf_counter()
        for step, (x, y) in enumerate(self.train_loader, 1):
            labels = _labels_of(y)
            self.optimizer.zero_grad()
            logits = self.model(x)
            loss = self.loss_fn(logits, y)
            loss.backward()
            self.global_step += 1
            health = self.config.grad_health and self.global_step % self.config.grad_health == 0
            before = self._grad_health_before() if health else None
            self.optimizer.step()
            if health:
                self._grad_health_after(epoch, before)
            if self.scheduler is not None:
                self.scheduler.step()
            pending_loss.append(loss.data)
            pending_correct.append((logits.data.argmax(axis=1) == labels).sum())
            pending_n.append(len(labels))
            for callback in self.callbacks:
                callback(self, epoch, step)
            if step % sync_every == 0 or step == steps:
                xp = backend.get_array_module(loss.data)
                losses = backend.to_numpy(xp.stack(pending_loss)).astype(np.float64)
                bad = np.flatnonzero(~np.isfinite(losses))
                if bad.size:
                    first = step - len(losses) + 1 + int(bad[0])
                    raise NonFiniteLossError(epoch, first, self.global_step - step + first, losses[bad[0]])
                loss_sum += float((losses * np.asarray(pending_n)).sum())
                correct += int(backend.to_numpy(xp.stack(pending_correct)).sum())
                seen += sum(pending_n)
                elapsed = time.perf_counter() - start
                if self._bar is not None:
                    self._bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.1f}%",
                                          img_s=f"{seen / elapsed:.0f}", refresh=False)
                    self._bar.update(len(pending_n))
                pending_loss, pending_correct, pending_n = [], [], []
        elapsed = time.perf_counter() - start
        self._close_bar()
        if seen == 0:
            raise ValueError(f"train: the training loader yielded no batch (batch size {self.config.batch_size}, "
                             f"{len(self.train_set)} images)")
        return {"loss": loss_sum / seen, "acc": correct / seen, "images": seen,
                "images_per_s": seen / max(elapsed, 1e-9)}

    # --- gradient health ----------------------------------------------------------
    def _grad_health_before(self):
        """Gradient norms and a copy of every parameter, just before the optimiser step."""
        xp = self.named_parameters[0][1].xp
        norms = [xp.sqrt((p.grad.data.astype(xp.float64) ** 2).sum()) if p.grad is not None
                 else xp.zeros((), xp.float64) for _, p in self.named_parameters]
        return xp.stack(norms), [p.data.copy() for _, p in self.named_parameters]

    def _grad_health_after(self, epoch, before):
        """One row per parameter: grad norm and |update| / |weight|, with one host sync."""
        grad_norms, old = before
        xp = self.named_parameters[0][1].xp
        updates = xp.stack([xp.sqrt(((p.data - w).astype(xp.float64) ** 2).sum())
                            for (_, p), w in zip(self.named_parameters, old)])
        weights = xp.stack([xp.sqrt((p.data.astype(xp.float64) ** 2).sum()) for _, p in self.named_parameters])
        table = backend.to_numpy(xp.stack([grad_norms, updates / xp.maximum(weights, 1e-12)]))
        for (name, _), grad_norm, ratio in zip(self.named_parameters, table[0], table[1]):
            self.grad_health_rows.append({"epoch": epoch, "step": self.global_step, "param": name,
                                          "grad_norm": repr(float(grad_norm)), "update_ratio": repr(float(ratio))})

    # --- files and messages ---------------------------------------------------------
    def _write_logs(self, metrics, grad_health_rows):
        write_metrics(self.run_dir / "metrics.csv", metrics)
        if self.config.grad_health:
            _write_csv(self.run_dir / "grad_health.csv", GRAD_HEALTH_COLUMNS, grad_health_rows)
        if metrics:
            from .plots import plot_curves

            plot_curves(metrics, self.run_dir / "curves.png",
                        title=f"{self.config.model} on {self.config.dataset}")

    def _save_interrupted(self):
        good = self._last_good
        save_checkpoint(good, self.run_dir / "last.ckpt")
        rows = [r for r in self.grad_health_rows if int(r["epoch"]) <= good["epoch"]]
        self._write_logs(good["metrics"], rows)
        done = good["epoch"]
        state = f"the end of epoch {done}" if done else "the initial weights (no epoch had completed)"
        self._print(
            f"\ninterrupted: saved {self.run_dir / 'last.ckpt'} at {state}; the interrupted epoch will "
            f"restart from its beginning.\nresume with:  minise train --resume {self.run_dir / 'last.ckpt'}",
        )

    def _progress(self, epoch, steps):
        if not self.config.progress:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=steps, desc=f"epoch {epoch}/{self.config.epochs}", unit="batch", leave=False,
                    dynamic_ncols=True, file=sys.stderr)

    def _close_bar(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _print(self, text):
        print(text, flush=True)

    def _print_header(self):
        c = self.config
        n_params = sum(p.size for _, p in self.named_parameters)
        schedule = c.schedule + (f" (warmup {c.warmup_epochs:g} epochs)" if c.warmup_epochs and
                                 c.schedule in ("cosine", "step") else "")
        nesterov = " nesterov" if c.nesterov and c.momentum > 0 else ""
        optimizer = c.optimizer + (f" momentum {c.momentum:g}{nesterov}" if c.optimizer == "sgd" else "")
        verb = f"resuming after epoch {self.epoch}" if self.epoch else "training"
        self._print(
            f"{verb}: {c.model} ({n_params:,} parameters) on {c.dataset} "
            f"({len(self.train_set)} train / {len(self.test_set)} test images, {len(self.classes)} classes), "
            f"device {c.device}\n"
            f"  {c.epochs} epochs x {self.steps_per_epoch} steps, batch {c.batch_size}, {optimizer}, lr {c.lr:g}, "
            f"weight decay {c.weight_decay:g}, schedule {schedule}, augment {c.augment}, seed {c.seed}\n"
            f"  run folder: {self.run_dir}"
        )

    def _summary(self, row, is_best):
        width = len(str(self.config.epochs))
        return (f"epoch {row['epoch']:>{width}}/{self.config.epochs}  "
                f"train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:5.2f}%  "
                f"test loss {row['test_loss']:.4f} acc {100 * row['test_acc']:5.2f}%  "
                f"lr {row['lr']:.4g}  {row['time_s']:.1f}s  {row['images_per_s']:.0f} img/s"
                + ("  *best*" if is_best else ""))


def default_run_dir(config):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.model}-{config.dataset}-{stamp}"


def train(config, callbacks=(), loss_fn=None):
    """Train a model as ``config`` says; returns a :class:`TrainResult` (``.model`` is the trained model)."""
    return Trainer(config, callbacks=callbacks, loss_fn=loss_fn).fit()


def resume(path, **overrides):
    """Continue the run saved at ``path`` (run folder or .ckpt); returns a :class:`TrainResult`."""
    return Trainer.from_checkpoint(path, **overrides).fit()


def load_model(path, device="cpu"):
    """``(model, state)``: the model of a checkpoint, rebuilt from its config, weights loaded, eval mode."""
    state = load_checkpoint(path)
    config = TrainConfig.from_dict(state["config"])
    in_channels = _checkpoint_in_channels(state)
    model = build_model(config, len(state["classes"]), in_channels)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), state


def _checkpoint_in_channels(state):
    """The input channels of a checkpoint's model: those of its first conv weight (N, C, kh, kw)."""
    for value in state["model"].values():
        if np.ndim(value) == 4:
            return int(np.shape(value)[1])
    raise ValueError("load_model: the checkpoint's model has no convolution weight to read its input channels from")


# --- metrics files --------------------------------------------------------------------
def _write_csv(path, columns, rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(row[k]) if isinstance(row[k], float) else row[k]) for k in columns})
    atomic_write_text(path, buffer.getvalue())


def write_metrics(path, metrics):
    """Write ``metrics.csv`` (atomically) with the columns :data:`METRIC_COLUMNS`, floats at full precision."""
    _write_csv(path, METRIC_COLUMNS, metrics)


def read_metrics(path):
    """Read a ``metrics.csv`` (or a run folder's) back into a list of dicts of numbers."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in rows]


# --- what SE learns: excitations per class (the paper's Figure 6) --------------------------
@dataclass
class Excitations:
    """Average excitation of every SE block, per class.

    blocks: the SE blocks' module names, in model order.
    means: name -> (K, C) array, the mean gate value of each channel over the images of each class.
    counts: (K,) images per class.  classes: the K class names.
    """

    blocks: list
    means: dict
    counts: np.ndarray
    classes: list

    def mean_all(self, name):
        """(C,) the mean excitation of block ``name`` over every image (all classes together)."""
        counts = self.counts.astype(np.float64)
        return (self.means[name] * counts[:, None]).sum(axis=0) / max(counts.sum(), 1)

    def stage_blocks(self):
        """The last SE block of each stage (the blocks the paper's Figure 6 shows).

        A stage is what comes before a block's index in its name: "layer2.2.se"
        is in stage "layer2"; blocks named without an index are their own stage.
        """
        last = {}
        for name in self.blocks:
            last[_stage_of(name)] = name
        return list(last.values())

    def save(self, path):
        """Write the numbers to ``path`` as .npz (atomically): blocks, classes, counts, and one
        (K, C) array per block under ``"mean:<block name>"``. No pickles."""
        arrays = {"blocks": np.array(self.blocks), "classes": np.array(self.classes),
                  "counts": np.asarray(self.counts)}
        arrays.update({f"mean:{name}": self.means[name] for name in self.blocks})
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as npz:
            blocks = [str(b) for b in npz["blocks"]]
            return cls(blocks, {b: npz[f"mean:{b}"] for b in blocks}, npz["counts"],
                       [str(c) for c in npz["classes"]])


def _stage_of(name):
    parts = name.split(".")
    digits = [i for i, part in enumerate(parts) if part.isdigit()]
    return ".".join(parts[: digits[-1]]) if digits else name


def excitations_per_class(model, loader, num_classes=None, classes=None):
    """Run ``loader`` through ``model`` (eval mode, no_grad) and average every SE block's
    excitation per class. Returns :class:`Excitations`.

    After each batch, each ``nn.SEBlock``'s ``last_excitation`` (N, C) is added
    to its class's row with ``np.add.at``; the sums become means at the end.
    """
    from .nn import SEBlock

    blocks = [(name, m) for name, m in model.named_modules() if isinstance(m, SEBlock)]
    if not blocks:
        raise ValueError(f"excitations_per_class: {type(model).__name__} has no nn.SEBlock; "
                         "use an SE model such as se_resnet20")
    dataset = getattr(loader, "dataset", None)
    if classes is None and dataset is not None:
        classes = list(dataset.classes)
    if num_classes is None:
        if classes is None:
            raise ValueError("excitations_per_class: pass num_classes or classes (the loader has no dataset)")
        num_classes = len(classes)
    classes = classes or [str(k) for k in range(num_classes)]
    sums = {name: np.zeros((num_classes, m.channels)) for name, m in blocks}
    counts = np.zeros(num_classes, dtype=np.int64)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for x, y in loader:
                model(x)
                labels = backend.to_numpy(_labels_of(y))
                np.add.at(counts, labels, 1)
                for name, m in blocks:
                    np.add.at(sums[name], labels, m.last_excitation.astype(np.float64))
    finally:
        model.train(was_training)
    means = {name: s / np.maximum(counts, 1)[:, None] for name, s in sums.items()}
    return Excitations([name for name, _ in blocks], means, counts, list(classes))


# --- the command line: `minise train` and `minise eval` (argparse in minise/cli.py) ---------
CLI_FIELDS = ("model", "dataset", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay",
              "nesterov", "schedule", "warmup_epochs", "augment", "device", "seed", "out", "data_dir",
              "subset", "eval_batch_size", "grad_health", "progress")


def _error(command, exc):
    print(f"minise {command}: error: {exc}", file=sys.stderr)
    return 2


def run_train_command(args):
    """``minise train``: exit status 0 when finished, 130 after Ctrl-C, 1 on a non-finite loss, 2 on bad input."""
    given = {name: getattr(args, name) for name in CLI_FIELDS if getattr(args, name, None) is not None}
    try:
        if args.resume is not None:
            path = args.resume or given.get("out")
            if not path:
                return _error("train", "--resume needs a checkpoint or run folder: "
                                       "--resume RUN_DIR/last.ckpt, or --resume --out RUN_DIR")
            state = load_checkpoint(path)
            planned = given.get("epochs", state["config"]["epochs"])
            if state["epoch"] >= planned:
                longer = ("pass --epochs N to train longer" if state["config"]["schedule"] == "none" else
                          "its learning-rate schedule has ended; start a new run to train longer")
                print(f"{Path(path)} already completed {state['epoch']} of {planned} epochs; {longer}")
                return 0
            ignored = sorted(set(given) - set(RESUME_OVERRIDES) - {"out"})
            if ignored:
                print(f"note: resuming uses the run's saved settings; ignoring --{', --'.join(ignored)}".replace(
                    "_", "-"))
            trainer = Trainer.from_checkpoint(path, **{k: v for k, v in given.items() if k in RESUME_OVERRIDES})
        else:
            trainer = Trainer(TrainConfig(**given))
    except (ValueError, TypeError, OSError, backend.DeviceError) as exc:
        return _error("train", exc)
    except KeyboardInterrupt:
        print("\ninterrupted before the first epoch started: nothing was saved", file=sys.stderr)
        return 130
    try:
        result = trainer.fit()
    except NonFiniteLossError as exc:
        _error("train", exc)
        return 1
    if result.status == "interrupted":
        return 130
    commands = [(f"minise eval {result.run_dir / 'best.ckpt'}", "accuracy and confusion matrix"),
                (f"minise plot {result.run_dir}", "redraw curves.png"),
                (f"minise plot --excitations {result.run_dir}", "what the SE blocks learned")]
    width = max(len(command) for command, _ in commands)
    for i, (command, what) in enumerate(commands):
        print(f"{'next:' if i == 0 else '':<6} {command:<{width}}   # {what}")
    return 0


def checkpoint_test_loader(state, device="cpu", dataset=None, data_dir=None, subset=None, batch_size=256):
    """The test split a checkpoint was trained for (or ``dataset``), normalised as in training.

    ``subset``: the first N test images; by default the run's own ``subset``, 0 for all of them.
    """
    config = TrainConfig.from_dict(state["config"])
    config.dataset = dataset or config.dataset
    config.data_dir = data_dir or config.data_dir
    if subset is not None:  # default: the run's own subset; 0 means the whole test set
        config.subset = subset or None
    test_set = load_dataset(config, train=False)
    if len(test_set.classes) != len(state["classes"]):
        raise ValueError(f"the checkpoint's model has {len(state['classes'])} classes, "
                         f"{config.dataset} has {len(test_set.classes)}")
    norm = state.get("normalize") or dict(zip(("mean", "std"), normalization(config, load_dataset(config))))
    return make_test_loader(test_set, norm["mean"], norm["std"], batch_size, device)


def format_confusion(matrix, classes):
    """The confusion matrix as text: rows true classes, columns predictions (numbered as the rows)."""
    k = len(classes)
    name_width = max(len(c) for c in classes)
    cell = max(4, len(str(int(matrix.max()))) + 1)
    lines = [" " * (name_width + 6) + "".join(f"{j:>{cell}}" for j in range(k)) + "   <- predicted",
             " " * (name_width + 6) + "-" * (cell * k)]
    for i, name in enumerate(classes):
        recall = matrix[i, i] / max(matrix[i].sum(), 1)
        lines.append(f"{i:>2} {name:<{name_width}} | " + "".join(f"{int(v):>{cell}}" for v in matrix[i])
                     + f"   {100 * recall:5.1f}%")
    return "\n".join(lines)


def run_eval_command(args):
    """``minise eval CKPT``: test accuracy and confusion matrix (printed and plotted)."""
    from .plots import plot_confusion_matrix

    ckpt = Path(args.checkpoint)
    ckpt = ckpt / "best.ckpt" if ckpt.is_dir() else ckpt
    try:
        model, state = load_model(ckpt, device=args.device)
        loader = checkpoint_test_loader(state, args.device, args.dataset, args.data_dir, args.subset,
                                        args.batch_size)
    except (ValueError, TypeError, OSError, backend.DeviceError) as exc:
        return _error("eval", exc)
    classes = list(state["classes"])
    result = evaluate(model, loader, num_classes=len(classes))
    config = state["config"]
    dataset = args.dataset or config["dataset"]
    print(f"{config['model']} after epoch {state['epoch']} on the {dataset} test set ({result['count']} images): "
          f"accuracy {100 * result['acc']:.2f}%, loss {result['loss']:.4f}")
    print("\nconfusion matrix (rows: true class, columns: predicted; right: per-class accuracy)")
    print(format_confusion(result["confusion"], classes))
    out = Path(args.out) if args.out else ckpt.with_name(f"{ckpt.stem}-confusion.png")
    if out.is_dir():
        out = out / f"{ckpt.stem}-confusion.png"
    plot_confusion_matrix(result["confusion"], classes, out,
                          title=f"{config['model']} on {dataset}: {100 * result['acc']:.2f}% test accuracy")
    print(f"\nwrote {out}")
    return 0
