"""The Tensor: one NumPy or CuPy array (``.data``), its gradient, and PyTorch's methods.

A tensor made by an op remembers that op as its ``creator``; the op (a
:class:`minise.autograd.Function`) remembers its inputs: that is the whole graph.
The graph, the ops and the backward walk live in the layers above this file:

- ``minise.autograd``: Function and the backward walk (``loss.backward()``);
- ``minise.functional``: the ops behind ``+``, ``@``, ``x.sum()``, ``x.reshape()``...

Those layers import Tensor. So that this file need not import them back (an
import circle), Tensor reaches them through two module references, ``_ops`` and
``_engine``, that ``minise/__init__.py`` hands over once with :func:`bind` when
the package is imported. That single call is the only link going up the layers.
"""

import numpy as np

from . import backend, dtypes
from .dtypes import DEFAULT_DTYPE

__all__ = ["Tensor", "tensor", "as_tensor", "bind", "DEFAULT_DTYPE"]


# --- the one link up the layers ----------------------------------------------
class _Unbound:
    def __init__(self, what):
        self.what = what

    def __getattr__(self, name):
        raise RuntimeError(f"minise.tensor: {self.what} are not bound yet; `import minise` binds them")


_ops = _Unbound("the ops (minise.functional)")
_engine = _Unbound("the backward walk (minise.autograd)")


def bind(ops, engine):
    """Give Tensor its ops (``minise.functional``) and its engine (``minise.autograd``).

    Called once, by ``minise/__init__.py``; see the module docstring for why.
    """
    global _ops, _engine
    _ops, _engine = ops, engine


# --- dtype helpers: the policy lives in minise.dtypes ------------------------
_is_float = dtypes.is_float


def _to_array(data, dtype=None, device=None):
    """Turn lists, numbers, NumPy or CuPy arrays into an array on ``device`` (see dtypes.to_array)."""
    if isinstance(data, Tensor):
        data = data.data
    return dtypes.to_array(data, dtype, device)


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

    def size(self, dim=None):
        """The shape as a tuple (``dim`` given: that one size), as ``torch.Tensor.size``. NumPy's count is numel()."""
        return self.shape if dim is None else self.shape[_ops.dims.dim_index(dim, self.ndim, "size")]

    def numel(self):
        """The number of elements (NumPy's ``.size``)."""
        return int(self.data.size)

    def dim(self):
        return self.data.ndim

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
        body = np.array2string(backend.to_numpy(self.data), precision=4, separator=", ", threshold=50,
                               prefix="tensor(")  # continuation rows line up under the first
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype not in (DEFAULT_DTYPE, np.int64, np.bool_):  # the dtypes PyTorch does not print
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
            raise RuntimeError(f"item(): only one-element tensors can become a number, got shape {self.shape}")
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
        if backend.to_device(self.data, device) is self.data:  # already there (checks the name too)
            return self
        return _ops.to_device(self, device)

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def astype(self, dtype):
        return _ops.cast(self, dtype)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    def long(self):
        return self.astype(np.int64)

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
        for _ in _engine.backward_steps(self, grad, retain_graph=retain_graph):
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

    # --- operators (the ops themselves live in minise.functional) -------------
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __pow__(self, other):
        return _ops.pow(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.abs(self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    # comparisons give boolean tensors with no graph (like PyTorch); numbers compare in result_type
    def _compare(self, other, op):
        if isinstance(other, Tensor):
            other = other.data
        elif not backend.is_array(other):
            other = dtypes.scalar_to_array(other, dtypes.result_type(self.data, other), self.xp)
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
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data.reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    # --- methods mirroring PyTorch ------------------------------------------
    def reshape(self, *shape):
        return _ops.reshape(self, *shape)

    def view(self, *shape):
        return _ops.view(self, *shape)

    def unsqueeze(self, dim):
        return _ops.unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return _ops.squeeze(self, dim)

    def clone(self):
        return _ops.clone(self)

    def contiguous(self):
        return _ops.contiguous(self)

    def transpose(self, dim0, dim1):
        return _ops.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _ops.permute(self, *dims)

    @property
    def T(self):
        return _ops.permute(self, *reversed(range(self.ndim)))

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops.flatten(self, start_dim, end_dim)

    def sum(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _ops.sum(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def mean(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        return _ops.mean(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """``x.max(1)`` / ``x.max(dim=1)``: (values, indices) as PyTorch; ``x.max(axis=1)``: the values, as NumPy."""
        return _ops.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """``x.min(1)`` / ``x.min(dim=1)``: (values, indices) as PyTorch; ``x.min(axis=1)``: the values, as NumPy."""
        return _ops.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _ops.argmax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _ops.argmin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def norm(self, p=2, dim=None, keepdim=False):
        return _ops.norm(self, p, dim, keepdim)

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def abs(self):
        return _ops.abs(self)

    def clip(self, min=None, max=None):
        return _ops.clip(self, min, max)

    clamp = clip

    def relu(self):
        return _ops.relu(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def tanh(self):
        return _ops.tanh(self)


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
        return Tensor(dtypes.scalar_to_array(value, dtypes.result_type(like.data, value), xp))
    if like is not None:
        array = _to_array(value)
        if backend.get_array_module(array) is not like.xp:
            array = backend.to_device(array, like.device)
        return Tensor(array)
    return Tensor(value)
