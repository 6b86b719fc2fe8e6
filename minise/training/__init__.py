"""Training: the run configuration, the Trainer loop, evaluation, run folders and metrics.

    from minise.training import TrainConfig, train
    result = train(TrainConfig(model="se_resnet20", dataset="embedded"))

- ``config.py``: TrainConfig, the per-dataset defaults, TrainResult, NonFiniteLossError;
- ``builders.py``: datasets, loaders, model, optimiser and scheduler from a config;
- ``trainer.py``: the Trainer (the loop, checkpoints, resume, Ctrl-C);
- ``evaluate.py``: loss, accuracy, confusion matrix;
- ``metrics.py``: metrics.csv;
- ``runs.py``: train / resume / load a saved run.

``minise.train`` is the same API under its first name (kept: tutorials and
scripts import it), plus the SE excitation analysis of ``minise.analysis``.
"""

from ..debug.grad_health import GRAD_HEALTH_COLUMNS
from .builders import (
                       build_model,
                       build_optimizer,
                       build_scheduler,
                       load_dataset,
                       load_datasets,
                       make_test_loader,
                       make_train_loader,
                       normalization,
)
from .config import (
                       AUGMENTATIONS,
                       DATASET_DEFAULTS,
                       DATASETS,
                       METRIC_COLUMNS,
                       OPTIMIZERS,
                       RESUME_OVERRIDES,
                       SCHEDULES,
                       NonFiniteLossError,
                       NonFiniteStateError,
                       TrainConfig,
                       TrainResult,
                       default_run_dir,
)
from .evaluate import evaluate, format_confusion
from .metrics import read_lr, read_metrics, write_metrics
from .runs import checkpoint_test_loader, find_checkpoint, load_model, resume, train
from .trainer import Trainer

__all__ = [
    "DATASETS", "OPTIMIZERS", "SCHEDULES", "AUGMENTATIONS", "DATASET_DEFAULTS", "METRIC_COLUMNS",
    "GRAD_HEALTH_COLUMNS", "RESUME_OVERRIDES", "TrainConfig", "TrainResult", "Trainer", "NonFiniteLossError",
    "NonFiniteStateError", "train", "resume", "evaluate", "format_confusion", "load_model", "find_checkpoint",
    "checkpoint_test_loader", "load_dataset", "load_datasets", "normalization", "make_train_loader",
    "make_test_loader", "build_model", "build_optimizer", "build_scheduler", "read_metrics", "read_lr",
    "write_metrics", "default_run_dir",
]
