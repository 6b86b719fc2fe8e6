"""What a run checks before it trusts a checkpoint, and at every epoch boundary.

- :func:`check_fits`: a checkpoint fits the run it describes (scheduler,
  optimiser, metrics rows, steps per epoch); built on
- :func:`check_like`: a saved state (optimiser, scheduler) has the structure a
  freshly built one has: the same keys, list lengths and kinds of values; so a
  checkpoint for another schedule, or a damaged one, is refused by name instead
  of resuming with a schedule silently restarted;
- :func:`non_finite_entries`: the parameters and buffers holding NaN or +-inf
  (a BatchNorm ``running_var`` can overflow while the loss stays finite);
- :func:`check_finite_state`: a resumed state holds no NaN or +-inf, in the
  model or in the optimiser's buffers (momentum).
"""

import numpy as np

from .. import backend
from ..io.checkpoint import CheckpointError
from .metrics import check_metric_rows

__all__ = ["check_fits", "check_like", "non_finite_entries", "non_finite_optimizer_state", "check_finite_state"]

_NUMBER = (int, float, np.integer, np.floating)


def _kind(value):
    if value is None:
        return "None"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, _NUMBER):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, (list, tuple)):
        return "list"
    if backend.is_array(value):
        return "array"
    return type(value).__name__


def check_like(saved, expected, where, path, skip=()):
    """Raise :class:`CheckpointError` unless ``saved`` has the structure of ``expected``.

    Dicts need the same keys (except those in ``skip``, not compared), lists
    the same length; leaves the same kind (number, bool, str, array). A leaf
    that is None in ``expected`` accepts None or a number (a value not set yet).
    where: the readable path of ``saved`` in the checkpoint, e.g. ``scheduler``.
    """
    got, want = _kind(saved), _kind(expected)
    if want == "None" and got in ("None", "number"):
        return
    if got != want:
        raise CheckpointError(f"checkpoint {path}: {where} is a {got}, expected a {want} as this run saves it")
    if want == "dict":
        missing = sorted(map(str, set(expected) - set(saved) - set(skip)))
        extra = sorted(map(str, set(saved) - set(expected) - set(skip)))
        if missing or extra:
            raise CheckpointError(
                f"checkpoint {path}: {where} does not match this run"
                + (f": missing {', '.join(missing)}" if missing else "")
                + (f": unexpected {', '.join(extra)}" if extra else "")
                + " (saved by another kind of optimizer or schedule, or damaged)")
        for key in expected:
            if key not in skip:
                check_like(saved[key], expected[key], f"{where}[{key!r}]", path)
    elif want == "list":
        if len(saved) != len(expected):
            raise CheckpointError(f"checkpoint {path}: {where} has {len(saved)} entries, this run has {len(expected)}")
        for i, (a, b) in enumerate(zip(saved, expected)):
            check_like(a, b, f"{where}[{i}]", path)


def non_finite_entries(model):
    """Names of the model's parameters and buffers that hold a NaN or an infinity (one host sync if none)."""
    entries = [(name, t.data) for name, t in model.state_dict().items() if t.data.dtype.kind in "fc"]
    if not entries:
        return []
    xp = backend.get_array_module(entries[0][1])
    flags = backend.to_numpy(xp.stack([xp.isfinite(data).all() for _, data in entries]))
    return [name for (name, _), ok in zip(entries, flags) if not ok]


def non_finite_optimizer_state(optimizer, model):
    """Names of the optimiser's float buffers (momentum...) that hold a NaN or an infinity, as
    ``optimizer.state[<parameter name>][<buffer>]`` (one host sync per buffer; a resume makes this check once)."""
    names = {id(p): name for name, p in model.named_parameters()}
    bad = []
    for p, buffers in optimizer.state.items():
        for key, value in buffers.items():
            if not backend.is_array(value) or value.dtype.kind not in "fc" or value.size == 0:
                continue
            if not bool(backend.get_array_module(value).isfinite(value).all()):
                bad.append(f"optimizer.state[{names.get(id(p), '?')!r}][{key!r}]")
    return bad


def check_finite_state(model, optimizer, path):
    """Refuse (CheckpointError) a loaded state with a NaN or an infinity in a parameter, a buffer or an
    optimiser buffer. minise never saves such a state (the run stops first), so the file was damaged
    or edited; resuming would only report a diverged run one epoch later."""
    bad = [f"model[{name!r}]" for name in non_finite_entries(model)] + non_finite_optimizer_state(optimizer, model)
    if bad:
        shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
        raise CheckpointError(f"checkpoint {path}: {len(bad)} entr{'y holds' if len(bad) == 1 else 'ies hold'} "
                              f"NaN or infinity ({shown}); minise never saves such a state (it stops the run "
                              "first), so the file is damaged or was edited")


def check_fits(state, path, schedule, optimizer, scheduler, steps_per_epoch):
    """Refuse (CheckpointError) a checkpoint whose scheduler, optimiser, metrics or step count do not fit
    the run rebuilt from its config: resuming it would not continue that run exactly."""
    if scheduler is None and state["scheduler"] is not None:
        raise CheckpointError(f"checkpoint {path}: holds a learning-rate scheduler's state, but its run has "
                              "schedule 'none'; the file is damaged or was edited")
    if scheduler is not None:
        if state["scheduler"] is None:
            raise CheckpointError(
                f"checkpoint {path}: its run uses the {schedule!r} learning-rate schedule but the checkpoint "
                "holds no scheduler state; resuming would restart the schedule, so minise refuses")
        check_like(state["scheduler"], scheduler.state_dict(), f"scheduler (for {schedule!r})", path)
    check_like(state["optimizer"], optimizer.state_dict(), "optimizer", path, skip=("state",))
    check_metric_rows(state["metrics"], path)
    if state["global_step"] != state["epoch"] * steps_per_epoch:
        raise CheckpointError(
            f"checkpoint {path}: {state['global_step']} steps in {state['epoch']} epochs, but the training set "
            f"found now gives {steps_per_epoch} steps per epoch: the data differs from the run's "
            "(another dataset version or --subset?), so resuming would not continue the same run")
