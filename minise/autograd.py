"""The Tensor, the Function, and the backward walk.

A ``Tensor`` wraps one NumPy or CuPy array (``.data``). When an op runs on
tensors that require gradients, the op (a ``Function`` instance) becomes the
output's ``creator`` and remembers its inputs: that is the whole graph.

``loss.backward()`` then:

1. lists every tensor the loss depends on in topological order (outputs
   before the inputs that made them) with an explicit stack, so a chain of any
   length never hits Python's recursion limit;
2. walks that list once, calling each creator's ``backward`` with the gradient
   of its output and adding what it returns into the gradients of its inputs;
3. stores the finished gradient in ``.grad`` of each leaf (and of any tensor
   that called ``retain_grad()``), adding to what was there, as PyTorch does.

Everything is plain Python objects: print ``y.creator``, walk
``y.creator.inputs``, or set a breakpoint in :func:`backward_steps` and watch
each op's backward run in order.
"""

import contextlib

import numpy as np

from . import backend

__all__ = [
    "Tensor",
    "Function",
    "tensor",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "backward_steps",
    "as_tensor",
    "sum_to",
]

DEFAULT_DTYPE = np.float32

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


# --- dtype helpers ----------------------------------------------------------
def _is_float(dtype):
    return np.dtype(dtype).kind == "f"


def _scalar_to_array(value, like, xp):
    """A Python number as an array that does not upcast ``like``.

    ``x_float32 * 2.5`` stays float32 (as in PyTorch); ``x_int64 * 2.5`` becomes
    float32 (PyTorch's default float dtype), ``x_int64 * 2`` stays int64.
    """
    if isinstance(value, (bool, np.bool_)):
        dtype = like.dtype
    elif isinstance(value, (int, np.integer)):
        dtype = like.dtype
    elif _is_float(like.dtype):
        dtype = like.dtype
    else:
        dtype = DEFAULT_DTYPE
    return xp.asarray(value, dtype=dtype)


