"""The ``Optimizer`` base class: parameter groups, per-parameter state, ``zero_grad``, ``state_dict``.

An optimizer holds references to a model's parameters (Tensors) and, on
``step()``, reads each parameter's ``.grad`` and updates its ``.data`` *in
place*, so the model keeps the very same arrays (and a learner who holds
``w = model.fc.weight.data`` sees it change).

Like PyTorch, parameters live in **parameter groups**: a list of dicts, each
with its own ``"params"`` list and its own hyper-parameters. One group is the
common case; two groups let, say, biases skip weight decay::

    opt = optim.SGD([{"params": weights, "weight_decay": 5e-4},
                     {"params": biases, "weight_decay": 0}], lr=0.1, momentum=0.9)

A learning-rate scheduler changes ``group["lr"]`` between steps; the next
``step()`` reads it from there.

``self.state[p]`` holds the buffers one parameter needs across steps (SGD's
momentum buffer, Adam's moving averages), created lazily on the first step
that sees a gradient for ``p``, on ``p``'s device.
"""

import copy
import math
import numbers

from .. import backend
from ..autograd import enable_grad, mark_modified
from ..tensor import Tensor

__all__ = ["Optimizer"]


class Optimizer:
    """Base class: subclasses set ``defaults`` and implement ``step()`` (and ``_check_group``).

    params: an iterable of Tensors (``model.parameters()``) or of dicts
    (parameter groups: ``{"params": [...], "lr": ...}``).
    defaults: the hyper-parameters every group gets unless it sets its own.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}           # parameter Tensor -> dict of buffers (hashed by identity)
        self.param_groups = []
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name}: params should be an iterable of Tensors (e.g. model.parameters()) or of dicts, "
                f"got a single Tensor of shape {params.shape}; pass [tensor] instead"
            )
        if isinstance(params, dict):
            raise TypeError(
                f"{name}: params should be an iterable of Tensors or a list of parameter-group dicts, "
                "got one dict; wrap it in a list: [{'params': ...}]"
            )
        if isinstance(params, set):
            raise TypeError(_SET_MESSAGE.format(name=name))
        try:
            params = list(params)
        except TypeError:
            raise TypeError(
                f"{name}: params should be an iterable of Tensors (e.g. model.parameters()), "
                f"got {type(params).__name__}"
            ) from None
        if not params:
            raise ValueError(
                f"{name} got an empty parameter list: the model has no parameters, or the "
                "generator from model.parameters() was already used up (it can be iterated only once)"
            )
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    # --- parameter groups -----------------------------------------------------
    def add_param_group(self, param_group):
        """Add a group (a dict with ``"params"`` and optional hyper-parameters) to optimise too.

        Handy for fine-tuning: unfreeze a layer and add its parameters with their own lr.
        """
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(
                f"{name}.add_param_group: a parameter group is a dict like {{'params': [...], 'lr': 0.01}}, "
                f"got {type(param_group).__name__} (mixing Tensors and dicts in one params list is not allowed)"
            )
        if "params" not in param_group:
            raise ValueError(f"{name}.add_param_group: the group dict has no 'params' key: {sorted(param_group)}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(_SET_MESSAGE.format(name=name))
        else:
            params = list(params)
        if not params:
            raise ValueError(f"{name}: parameter group {len(self.param_groups)} has an empty 'params' list")
        for i, p in enumerate(params):
            _check_parameter(name, i, p)
        group["params"] = params

        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)

        seen = set()
        for p in params:
            if id(p) in seen:
                raise ValueError(
                    f"{name}: the same parameter (shape {p.shape}) appears twice in one group; "
                    "it would be updated twice per step"
                )
            seen.add(id(p))
        for other in self.param_groups:
            if any(id(p) in seen for p in other["params"]):
                raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def _check_group(self, group):
        """Raise ValueError for a bad hyper-parameter in ``group``; subclasses extend it."""
        _check_number(type(self).__name__, "lr", group.get("lr", 0.0), low=0.0)

    # --- the step ---------------------------------------------------------------
    def step(self, closure=None):
        """Update every parameter that has a gradient. Subclasses implement the rule."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    def _evaluate_closure(self, closure):
        """Call ``closure()`` (it re-evaluates the model and returns the loss), as PyTorch does."""
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _grad_of(self, p):
        """The raw gradient array of ``p``, checked against ``p``'s shape."""
        grad = p.grad.data if isinstance(p.grad, Tensor) else p.grad
        if grad.shape != p.data.shape:
            raise ValueError(
                f"{type(self).__name__}.step: a parameter of shape {tuple(p.data.shape)} has a gradient "
                f"of shape {tuple(grad.shape)}; they must match"
            )
        return grad

    def zero_grad(self, set_to_none=True):
        """Forget the gradients before the next backward (they accumulate otherwise).

        ``set_to_none=True`` (PyTorch's default) sets ``p.grad = None``: the next
        backward stores a fresh array and no memory is spent on zeros.
        ``set_to_none=False`` fills the existing gradient arrays with 0.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    grad = p.grad.data if isinstance(p.grad, Tensor) else p.grad
                    grad[...] = 0
                    if isinstance(p.grad, Tensor):
                        mark_modified(p.grad)

    # --- saving and loading -----------------------------------------------------
    def state_dict(self):
        """The optimizer's state as plain data, in PyTorch's layout.

        ``{"state": {index: {name: array or number}}, "param_groups": [{hyper-parameters...,
        "params": [index, ...]}]}``: parameters are numbered 0, 1, 2... in group
        order, so a checkpoint does not depend on object identities. Arrays are
        copies (on the parameters' device): later steps do not change a state
        dict you hold, unlike PyTorch, whose state dict shares its tensors.
        """
        index = {}
        param_groups = []
        for group in self.param_groups:
            packed = {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            param_groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {key: _copy_value(value) for key, value in self.state[p].items()}
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict):
        """Restore a state from :meth:`state_dict` (possibly after ``ms.save`` / ``ms.load``).

        The optimizer must hold the same parameters, in the same groups and
        order, as the one that was saved. Buffers are copied onto each
        parameter's device and cast to its dtype; the groups' hyper-parameters
        (including ``lr`` and a scheduler's ``initial_lr``) are taken from the
        saved dict. Create the scheduler first, then load, as in PyTorch.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            got = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(
                f"{name}.load_state_dict: expected a dict with keys 'state' and 'param_groups' "
                f"(from optimizer.state_dict()), got {got}"
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: loaded state dict has {len(saved_groups)} parameter groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: parameter group {i} of the loaded state dict has "
                    f"{len(saved['params'])} parameters, this optimizer's has {len(group['params'])}"
                )
        params_by_index = {}
        for group, saved in zip(self.param_groups, saved_groups):
            for p, index in zip(group["params"], saved["params"]):
                params_by_index[int(index)] = p

        state = {}
        for index, buffers in state_dict["state"].items():
            index = int(index)
            if index not in params_by_index:
                raise ValueError(
                    f"{name}.load_state_dict: the state has an entry for parameter {index}, "
                    f"but the parameter groups list only {sorted(params_by_index)}"
                )
            p = params_by_index[index]
            state[p] = {key: _to_param(name, index, key, value, p) for key, value in buffers.items()}

        param_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new_group = dict(self.defaults)
            new_group.update({key: copy.deepcopy(value) for key, value in saved.items() if key != "params"})
            new_group["params"] = group["params"]
            self._check_group(new_group)
            param_groups.append(new_group)
        self.state = state
        self.param_groups = param_groups

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}  ({len(group['params'])} tensors)")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


# --- helpers ------------------------------------------------------------------
_SET_MESSAGE = ("{name}: parameters must be an ordered collection (a list), got a set, whose order "
                "changes between runs and would scramble state_dict()")


def _check_parameter(name, i, p):
    if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str):
        raise TypeError(
            f"{name}: params[{i}] is a (name, Tensor) pair ({p[0]!r}); pass model.parameters(), "
            "not model.named_parameters()"
        )
    if not isinstance(p, Tensor):
        raise TypeError(f"{name}: params[{i}] should be a minise Tensor, got {type(p).__name__}")
    if p.creator is not None:
        raise ValueError(
            f"{name}: params[{i}] (shape {p.shape}) is not a leaf: it was computed by "
            f"{type(p.creator).__name__}. Optimise the tensors you created (the model's parameters), "
            "not results computed from them"
        )
    if p.data.dtype.kind != "f":
        raise TypeError(f"{name}: params[{i}] has dtype {p.data.dtype}; only floating point tensors can be optimised")


