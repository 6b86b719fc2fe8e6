"""Runs as a whole: train, resume, and load a saved run's model or test set."""

import os
from pathlib import Path

import numpy as np

from ..io.checkpoint import CheckpointError, load_checkpoint, not_regular, refuse_non_regular
from .builders import build_model, load_dataset, make_test_loader, normalization
from .config import TrainConfig
from .trainer import Trainer


def train(config, callbacks=(), loss_fn=None):
    """Train a model as ``config`` says; returns a :class:`TrainResult` (``.model`` is the trained model)."""
    return Trainer(config, callbacks=callbacks, loss_fn=loss_fn).fit()


def resume(path, **overrides):
    """Continue the run saved at ``path`` (run folder or .ckpt); returns a :class:`TrainResult`."""
    return Trainer.from_checkpoint(path, **overrides).fit()


def find_checkpoint(path, which="best"):
    """The checkpoint ``minise eval`` and ``minise plot`` read from ``path``: a .ckpt file as it is; a run
    folder's ``best.ckpt``, else its ``last.ckpt`` (``which="last"``: its last.ckpt).

    Raises FileNotFoundError stating that rule, so the message fits every command that uses it (or saying
    that ``path``, or the run folder's checkpoint, is a broken link); CheckpointError when it is a device,
    a pipe, a socket (a folder, for the run folder's checkpoint).
    """
    path = Path(path)
    folder_rule = "(its best.ckpt, else its last.ckpt)" if which == "best" else "(its last.ckpt)"
    rule = f"pass a .ckpt file, or a run folder {folder_rule}"
    if path.is_dir():
        names = ("best.ckpt", "last.ckpt") if which == "best" else ("last.ckpt",)
        for name in names:
            if (path / name).is_file():
                return path / name
            if os.path.lexists(path / name):   # a device, a pipe, a folder: refused, not silently skipped
                kind = not_regular(path / name)
                if kind.startswith("a broken link"):   # as load_checkpoint and a broken link typed: exit 2
                    raise FileNotFoundError(f"no checkpoint at {path / name}: it is {kind}")
                raise CheckpointError(f"{path / name} is {kind}, not a regular file; expected "
                                      "a checkpoint minise wrote")
        raise FileNotFoundError(f"no checkpoint in {path} (no {' or '.join(names)}): {rule}")
    refuse_non_regular(path, folder_rule)   # a device, a pipe: says what it is
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: {rule}")
    return path


def load_model(path, device="cpu"):
    """``(model, state)``: the model of a checkpoint, rebuilt from its config, weights loaded, eval mode.

    path: a .ckpt file, or a run folder: its last.ckpt, as :func:`load_checkpoint` reads it. (``minise
    eval RUN`` takes the run's best.ckpt first: ``load_model(find_checkpoint(RUN))`` does the same.)

    Raises SerializationError (unreadable file) or CheckpointError (a missing
    key, an unknown model, weights that do not fit it), naming the file.
    """
    state = load_checkpoint(path)
    try:
        config = TrainConfig.from_dict(state["config"])
        in_channels = _checkpoint_in_channels(state)
        model = build_model(config, len(state["classes"]), in_channels)
        model.load_state_dict(state["model"])
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path}: cannot rebuild its model: {exc}") from None
    return model.to(device).eval(), state


def _checkpoint_in_channels(state):
    """The input channels of a checkpoint's model: those of its first conv weight (N, C, kh, kw)."""
    for value in state["model"].values():
        if np.ndim(value) == 4:
            return int(np.shape(value)[1])
    raise ValueError("load_model: the checkpoint's model has no convolution weight to read its input channels from")


def checkpoint_test_loader(state, device="cpu", dataset=None, data_dir=None, subset=None, batch_size=256):
    """The test split a checkpoint was trained for (or ``dataset``), normalised as in training.

    ``subset``: the first N test images; by default the run's own ``subset``, 0 for all of them.
    A checkpoint is data, never instructions: the data folder is ``data_dir``
    (default ``$MINISE_DATA`` or the cache), never the one saved in the
    checkpoint, and the dataset is downloaded only when the caller names it
    (``dataset``); the checkpoint's own dataset is only read where it already is.
    """
    if subset is not None and not (isinstance(subset, (int, np.integer)) and subset >= 0):
        raise ValueError(f"checkpoint_test_loader: subset must be 0 (every test image) or a positive number "
                         f"of images, got {subset!r}")
    config = TrainConfig.from_dict(state["config"])
    config.dataset = dataset or config.dataset
    config.data_dir = data_dir
    if subset is not None:  # default: the run's own subset; 0 means the whole test set
        config.subset = subset or None
    try:
        test_set = load_dataset(config, train=False, download=dataset is not None)
    except FileNotFoundError as exc:
        if dataset is not None or config.dataset == "embedded":
            raise
        raise FileNotFoundError(f"{exc} (minise does not download a dataset because a checkpoint names it; "
                                f"add --dataset {config.dataset} to allow the download)") from None
    if len(test_set.classes) != len(state["classes"]):
        raise ValueError(f"the checkpoint's model has {len(state['classes'])} classes, "
                         f"{config.dataset} has {len(test_set.classes)}")
    norm = state.get("normalize") or dict(zip(("mean", "std"),
                                             normalization(config, load_dataset(config, download=dataset is not None))))
    return make_test_loader(test_set, norm["mean"], norm["std"], batch_size, device)