def _to_array(data, dtype=None, device=None):
    """Turn lists, numbers, NumPy or CuPy arrays into an array on ``device``."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.generic):  # a NumPy scalar (e.g. from a full reduction) keeps its dtype
        data = np.asarray(data)
    if backend.is_array(data):
        array = data
        if dtype is not None:
            array = array.astype(dtype, copy=False)
    else:
        array = np.asarray(data)
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        elif array.dtype.kind == "f":
            array = array.astype(DEFAULT_DTYPE, copy=False)  # Python floats -> float32
        elif array.dtype.kind in "iu":
            array = array.astype(np.int64, copy=False)
    if device is not None:
        array = backend.to_device(array, device)
    return array


class Tensor:
    """An n-dimensional array with an optional gradient.

    ``data``: the raw numpy/cupy array.  ``grad``: a Tensor (or None) that
    ``backward`` fills and accumulates into.  ``creator``: the Function that
    made this tensor (None for leaves, which users create).
    """

    __array_priority__ = 1000  # numpy_array * tensor -> Tensor.__rmul__

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        self.data = _to_array(data, dtype, device)
        if requires_grad and not _is_float(self.data.dtype):
            raise TypeError(
                f"Tensor: only floating point tensors can require gradients, got dtype {self.data.dtype}"
            )
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self.creator = None
        self.name = None           # optional label, shown by the tracer and to_dot
        self._hooks = []
        self._retains_grad = False
        self._version = 0

    # --- properties ---------------------------------------------------------
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return int(self.data.size)

    @property
    def device(self):
        return backend.device_of(self.data)

    @property
    def is_leaf(self):
        return self.creator is None

    @property
    def xp(self):
        return backend.get_array_module(self.data)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        body = np.array2string(backend.to_numpy(self.data), precision=4, separator=", ", threshold=50)
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype != DEFAULT_DTYPE:
            extras.append(f"dtype={self.dtype}")
        if self.creator is not None:
            extras.append(f"creator={type(self.creator).__name__}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        tail = (", " + ", ".join(extras)) if extras else ""
        return f"tensor({body}{tail})"

    # --- conversion ---------------------------------------------------------
    def numpy(self):
        """The values as a NumPy array (a copy from the GPU; shared memory on the CPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        """The single value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can become a number, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """The same values, cut from the graph (no creator, no requires_grad). Shares memory."""
        return Tensor(self.data)

    def to(self, device):
        """A copy on ``device`` ("cpu", "cuda", "cuda:N"); ``self`` if already there.

        Like PyTorch, the move is differentiable: gradients flow back to the original device.
        """
        moved = backend.to_device(self.data, device)
        if moved is self.data:
            return self
        from .functional.math import ToDevice

        return ToDevice(device)(self)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def astype(self, dtype):
        from .functional.math import Cast

        return Cast(dtype)(self)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def requires_grad_(self, requires_grad=True):
        if requires_grad and not _is_float(self.dtype):
            raise TypeError(f"requires_grad_: dtype {self.dtype} cannot require gradients")
        self.requires_grad = requires_grad
        return self

    # --- gradients ----------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Compute d(self)/d(leaf) for every leaf that requires grad, into ``leaf.grad``.

        ``grad`` is the gradient of some final scalar with respect to ``self``;
        it may be left out only when ``self`` has one element.
        """
        for _ in backward_steps(self, grad, retain_graph=retain_graph):
            pass

    def zero_grad(self):
        self.grad = None

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad(): this tensor does not require grad")
        self._retains_grad = True
        return self

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed.

        ``grad`` is a Tensor; the hook may return a Tensor or array to use in
        its place. Returns a handle whose ``remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook(): cannot register a hook on a tensor that does not require grad")
        self._hooks.append(hook)
        return _HookHandle(self._hooks, hook)

    # --- operators (the ops themselves live in minise.functional.math) -------
    def __add__(self, other):
        return _math().add(self, other)

    def __radd__(self, other):
        return _math().add(other, self)

    def __sub__(self, other):
        return _math().sub(self, other)

    def __rsub__(self, other):
        return _math().sub(other, self)

    def __mul__(self, other):
        return _math().mul(self, other)

    def __rmul__(self, other):
        return _math().mul(other, self)

    def __truediv__(self, other):
        return _math().div(self, other)

    def __rtruediv__(self, other):
        return _math().div(other, self)

    def __pow__(self, other):
        return _math().pow(self, other)

    def __rpow__(self, other):
        return _math().pow(other, self)

    def __matmul__(self, other):
        return _math().matmul(self, other)

    def __rmatmul__(self, other):
        return _math().matmul(other, self)

    def __neg__(self):
        return _math().neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _math().abs(self)

    def __getitem__(self, index):
        return _math().getitem(self, index)

    # comparisons give boolean tensors with no graph (like PyTorch)
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(op(self.data, other))

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    __hash__ = object.__hash__  # tensors are graph nodes: hash by identity

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data.reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    # --- methods mirroring PyTorch ------------------------------------------
    def reshape(self, *shape):
        return _math().reshape(self, *shape)

    def view(self, *shape):
        return _math().reshape(self, *shape)

    def transpose(self, dim0, dim1):
        return _math().transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _math().permute(self, *dims)

    @property
    def T(self):
        return _math().permute(self, *reversed(range(self.ndim)))

    def flatten(self, start_dim=0, end_dim=-1):
        return _math().flatten(self, start_dim, end_dim)

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _math().sum(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _math().mean(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def max(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _math().max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def min(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _math().min(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        axis = dim if dim is not None else axis
        keepdims = keepdim if keepdim is not None else keepdims
        return Tensor(self.xp.argmax(self.data, axis=axis, keepdims=keepdims))

    def exp(self):
        return _math().exp(self)

    def log(self):
        return _math().log(self)

    def sqrt(self):
        return _math().sqrt(self)

    def abs(self):
        return _math().abs(self)

    def clip(self, min=None, max=None):
        return _math().clip(self, min, max)

    clamp = clip

    def relu(self):
        from .functional.activation import relu

        return relu(self)

    def sigmoid(self):
        from .functional.activation import sigmoid

        return sigmoid(self)

    def tanh(self):
        from .functional.activation import tanh

        return tanh(self)


def _math():
    from .functional import math as m

    return m


class _HookHandle:
    def __init__(self, hooks, hook):
        self._hooks = hooks
        self._hook = hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def tensor(data, requires_grad=False, dtype=None, device="cpu"):
    """Make a leaf Tensor, like ``torch.tensor``. Python floats become float32."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def as_tensor(value, like=None):
    """``value`` if it is a Tensor, else a constant Tensor (numbers match ``like``'s dtype/device)."""
    if isinstance(value, Tensor):
        return value
    if like is not None and not backend.is_array(value) and np.ndim(value) == 0:
        xp = backend.get_array_module(like.data)
        return Tensor(_scalar_to_array(value, like.data, xp))
    if like is not None:
        array = _to_array(value)
        if backend.get_array_module(array) is not like.xp:
            array = backend.to_device(array, like.device)
        return Tensor(array)
    return Tensor(value)


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

    def __call__(self, *inputs):
        tensors = _as_tensors(inputs)
        self.needs_input_grad = tuple(t.requires_grad for t in tensors)
        self.module_stack = tuple(_module_stack)
        raw = self.forward(*(t.data for t in tensors))
        if _anomaly_enabled:
            _check_finite(self, raw, "forward")
        requires_grad = _grad_enabled and any(self.needs_input_grad)
        output = Tensor(raw, requires_grad=requires_grad and _is_float(raw.dtype))
        self.output_shape = output.shape
        self.output_dtype = output.dtype
        if output.requires_grad:
            output.creator = self
            self.inputs = tensors
            self.freed = False
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
        if _anomaly_enabled:
            _check_finite(fn, gxs, "backward")
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


# --- anomaly detection (switched on by minise.debug.detect_anomaly) ---------
_anomaly_enabled = False


class AnomalyError(FloatingPointError):
    """An op produced NaN or Inf while ``detect_anomaly()`` was active."""


def _check_finite(fn, arrays, phase):
    if not isinstance(arrays, (tuple, list)):
        arrays = (arrays,)
    for i, a in enumerate(arrays):
        if a is None or not _is_float(a.dtype):
            continue
        xp = backend.get_array_module(a)
        if not bool(xp.isfinite(a).all()):
            stack = getattr(fn, "module_stack", ())
            if fn.module_path:
                where = fn.module_path
            elif stack:  # ran in the forward of the top-level module itself
                where = f"(the top-level {type(stack[0]).__name__})"
            else:
                where = "(outside any module)"
            what = "its output" if phase == "forward" else f"the gradient for input {i}"
            n_nan = int(xp.isnan(a).sum())
            n_inf = int(xp.isinf(a).sum())
            raise AnomalyError(
                f"detect_anomaly: {fn.name} in module {where} produced non-finite values in {phase} "
                f"({what}: {n_nan} NaN, {n_inf} Inf, shape {tuple(a.shape)})"
            )


def _set_anomaly(enabled):
    global _anomaly_enabled
    previous = _anomaly_enabled
    _anomaly_enabled = enabled
    return previous

