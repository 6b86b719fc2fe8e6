"""Function, the backward walk, and grad mode: the autograd engine.

An op is a :class:`Function`: ``forward`` computes the output array from the
input arrays, ``backward`` turns the output's gradient into one gradient per
input. Calling a Function on tensors runs ``forward`` and, when gradients are
wanted, makes the op the output's ``creator`` and keeps its inputs.

``loss.backward()`` then (:func:`backward_steps`):

1. lists every tensor the loss depends on in topological order (outputs
   before the inputs that made them) with an explicit stack, so a chain of any
   length never hits Python's recursion limit;
2. walks that list once, calling each creator's ``backward`` with the gradient
   of its output and adding what it returns into the gradients of its inputs;
3. stores the finished gradient in ``.grad`` of each leaf (and of any tensor
   that called ``retain_grad()``), adding to what was there, as PyTorch does.

Version counters (as PyTorch's): every in-place change minise makes to a
tensor (an optimiser step, a BatchNorm running-statistics update,
``load_state_dict``, ``nn.init``) calls :func:`mark_modified`, which bumps
``tensor._version``. A Function remembers the version of each input whose
array it saved for backward; if that version moved before backward runs, the
saved array no longer holds what forward used and backward raises a
RuntimeError instead of returning a wrong gradient. Writing to the raw
``tensor.data`` array yourself bypasses the check, as ``.data`` does in PyTorch.

Everything is plain Python objects: print ``y.creator``, walk
``y.creator.inputs``, or set a breakpoint in :func:`backward_steps` and watch
each op's backward run in order.
"""

import contextlib

from . import backend
from .tensor import Tensor, _is_float, as_tensor

__all__ = [
    "Function",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "backward_steps",
    "sum_to",
    "mark_modified",
]

# --- global switches --------------------------------------------------------
_grad_enabled = True
# Modules push themselves here while they run (minise.nn.Module.__call__), so
# every op can record which module it belongs to, e.g. "layer2.1.se.fc2".
_module_stack = []
# Observers of the backward walk (the tracer of minise.debug), each called as
# observer(record_dict) after an op's backward; empty in normal use.
_backward_observers = []
# Observers of forward ops: observer(function, output_array); empty normally.
_forward_observers = []


def is_grad_enabled():
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        global _grad_enabled
        self.previous = _grad_enabled
        _grad_enabled = self.enabled

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.previous
        return False


def no_grad():
    """Context manager (or decorator): ops inside record no graph, like ``torch.no_grad``."""
    return _GradMode(False)


def enable_grad():
    """Context manager (or decorator): turn graph recording back on inside ``no_grad``."""
    return _GradMode(True)


class Function:
    """One differentiable op: subclass it and write ``forward`` and ``backward``.

    ``forward(*arrays)`` receives raw numpy/cupy arrays and returns one array;
    call ``self.save_for_backward(...)`` with what ``backward`` will need.
    ``backward(gy)`` receives the gradient of the output (a raw array) and
    returns one gradient per input (or None for an input that needs none).

    Options that are not tensors (a stride, an axis) go to ``__init__``::

        y = MyOp()(x)            # returns a Tensor
        y = Conv2d(stride=2)(x, w)
    """

    saved = ()
    saved_versions = ()  # (input index, version) pairs checked before backward

    def __call__(self, *inputs):
        tensors = _as_tensors(inputs)
        self.needs_input_grad = tuple(t.requires_grad for t in tensors)
        self.module_stack = tuple(_module_stack)
        raw = self.forward(*(t.data for t in tensors))
        requires_grad = _grad_enabled and any(self.needs_input_grad)
        output = Tensor(raw, requires_grad=requires_grad and _is_float(raw.dtype))
        self.output_shape = output.shape
        self.output_dtype = output.dtype
        if output.requires_grad:
            output.creator = self
            self.inputs = tensors
            self.freed = False
            self.saved_versions = _saved_versions(self.saved, tensors)
        else:
            self.saved = ()  # nothing will call backward: drop the buffers now
        for observer in _forward_observers:
            observer(self, tensors, output)
        return output

    def save_for_backward(self, *arrays):
        self.saved = arrays

    def forward(self, *arrays):
        raise NotImplementedError(f"{type(self).__name__}.forward is not written")

    def backward(self, gy):
        raise NotImplementedError(f"{type(self).__name__}.backward is not written")

    @property
    def name(self):
        return type(self).__name__

    @property
    def module_path(self):
        """Dotted path of the innermost module that ran this op ("" outside modules)."""
        return _module_path(self.module_stack)

    def release(self):
        """Free the buffers kept for backward (called after backward unless retain_graph)."""
        self.saved = None
        self.inputs = None
        self.freed = True

    def __repr__(self):
        where = f" in {self.module_path}" if getattr(self, "module_stack", None) else ""
        return f"<{self.name}{where}>"


