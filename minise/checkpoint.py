"""Run folders that survive a crash: atomic writes and training checkpoints.

Every file the trainer writes goes through :func:`atomic_path`: the content is
written to a temporary file in the same folder, then ``os.replace`` renames it
over the old one. A rename within one folder is atomic, so a crash, a full
disk or a Ctrl-C leaves either the old file or the new one, never half of
each.

A checkpoint is one dict saved with ``ms.save`` (which never pickles code)::

    {"format": "minise-checkpoint", "version": 1,
     "model": model.state_dict(), "optimizer": ..., "scheduler": ... or None,
     "epoch": completed epochs, "global_step": optimiser steps so far,
     "best_acc": ..., "best_epoch": ...,
     "rng": {"minise": ..., "train_loader": ...},
     "config": the TrainConfig as a dict, "metrics": one dict per epoch,
     "classes": the dataset's class names}
"""

import contextlib
import os
from pathlib import Path

import numpy as np

from . import backend

__all__ = [
    "CHECKPOINT_FORMAT",
    "atomic_path",
    "atomic_write_text",
    "to_host",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint_path",
]

CHECKPOINT_FORMAT = "minise-checkpoint"
CHECKPOINT_VERSION = 1


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    If the body raises (or is interrupted), the temporary file is removed and
    ``path`` is untouched::

        with atomic_path("run/curves.png") as tmp:
            fig.savefig(tmp, format="png")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically (temp file, flush, fsync, rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def to_host(obj, copy=False):
    """``obj`` with every NumPy/CuPy array (and Tensor) turned into a NumPy array.

    Walks dicts, lists and tuples. ``copy=True`` also copies NumPy arrays, so
    the result is a snapshot that later in-place updates of the model do not
    change (the trainer keeps one of the last completed epoch for Ctrl-C).
    """
    from .autograd import Tensor

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
    import minise as ms

    state = dict(state, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ms.save(to_host(state), str(path))


def load_checkpoint(path):
    """Load a checkpoint saved by :func:`save_checkpoint`, checking that it is one."""
    import minise as ms

    path = resolve_checkpoint_path(path)
    state = ms.load(str(path))
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
