"""Training checkpoints: what a run saves after each epoch, and how it is read back.

A checkpoint is one dict saved with ``ms.save`` (which never pickles code)::

    {"format": "minise-checkpoint", "version": 1,
     "model": model.state_dict(), "optimizer": ..., "scheduler": ... or None,
     "epoch": completed epochs, "global_step": optimiser steps so far,
     "best_acc": ..., "best_epoch": ...,
     "rng": {"minise": ..., "train_loader": ...},
     "config": the TrainConfig as a dict, "metrics": one dict per epoch,
     "classes": the dataset's class names, "normalize": {"mean": [...], "std": [...]}}

:func:`load_checkpoint` checks that shape (:data:`SCHEMA`) before anything
uses it: a missing key or a value of the wrong type raises
:class:`CheckpointError` naming the file and the key, never a KeyError later.
"""

import os
import stat
from pathlib import Path

import numpy as np

from .. import backend
from ..tensor import Tensor
from .serialization import load, save

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "SCHEMA",
    "validate_checkpoint",
    "to_host",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint_path",
    "not_regular",
    "refuse_non_regular",
]

CHECKPOINT_FORMAT = "minise-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A file ``ms.load`` can read that is not a usable training checkpoint: a key missing or of the wrong type."""


_NUMBER = (int, float)
# key -> the types its value may have (None: the value may be None); bool is never an int here
SCHEMA = {
    "format": (str,), "version": (int,),
    "model": (dict,), "optimizer": (dict,), "scheduler": (dict, None),
    "epoch": (int,), "global_step": (int,), "best_acc": _NUMBER, "best_epoch": (int,),
    "rng": (dict,), "config": (dict,), "metrics": (list,), "classes": (list,),
}
OPTIONAL = {"normalize": (dict,)}
CONFIG_SCHEMA = {"model": (str,), "dataset": (str,), "epochs": (int,), "schedule": (str,), "seed": (int,)}


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
    """Load a checkpoint saved by :func:`save_checkpoint` and check it against :data:`SCHEMA`.

    Raises SerializationError when ``ms.load`` cannot read the file,
    :class:`CheckpointError` when it reads but is not a usable checkpoint or when
    ``path`` is a device, a pipe or a socket (:func:`refuse_non_regular`), and
    FileNotFoundError when there is no file (or a broken link).
    """
    path = resolve_checkpoint_path(path)
    state = load(str(path))
    validate_checkpoint(state, path)
    return state


def _type_ok(value, types):
    if value is None:
        return None in types
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, tuple(t for t in types if t is not None))


def _type_names(types):
    return " or ".join("None" if t is None else t.__name__ for t in types)


def _check_key(state, key, types, where, path):
    if key not in state:
        raise CheckpointError(f"checkpoint {path}: {where} has no {key!r}: the file is damaged or not a "
                              "complete minise training checkpoint")
    value = state[key]
    if not _type_ok(value, types):
        raise CheckpointError(f"checkpoint {path}: {where}[{key!r}] must be {_type_names(types)}, "
                              f"got {type(value).__name__}")
    return value