def _check_number(name, key, value, low=None, high=None, low_open=False, high_open=False):
    """Raise a teaching error unless ``low <= value <= high`` (``<`` where open)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {key} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name}: {key} is NaN")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "" if low is None else f"{low} {'<' if low_open else '<='} "
        hi = "" if high is None else f" {'<' if high_open else '<='} {high}"
        raise ValueError(f"{name}: invalid {key} {value}: expected {lo}{key}{hi}")


def _copy_value(value):
    if isinstance(value, Tensor):
        return value.data.copy()
    if backend.is_array(value):
        return value.copy()
    return copy.deepcopy(value)


def _to_param(name, index, key, value, p):
    """A saved buffer as an array on ``p``'s device; floats in ``p``'s dtype; numbers as they are."""
    if isinstance(value, Tensor):
        value = value.data
    if not backend.is_array(value):
        return copy.deepcopy(value)
    if value.shape != p.data.shape:
        raise ValueError(
            f"{name}.load_state_dict: state '{key}' of parameter {index} has shape {tuple(value.shape)}, "
            f"but that parameter has shape {p.shape}: was the checkpoint saved from a different model?"
        )
    array = backend.to_device(value, p.device)
    if array.dtype.kind == "f":
        array = array.astype(p.data.dtype, copy=False)
    return array.copy() if array is value else array
