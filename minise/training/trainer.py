"""The Trainer: owns a run (data, model, optimiser, scheduler, run folder) and runs the loop.

The run folder (``runs/<model>-<dataset>-<time>`` unless ``out`` is given) holds

- ``config.json``: the resolved configuration;
- ``metrics.csv``: one row per epoch: epoch, lr (at the epoch's start),
  train_loss, train_acc, test_loss, test_acc (accuracies are fractions),
  time_s, images_per_s (training images per second);
- ``lr.csv``: one row per optimiser step: step (counted over the run), epoch,
  lr (the learning rate that step used), what the curves' learning-rate panel draws;
- ``last.ckpt`` (after every epoch) and ``best.ckpt`` (highest test accuracy);
- ``curves.png`` when a log writer draws it (``minise train`` passes
  ``minise.viz.write_curves``): loss, accuracy and learning rate;
- ``grad_health.csv`` with ``grad_health=N``: every N optimiser steps, each
  parameter's gradient norm and update/weight ratio ``||w_after - w_before|| /
  ||w_before||`` (NaN for an all-zero weight), measured by ``debug.GradientMonitor``.

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
beginning on resume, which is what keeps resuming bit-identical. A second Ctrl-C
during that save is honoured: the save stops, and being atomic it leaves the
files as they were.

**A non-finite loss** stops the run with :class:`NonFiniteLossError`, naming the
epoch and the step; so do parameters or buffers that became NaN or infinite
(checked at every epoch boundary, before saving: :class:`NonFiniteStateError`).
The checkpoints on disk are those of the last good epoch; a non-finite state is
never saved, as ``last.ckpt`` nor as ``best.ckpt``.

**A checkpoint is data, never instructions.** Resuming takes the model, the
optimiser, the schedule and the numbers from the checkpoint, but never a place:
the data folder comes from the caller (``data_dir``, ``$MINISE_DATA`` or the
default cache), and the dataset the checkpoint names is not downloaded unless
the caller allows it (``download=True``). A checkpoint whose optimiser or
scheduler state does not fit the run it describes (no scheduler state for a
scheduled run, state for another schedule, a different number of steps per
epoch) is refused with :class:`~minise.io.checkpoint.CheckpointError`.
"""


import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .. import backend
from .. import functional as F
from ..debug.grad_health import GRAD_HEALTH_COLUMNS, GRAD_HEALTH_TYPES, GradientMonitor
from ..io.atomic import atomic_write_text
from ..io.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint_path, save_checkpoint, to_host
from ..io.text import describe_damage, read_log_rows
from .builders import (
    build_model,
    build_optimizer,
    build_scheduler,
    load_datasets,
    make_test_loader,
    make_train_loader,
    normalization,
)
from .checks import check_finite_state, check_fits, non_finite_entries
from .config import RESUME_OVERRIDES, NonFiniteLossError, NonFiniteStateError, TrainConfig, TrainResult, default_run_dir
from .evaluate import _labels_of, evaluate
from .metrics import LR_COLUMNS, LR_TYPES, _write_csv, logs_lag, refuse_irregular_metrics, write_metrics