def validate_checkpoint(state, path="<checkpoint>"):
    """Check the keys and value types of a loaded training checkpoint; raise :class:`CheckpointError` if wrong.

    Checks :data:`SCHEMA` (required keys and types), the format and version,
    ``config``'s essential fields, that the model state holds only arrays under
    string keys, that ``classes`` are strings, that ``rng`` holds both
    generators' states, and that ``metrics`` has one row (a dict) per completed epoch.
    """
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"load_checkpoint: {path} is not a minise training checkpoint "
                              f"(expected a dict with format={CHECKPOINT_FORMAT!r})")
    for key, types in SCHEMA.items():
        _check_key(state, key, types, "the checkpoint", path)
    for key, types in OPTIONAL.items():
        if key in state:
            _check_key(state, key, types, "the checkpoint", path)
    if state["version"] != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has version {state['version']}; this minise reads "
                              f"version {CHECKPOINT_VERSION}")
    for key, types in CONFIG_SCHEMA.items():
        _check_key(state["config"], key, types, "config", path)
    for key in ("minise", "train_loader"):
        _check_key(state["rng"], key, (dict,), "rng", path)
    for name, value in state["model"].items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise CheckpointError(f"checkpoint {path}: model[{name!r}] must be an array under a string key, "
                                  f"got {type(value).__name__}")
    if not state["classes"] or not all(isinstance(c, str) for c in state["classes"]):
        raise CheckpointError(f"checkpoint {path}: classes must be a non-empty list of strings")
    for key in ("epoch", "global_step", "best_epoch"):
        if state[key] < 0:
            raise CheckpointError(f"checkpoint {path}: {key} must be >= 0, got {state[key]}")
    metrics = state["metrics"]
    if len(metrics) != state["epoch"] or not all(isinstance(row, dict) for row in metrics):
        raise CheckpointError(f"checkpoint {path}: metrics must be one dict per completed epoch "
                              f"({state['epoch']}), got {len(metrics)} rows")
    if "normalize" in state:
        for key in ("mean", "std"):
            values = _check_key(state["normalize"], key, (list, tuple), "normalize", path)
            if not all(_type_ok(v, _NUMBER) for v in values):
                raise CheckpointError(f"checkpoint {path}: normalize[{key!r}] must be a list of numbers")


def not_regular(path):
    """What ``path`` is when something is there but it is not a regular file: ``"a device (a link to
    /dev/zero)"``, ``"a folder"``, ``"a pipe"``, ``"a socket"``, ``"a broken link (to x)"``; None when it is
    a regular file (or a link to one) or nothing is there."""
    if not os.path.lexists(path) or os.path.isfile(path):
        return None
    link = f" (a link to {os.readlink(path)})" if os.path.islink(path) else ""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return f"a broken link (to {os.readlink(path)})" if link else "not readable"
    kind = ("a folder" if stat.S_ISDIR(mode) else "a pipe" if stat.S_ISFIFO(mode) else
            "a socket" if stat.S_ISSOCK(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    return kind + link


def refuse_non_regular(path, folder_rule, folder_ok=True):
    """Raise when something is at ``path`` but it is no regular file (nor a folder, when ``folder_ok``: a
    path that may name a run folder). A device (a link to /dev/zero, which could be read forever), a
    pipe, a socket, a folder: :class:`CheckpointError` saying what it is; a broken link:
    FileNotFoundError. Each names ``path`` as given and what to pass (``folder_rule``: which checkpoint
    of a run folder is read, e.g. "(its last.ckpt)")."""
    kind = not_regular(path)
    if kind is not None and not (folder_ok and Path(path).is_dir()):
        if kind.startswith("a broken link"):
            raise FileNotFoundError(f"no checkpoint at {path}: it is {kind}")
        raise CheckpointError(f"{path} is {kind}, not a regular file: pass a .ckpt file minise wrote, or a run "
                              f"folder {folder_rule}")


def resolve_checkpoint_path(path):
    """A checkpoint file from a path that may also name a run folder (-> its last.ckpt).

    Raises FileNotFoundError when there is none (or a broken link), CheckpointError when something
    is there but it is no checkpoint file: a device, a pipe, a socket (:func:`refuse_non_regular`), a
    folder where the checkpoint should be, a folder named ``*.ckpt`` holding no last.ckpt."""
    path = Path(path)
    if path.is_dir():
        if path.suffix == ".ckpt" and not os.path.lexists(path / "last.ckpt"):
            raise CheckpointError(f"{path} is a folder, not a checkpoint file, and holds no last.ckpt: pass a "
                                  ".ckpt file minise wrote, or a run folder")
        path = path / "last.ckpt"
    refuse_non_regular(path, "(its last.ckpt)", folder_ok=False)   # a folder at last.ckpt: not "no checkpoint at"
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}: pass a run folder holding last.ckpt, or a .ckpt file"
        )
    return path