def mark_modified(*tensors):
    """Record that ``tensors`` were changed in place: bump each one's version counter.

    Call it after writing into ``t.data`` when a graph may still need the old
    values (an optimiser step, a running-statistics update); backward then raises
    instead of silently using the new values. PyTorch's in-place ops do the same.
    """
    for t in tensors:
        if t is not None:
            t._version += 1


def _saved_versions(saved, tensors):
    """(input index, version) for each input whose array (or a view of it) forward saved."""
    if not saved:
        return ()
    ids = set()
    for a in saved:
        ids.add(id(a))
        base = getattr(a, "base", None)
        if base is not None:
            ids.add(id(base))
    return tuple((i, t._version) for i, t in enumerate(tensors) if id(t.data) in ids)


def _check_versions(fn):
    """Raise if an input fn saved for backward was changed in place since fn's forward."""
    for i, seen in fn.saved_versions:
        t = fn.inputs[i]
        if t._version != seen:
            stack = fn.module_stack
            where = f" in module '{fn.module_path}'" if fn.module_path else (
                f" in the top-level {type(stack[0]).__name__} module" if stack else "")
            raise RuntimeError(
                f"backward: one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: {fn.name}{where} saved its input {i}, {_describe(t, stack)} of shape "
                f"{t.shape} ({t.dtype}), at version {seen}; it is now at version {t._version}. It was changed "
                f"in place (by optimizer.step(), load_state_dict(), a BatchNorm running-statistics update...) "
                f"after the forward pass that used it, so the gradient would be computed from the new values. "
                f"Call backward() before changing it (loss.backward() before optimizer.step()), or run the "
                f"forward pass again after the change."
            )


def _describe(t, stack):
    """'the parameter fc.weight' when a module on ``stack`` owns ``t``; else a plain description."""
    if t.name:
        return f"the tensor '{t.name}'"
    if stack:
        root = stack[0]
        for name, p in root.named_parameters():
            if p is t:
                return f"the parameter '{name}'"
    return "a leaf tensor" if t.is_leaf else f"the output of {type(t.creator).__name__}"


def _as_tensors(inputs):
    """Inputs as Tensors; Python numbers take the dtype/device of the first tensor."""
    like = next((x for x in inputs if isinstance(x, Tensor)), None)
    return [as_tensor(x, like) for x in inputs]


def _module_path(stack):
    """Name the innermost module of ``stack`` by the attribute names leading to it."""
    names = []
    for parent, child in zip(stack, stack[1:]):
        for key, sub in parent._modules.items():
            if sub is child:
                names.append(key)
                break
        else:
            names.append(type(child).__name__)
    return ".".join(names)


