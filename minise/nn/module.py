"""Module: a container of parameters, buffers and other modules, as in PyTorch.

A model is a tree of modules. Assigning an attribute registers it:

    self.fc = Linear(4, 3)                  # a submodule: in _modules
    self.scale = Parameter(np.ones(3))      # a parameter: in _parameters
    self.register_buffer("count", t)        # a buffer (state, not trained): in _buffers

Everything else (``parameters()``, ``state_dict()``, ``to(device)``,
``train()``/``eval()``, the nested ``repr``) walks that tree. The walk is plain
dict iteration in insertion order, so ``state_dict()`` keys come out as dotted
paths in the order the attributes were assigned: ``conv1.weight``,
``bn1.running_mean``, ``layer1.0.conv1.weight``... exactly PyTorch's keys for
the same attribute names.

Calling a module (``model(x)``) pushes it on ``minise.autograd._module_stack``
while its ``forward`` runs, so every op records where it ran
(``layer2.1.se.fc2``): the backward tracer and ``detect_anomaly`` print that
path.
"""

import collections
import itertools

import numpy as np

from .. import autograd, backend
from ..tensor import Tensor
from .hooks import RemovableHandle
from .parameter import Parameter

__all__ = ["Module", "RemovableHandle", "StateDictError"]


class StateDictError(RuntimeError, ValueError):
    """``load_state_dict`` got missing, unexpected or misshapen keys.

    A RuntimeError as in PyTorch, and a ValueError as minise's bad-input errors are.
    """


_IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and model: subclass it, assign layers in
    ``__init__`` (after ``super().__init__()``) and write ``forward``.

        class TwoLayer(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(4, 8)
                self.fc2 = nn.Linear(8, 2)

            def forward(self, x):
                return self.fc2(F.relu(self.fc1(x)))
    """

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dicts to exist first
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_hooks", {})

    # --- registration ---------------------------------------------------------
    def _require_init(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: cannot assign {what} before Module.__init__() is called; "
                f"call super().__init__() first in {type(self).__name__}.__init__"
            )

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._require_init("parameters")
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._require_init("submodules")
            self._forget(name)
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}.{name} is a parameter: assign a Parameter or None, "
                    f"got {type(value).__name__}"
                )
            self._parameters[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"{type(self).__name__}.{name} is a buffer: assign a Tensor or None, "
                    f"got {type(value).__name__}"
                )
            self._buffers[name] = value
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}.{name} is a submodule: assign a Module or None, "
                    f"got {type(value).__name__}"
                )
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        """Drop ``name`` from every registry and the instance dict (it is being re-registered)."""
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __getattr__(self, name):
        # only called when normal lookup fails: look in the registries
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter, or None for an absent one like a missing bias)."""
        self._require_init("parameters")
        _check_name(self, name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Register state that is saved and moved with the module but not trained.

        BatchNorm's running statistics are buffers. ``persistent=False`` keeps
        the buffer out of ``state_dict()``.
        """
        self._require_init("buffers")
        _check_name(self, name)
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = Tensor(tensor)
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        """Register ``module`` under ``name`` (for names that are not identifiers, like "0")."""
        self._require_init("submodules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}")
        _check_name(self, name)
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    # --- running --------------------------------------------------------------
    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__}.forward is not written")

    def __call__(self, *args, **kwargs):
        autograd._module_stack.append(self)
        try:
            output = self.forward(*args, **kwargs)
            for hook in list(self._forward_hooks.values()):
                result = hook(self, args, output)
                if result is not None:
                    output = result
        finally:
            autograd._module_stack.pop()
        return output

    def register_forward_hook(self, hook):
        """Call ``hook(module, inputs, output)`` after every forward.

        ``inputs`` is the tuple of positional arguments. A hook that returns a
        value replaces the output. Returns a handle; ``handle.remove()`` undoes it.
        """
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    # --- walking the tree -----------------------------------------------------
    def named_modules(self, prefix="", memo=None):
        """(dotted path, module) for this module and every descendant, pre-order; each once."""
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry, prefix, recurse):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for path, module in modules:
            for name, t in getattr(module, registry).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{path}.{name}" if path else name), t

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, Parameter) pairs, each parameter once (shared ones are not repeated)."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only=False):
        """Total number of parameter elements (only those requiring grad if ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def apply(self, fn):
        """Call ``fn(module)`` on every submodule (children first) and on self; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # --- state ----------------------------------------------------------------
    def state_dict(self, prefix=""):
        """Parameters and persistent buffers by dotted name, as Tensors sharing memory.

        The order is PyTorch's: a module's own parameters, then its buffers, then
        each child's entries. Save it with ``ms.save``; the values change when the
        model trains (they share memory), so save before training on.
        """
        state = collections.OrderedDict()
        for path, module in self.named_modules(prefix):
            dot = f"{path}." if path else ""
            for name, p in module._parameters.items():
                if p is not None:
                    state[dot + name] = p.detach()
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent_buffers:
                    state[dot + name] = b.detach()
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from ``state_dict`` into this module's parameters and buffers, in place.

        Values may be Tensors or arrays (NumPy, CuPy); each is converted to the
        target's dtype and device, so an optimiser holding the parameters keeps
        working. Misshapen values are always an error; with ``strict`` missing
        and unexpected keys are too. Nothing is copied when there is an error.
        Returns ``(missing_keys, unexpected_keys)`` as PyTorch does.
        """
        if not hasattr(state_dict, "items"):
            raise TypeError("load_state_dict: expected a dict of name -> Tensor/array, "
                            f"got {type(state_dict).__name__}")
        targets = self.state_dict()
        targets = {k: self._resolve(k) for k in targets}
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        misshapen = []
        values = {}
        for key, target in targets.items():
            if key not in state_dict:
                continue
            value = _as_array(state_dict[key], key)
            if tuple(value.shape) != target.shape:
                misshapen.append(f"{key}: checkpoint has shape {tuple(value.shape)}, "
                                 f"the model has {target.shape}")
            values[key] = value
        errors = []
        if strict and missing:
            errors.append("missing key(s): " + ", ".join(missing))
        if strict and unexpected:
            errors.append("unexpected key(s): " + ", ".join(unexpected))
        if misshapen:
            errors.append("size mismatch for " + "; ".join(misshapen))
        if errors:
            raise StateDictError(
                f"load_state_dict: error(s) loading into {type(self).__name__}:\n  " + "\n  ".join(errors)
            )
        for key, value in values.items():
            target = targets[key]
            target.data[...] = backend.to_device(value, target.device).astype(target.dtype, copy=False)
            autograd.mark_modified(target)
        return _IncompatibleKeys(missing, unexpected)

    def _resolve(self, key):
        """The parameter or buffer Tensor itself (not a detached copy) at dotted ``key``."""
        *path, name = key.split(".")
        module = self
        for part in path:
            module = module._modules[part]
        return module._parameters[name] if name in module._parameters else module._buffers[name]

    # --- modes, devices, dtypes -----------------------------------------------
    def train(self, mode=True):
        """Training mode (batch statistics in BatchNorm, dropout on) for self and every submodule."""
        if not isinstance(mode, bool):
            raise ValueError(f"train(mode): mode must be a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """Evaluation mode: BatchNorm uses its running statistics, dropout is off."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Forget the gradients of every parameter (``p.grad = None``, or zeros)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = Tensor(p.xp.zeros_like(p.data))

    def _apply_to_tensors(self, fn):
        """Replace the ``data`` (and grad) of every parameter and buffer by ``fn(data)``, in place.

        In place: the same Parameter objects stay registered (an optimiser built
        before ``to("cuda")`` still holds the right tensors).
        """
        for t in itertools.chain(self.parameters(), self.buffers()):
            t.data = fn(t.data)
            if t.grad is not None:
                t.grad = Tensor(fn(t.grad.data))
        return self

    def to(self, device):
        """Move every parameter and buffer to ``device`` ("cpu", "cuda", "cuda:N"); returns self.

        A NumPy dtype (``np.float64``) instead converts the floating ones, as ``double()`` does.
        """
        if isinstance(device, str):
            backend.parse_device(device)  # a bad device string fails before anything moves
            return self._apply_to_tensors(lambda a: backend.to_device(a, device))
        return self._cast(np.dtype(device))

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def _cast(self, dtype):
        if dtype.kind != "f":
            raise ValueError(f"Module.to(dtype): only floating dtypes make sense for parameters, got {dtype}")
        return self._apply_to_tensors(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a)

    def double(self):
        """Convert floating parameters and buffers to float64 (for gradient checks)."""
        return self._cast(np.dtype(np.float64))

    def float(self):
        """Convert floating parameters and buffers to float32."""
        return self._cast(np.dtype(np.float32))

    # --- printing ---------------------------------------------------------------
    def extra_repr(self):
        """The text inside the parentheses of this module's repr (override in layers)."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = []
        for name, module in self._modules.items():
            child_lines.append(f"({name}): " + repr(module).replace("\n", "\n  "))
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{type(self).__name__}({body})"


def _check_name(module, name):
    if not isinstance(name, str) or not name or "." in name:
        raise KeyError(f"{type(module).__name__}: a member name must be a non-empty string without '.', got {name!r}")
    if name in module.__dict__ and name not in ("training",) and not _registered(module, name):
        raise KeyError(f"{type(module).__name__}: attribute {name!r} already exists and is not a parameter, "
                       "buffer or module")


def _registered(module, name):
    return name in module._parameters or name in module._buffers or name in module._modules


def _as_array(value, key):
    if isinstance(value, Tensor):
        return value.data
    if backend.is_array(value):
        return value
    try:
        return np.asarray(value)
    except Exception as exc:
        raise TypeError(f"load_state_dict: value for {key!r} is a {type(value).__name__}, "
                        "expected a Tensor or an array") from exc
