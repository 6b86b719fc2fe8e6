"""Training checkpoints: what a run saves after each epoch, and how it is read back.

A checkpoint is one dict saved with ``ms.save`` (which never pickles code)::

    {"format": "minise-checkpoint", "version": 1,
     "model": model.state_dict(), "optimizer": ..., "scheduler": ... or None,
     "epoch": completed epochs, "global_step": optimiser steps so far,
     "best_acc": ..., "best_epoch": ...,
     "rng": {"minise": ..., "train_loader": ...},
     "config": the TrainConfig as a dict, "metrics": one dict per epoch,
     "classes": the dataset's class names}
"""

from pathlib import Path

import numpy as np

from .. import backend
from ..tensor import Tensor
from .serialization import load, save

__all__ = [
    "CHECKPOINT_FORMAT",
    "to_host",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint_path",
]

CHECKPOINT_FORMAT = "minise-checkpoint"
CHECKPOINT_VERSION = 1


def to_host(obj, copy=False):
    """``obj`` with every NumPy/CuPy array (and Tensor) turned into a NumPy array.

    Walks dicts, lists and tuples. ``copy=True`` also copies NumPy arrays, so
    the result is a snapshot that later in-place updates of the model do not
    change (the trainer keeps one of the last completed epoch for Ctrl-C).
    """
    if isinstance(obj, Tensor):
        obj = obj.data
    if backend.is_array(obj):
        array = backend.to_numpy(obj)
        return array.copy() if copy and array is obj else array
    if isinstance(obj, dict):
        return {key: to_host(value, copy) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_host(value, copy) for value in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save_checkpoint(state, path):
    """Save a checkpoint dict with ``ms.save`` (atomic: temp file + rename)."""
    state = dict(state, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save(to_host(state), str(path))


def load_checkpoint(path):
    """Load a checkpoint saved by :func:`save_checkpoint`, checking that it is one."""
    path = resolve_checkpoint_path(path)
    state = load(str(path))
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"load_checkpoint: {path} is not a minise training checkpoint "
            f"(expected a dict with format={CHECKPOINT_FORMAT!r})"
        )
    return state


def resolve_checkpoint_path(path):
    """A checkpoint file from a path that may also name a run folder (-> its last.ckpt)."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}: pass a run folder holding last.ckpt, or a .ckpt file"
        )
    return path