# --- the backward walk ------------------------------------------------------
def _topological_order(root):
    """Tensors reachable from ``root`` through creators, each after all its consumers.

    Iterative depth-first search: the post-order lists inputs before the
    tensors made from them; reversed, every tensor comes before its inputs.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        t, inputs_done = stack.pop()
        if inputs_done:
            order.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        if t.creator is not None:
            if t.creator.freed:
                raise RuntimeError(
                    f"backward: trying to go through the graph a second time, but the buffers of "
                    f"{t.creator.name} were freed by the first backward. Pass retain_graph=True "
                    f"to the first backward() if you need to call it twice."
                )
            for parent in t.creator.inputs:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    order.reverse()
    return order


def sum_to(g, shape):
    """Sum ``g`` over the axes that broadcasting added or stretched, to get ``shape``.

    g: (..., *shape-compatible).  Example: g (4, 3), shape (3,) -> g.sum(0).
    Every binary op's backward ends with it; the engine also applies it to a
    user Function's gradient that came back in the broadcast shape.
    """
    shape = tuple(shape)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(g.shape[lead:])


def _sum_to_shape(grad, shape, op_name):
    """``sum_to`` for a gradient a backward returned, with an error naming the op if it cannot fit."""
    if grad.ndim >= len(shape):
        reduced = sum_to(grad, shape)
        if reduced.shape == shape:
            return reduced
    raise RuntimeError(f"{op_name}.backward returned a gradient of shape {grad.shape}, expected {shape}")


def _apply_hooks(t, grad):
    for hook in t._hooks:
        result = hook(Tensor(grad))
        if result is not None:
            grad = result.data if isinstance(result, Tensor) else result
    return grad


def _store_grad(t, grad):
    """Accumulate ``grad`` into ``t.grad`` (a fresh array: never alias another tensor's buffer)."""
    if grad.dtype != t.dtype:
        grad = grad.astype(t.dtype)
    if t.grad is None:
        t.grad = Tensor(grad.copy())
    else:
        t.grad = Tensor(t.grad.data + grad)


def backward_steps(root, grad=None, retain_graph=False):
    """The backward walk as a generator: one record per op, in the order they run.

    ``Tensor.backward`` simply exhausts it; ``minise.step_backward`` hands the
    records to the learner one at a time. Each record is a dict with the
    function, the gradient it received and the gradients it returned.
    """
    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no creator. "
            "Did you create the inputs with requires_grad=True, or run inside no_grad()?"
        )
    xp = root.xp
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward: grad can be left out only for a one-element output, got shape {root.shape}. "
                "Pass grad= the gradient of your final scalar with respect to this tensor."
            )
        grad = xp.ones_like(root.data)
    else:
        grad = as_tensor(grad, root).data
        if grad.shape != root.shape:
            raise RuntimeError(f"backward: grad has shape {grad.shape}, expected {root.shape}")
        grad = grad.astype(root.dtype, copy=False)

    order = _topological_order(root)
    grads = {id(root): grad}
    for t in order:
        gy = grads.pop(id(t), None)
        if gy is None:  # not reached by the gradient (e.g. only used through int ops)
            continue
        if t._hooks:
            gy = _apply_hooks(t, gy)
        if t.creator is None:
            _store_grad(t, gy)
            continue
        if t._retains_grad:
            _store_grad(t, gy)
        fn = t.creator
        if fn.saved_versions:
            _check_versions(fn)
        gxs = fn.backward(gy)
        if not isinstance(gxs, (tuple, list)):
            gxs = (gxs,)
        if len(gxs) != len(fn.inputs):
            raise RuntimeError(
                f"{fn.name}.backward returned {len(gxs)} gradients for {len(fn.inputs)} inputs"
            )
        gxs = tuple(
            None if (gx is None or not x.requires_grad) else _sum_to_shape(xp_asarray(gx, x), x.shape, fn.name)
            for x, gx in zip(fn.inputs, gxs)
        )
        record = {"function": fn, "output": t, "grad_output": gy, "inputs": fn.inputs, "grad_inputs": gxs}
        for observer in _backward_observers:
            observer(record)
        yield record
        for x, gx in zip(fn.inputs, gxs):
            if gx is None:
                continue
            key = id(x)
            grads[key] = gx if key not in grads else grads[key] + gx
        if not retain_graph:
            fn.release()


def xp_asarray(gx, like):
    """A gradient returned as a number or list becomes an array like ``like``'s data."""
    if backend.is_array(gx):
        return gx
    return as_tensor(gx, like).data