class Trainer:
    """Owns a run: data, model, optimiser, scheduler, the run folder and the loop.

    ``callbacks``: callables ``cb(trainer, epoch, step)`` run after every
    optimiser step (``step`` counts from 1 within the epoch); the tests use one
    to press Ctrl-C at a chosen step. ``loss_fn(logits, labels)`` defaults to
    ``F.cross_entropy``. ``log_writers``: callables ``writer(trainer, metrics)``
    run each time the run's logs are written (after every epoch, and on Ctrl-C),
    e.g. ``minise.viz.write_curves``, which draws ``curves.png``: the training
    layer itself draws nothing. ``download``: fetch a missing dataset (as
    ``minise train`` does); :meth:`from_checkpoint` passes False unless told.
    """

    def __init__(self, config, callbacks=(), loss_fn=None, log_writers=(), download=True, _checkpoint=None,
                 _checkpoint_path=None):
        self.config = config.resolved()
        self.callbacks = list(callbacks)
        self.log_writers = list(log_writers)
        self.loss_fn = loss_fn or F.cross_entropy
        self.run_dir = Path(self.config.out or default_run_dir(self.config))
        if _checkpoint is None and (self.run_dir / "last.ckpt").exists():
            raise FileExistsError(
                f"{self.run_dir} already holds a run (last.ckpt): continue it with "
                f"`minise train --resume {self.run_dir}`, or choose another --out"
            )
        self.config.out = str(self.run_dir)

        backend.manual_seed(self.config.seed)
        self._checkpoint_path = _checkpoint_path
        try:
            self.train_set, self.test_set = load_datasets(self.config, download=download)
        except FileNotFoundError as exc:
            if download or self.config.dataset == "embedded":
                raise
            raise FileNotFoundError(
                f"{exc} (minise does not download a dataset because a checkpoint names it; "
                f"`minise train --resume ... --dataset {self.config.dataset}` allows the download)") from None
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
        self.grad_monitor = GradientMonitor(self.named_parameters)   # grad_health.csv's numbers

        self.epoch = 0             # completed epochs
        self.global_step = 0       # optimiser steps taken
        self.best_acc = -1.0
        self.best_epoch = 0
        self.metrics = []
        self.grad_health_rows = []
        self.lr_rows = []          # one per optimiser step: step, epoch, lr (lr.csv)
        if _checkpoint is not None:
            self._load_state(_checkpoint)
        self._last_good = self.snapshot()   # what Ctrl-C writes: the state at the last epoch boundary
        self._bar = None

    @classmethod
    def from_checkpoint(cls, path, callbacks=(), loss_fn=None, log_writers=(), download=False, **overrides):
        """A trainer that continues the run saved in ``path`` (a .ckpt file or a run folder).

        ``overrides`` may change only fields that leave the numbers unchanged:
        device, data_dir, progress, grad_health, and epochs when the run has no
        learning-rate schedule (a schedule is planned for its number of epochs).
        The run folder is the checkpoint's folder. The data folder is
        ``data_dir`` (default ``$MINISE_DATA`` or the cache), never the one
        saved in the checkpoint; ``download``: fetch the run's dataset if missing.
        Raises CheckpointError / SerializationError for a checkpoint that is
        damaged or does not fit the run it describes, and CheckpointError for a
        log of the run folder (metrics.csv, lr.csv, grad_health.csv) that is
        damaged or no regular file (both "a bad file": exit 3 on the command line).
        """
        path = resolve_checkpoint_path(path)
        state = load_checkpoint(path)
        bad = sorted(set(overrides) - set(RESUME_OVERRIDES))
        if bad:
            raise ValueError(f"resume: cannot change {', '.join(bad)} of a saved run (only {RESUME_OVERRIDES}); "
                             "start a new run with a new --out instead")
        values = dict(state["config"])
        wrong_length = TrainConfig.resume_epochs_error(values, overrides.get("epochs"))
        if wrong_length:
            raise ValueError(wrong_length)
        values["out"] = str(path.parent)
        values["data_dir"] = None  # a place to read (or download into) comes from the caller, never the file
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = TrainConfig.from_dict(values)
        config._given = frozenset()  # the run's own settings, checked when it started: none was set for this resume
        return cls(config, callbacks=callbacks, loss_fn=loss_fn, log_writers=log_writers,
                   download=download, _checkpoint=state, _checkpoint_path=path)

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
        path = self._checkpoint_path or "<checkpoint>"
        check_fits(state, path, self.config.schedule, self.optimizer, self.scheduler, self.steps_per_epoch)
        part = "model"
        try:
            self.model.load_state_dict(state["model"])
            part = "optimizer"
            self.optimizer.load_state_dict(state["optimizer"])
            part = "scheduler"
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            part = "random generators"
            backend.set_rng_state(state["rng"]["minise"])
            self.train_loader.load_state_dict(state["rng"]["train_loader"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            raise CheckpointError(f"checkpoint {path}: cannot restore the {part}: "
                                  f"{type(exc).__name__}: {exc}") from None
        check_finite_state(self.model, self.optimizer, path)
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.best_acc = float(state["best_acc"])
        if not (self.best_acc == -1.0 or 0.0 <= self.best_acc <= 1.0):    # -1: no epoch yet; NaN fails here
            raise CheckpointError(f"checkpoint {path}: best_acc is {self.best_acc!r}, expected an accuracy "
                                  "in [0, 1] (or -1 before the first epoch); the file is damaged or was edited")
        self.best_epoch = int(state["best_epoch"])
        self.metrics = [dict(row) for row in state["metrics"]]
        # rows of the interrupted epoch are dropped: it runs again
        refuse_irregular_metrics(self.run_dir)          # a device, a pipe, a folder: CheckpointError
        self.grad_health_rows = self._read_rows(self.run_dir / "grad_health.csv", GRAD_HEALTH_TYPES)
        self.lr_rows = self._read_rows(self.run_dir / "lr.csv", LR_TYPES)

    def _read_rows(self, path, types):
        """The rows of one of the run's per-step CSV files up to the last completed epoch ([] if absent);
        ``types``: its columns and what each value must be."""
        if not path.exists():
            return []
        try:   # a regular file of a sane size, its header, every row whole and numbers where they belong
            rows = read_log_rows(path, types)
        except (ValueError, csv.Error) as exc:
            raise CheckpointError(f"{describe_damage(path, exc)}; move it away to resume (its rows are not in "
                                  "the checkpoint: the resumed run starts the file again)") from None
        return [row for row in rows if row["epoch"] <= self.epoch]

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
        elif logs_lag(self.run_dir, self.metrics):  # a crash came between last.ckpt and metrics.csv
            self._write_logs(self.metrics, self.grad_health_rows, self.lr_rows)
        self._print_header()
        try:
            while self.epoch < stop:
                self._run_epoch(self.epoch + 1)
        except KeyboardInterrupt:
            self._close_bar()
            try:
                self._save_interrupted()
            except KeyboardInterrupt:  # a second Ctrl-C: honoured; the atomic save left the old files whole
                self._print(f"\ninterrupted again while saving: {self.run_dir} keeps its files as they were")
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
        bad = non_finite_entries(self.model)
        if bad:
            raise NonFiniteStateError(epoch, bad)
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
        self._write_logs(self.metrics, self.grad_health_rows, self.lr_rows)
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
            self.lr_rows.append({"step": self.global_step, "epoch": epoch, "lr": self.lr})
            health = self.config.grad_health and self.global_step % self.config.grad_health == 0
            if health:
                self.grad_monitor.before_step()
            self.optimizer.step()
            if health:
                self._grad_health_rows(epoch)
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
                if self._bar is not None:  # one speed: images/s since the epoch began (the bar's ETA uses it too)
                    rate = seen / max(time.perf_counter() - start, 1e-9)
                    self._bar.set_postfix_str(f"loss {loss_sum / seen:.4f}, acc {100 * correct / seen:.1f}%, "
                                              f"{rate:.0f} img/s", refresh=False)
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
    def _grad_health_rows(self, epoch):
        """grad_health.csv's rows for this step: the GradientMonitor's records (debug.grad_health),
        one per parameter with a gradient; one host sync."""
        for r in self.grad_monitor.after_step(epoch, self.global_step):
            self.grad_health_rows.append({"epoch": r.epoch, "step": r.step, "param": r.param,
                                          "grad_norm": repr(r.grad_norm), "update_ratio": repr(r.update_ratio)})
        self.grad_monitor.records.clear()     # the rows above are the run's record (and survive a resume)

    # --- files and messages ---------------------------------------------------------
    def _write_logs(self, metrics, grad_health_rows, lr_rows):
        write_metrics(self.run_dir / "metrics.csv", metrics)
        _write_csv(self.run_dir / "lr.csv", LR_COLUMNS, lr_rows)
        if self.config.grad_health:
            _write_csv(self.run_dir / "grad_health.csv", GRAD_HEALTH_COLUMNS, grad_health_rows)
        for writer in self.log_writers:
            writer(self, metrics)

    def _save_interrupted(self):
        good = self._last_good
        save_checkpoint(good, self.run_dir / "last.ckpt")
        done = good["epoch"]
        self._write_logs(good["metrics"], [r for r in self.grad_health_rows if int(r["epoch"]) <= done],
                         [r for r in self.lr_rows if int(r["epoch"]) <= done])
        state = f"the end of epoch {done}" if done else "the initial weights (no epoch had completed)"
        self._print(
            f"\ninterrupted: saved {self.run_dir / 'last.ckpt'} at {state}; the interrupted epoch will "
            f"restart from its beginning.\nresume with:  minise train --resume {self.run_dir / 'last.ckpt'}",
        )

    def _progress(self, epoch, steps):
        """A tqdm bar over the epoch's batches, or None: with progress off, or when stderr is not a terminal
        (a log file would get one carriage-return line per update)."""
        if not self.config.progress or not getattr(sys.stderr, "isatty", lambda: False)():
            return None
        from tqdm import tqdm

        # smoothing=0: the ETA uses the average speed, the same one the bar prints as img/s
        return tqdm(total=steps, desc=f"epoch {epoch}/{self.config.epochs}", leave=False, dynamic_ncols=True,
                    file=sys.stderr, smoothing=0,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} batches "
                               "[{elapsed}<{remaining}{postfix}]")

    def _close_bar(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _print(self, text):
        print(text, flush=True)

    def _print_header(self):
        c = self.config
        n_params = sum(p.numel() for _, p in self.named_parameters)
        schedule = TrainConfig.describe_schedule(c.schedule, c.warmup_epochs)
        nesterov = " nesterov" if c.nesterov and c.momentum > 0 else ""
        momentum = TrainConfig.describe_momentum(c.schedule, c.momentum)
        optimizer = c.optimizer + (f" momentum {momentum}{nesterov}" if c.optimizer == "sgd" else "")
        steps = f"{self.steps_per_epoch} step{'' if self.steps_per_epoch == 1 else 's'}"
        verb = f"resuming after epoch {self.epoch}" if self.epoch else "training"
        self._print(
            f"{verb}: {c.model} ({n_params:,} parameters) on {c.dataset} "
            f"({len(self.train_set)} train / {len(self.test_set)} test images, {len(self.classes)} classes), "
            f"device {c.device}\n"
            f"  {c.epochs} epoch{'' if c.epochs == 1 else 's'} x {steps}, batch {c.batch_size}, "
            f"{optimizer}, lr {c.lr:g}, "
            f"weight decay {c.weight_decay:g}, schedule {schedule}, augment {c.augment}, seed {c.seed}\n"
            f"  run folder: {self.run_dir}"
        )

    def _summary(self, row, is_best):
        """The epoch's line; its ``lr`` is the range the learning rate took over the epoch's steps."""
        width = len(str(self.config.epochs))
        rates = [float(r["lr"]) for r in self.lr_rows if int(r["epoch"]) == row["epoch"]] or [row["lr"]]
        lr = f"{min(rates):.4g}" if min(rates) == max(rates) else f"{min(rates):.3g}..{max(rates):.3g}"
        return (f"epoch {row['epoch']:>{width}}/{self.config.epochs}  "
                f"train loss {row['train_loss']:.4f} acc {100 * row['train_acc']:5.2f}%  "
                f"test loss {row['test_loss']:.4f} acc {100 * row['test_acc']:5.2f}%  "
                f"lr {lr}  {row['time_s']:.1f}s  {row['images_per_s']:.0f} img/s"
                + ("  *best*" if is_best else ""))
