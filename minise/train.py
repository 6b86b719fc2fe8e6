"""The training API under its first name: ``minise.train`` = ``minise.training`` + the excitation analysis.

The code lives in ``minise/training/`` (one file per idea) and
``minise/analysis/excitations.py``; this module only gathers the names, so that
``from minise.train import TrainConfig, train`` keeps working.

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
- ``lr.csv``: one row per optimiser step: step, epoch, lr (the learning rate it used);
- ``last.ckpt`` (after every epoch) and ``best.ckpt`` (highest test accuracy);
- ``curves.png`` (drawn by ``minise train``, or by passing
  ``log_writers=[minise.viz.write_curves]``): loss, accuracy and learning rate;
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

from .analysis.excitations import Excitations, excitations_per_class
from .training import *  # noqa: F403
from .training import __all__ as _training_names

__all__ = list(_training_names) + ["Excitations", "excitations_per_class"]
