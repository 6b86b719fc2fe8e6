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

The run folder, resuming, Ctrl-C and the NaN stop are described in
``minise/training/trainer.py``.
"""

from .analysis.excitations import Excitations, excitations_per_class
from .training import *  # noqa: F403
from .training import __all__ as _training_names

__all__ = list(_training_names) + ["Excitations", "excitations_per_class"]
