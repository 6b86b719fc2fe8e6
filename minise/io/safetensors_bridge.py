"""``ms.save_safetensors`` / ``ms.load_safetensors``: state dicts in the format PyTorch reads too.

minise's state dicts already use PyTorch's key names and layouts (``Conv2d.weight`` is
(out, in, kh, kw), ``Linear.weight`` (out, in), BatchNorm's ``running_mean`` / ``running_var`` /
``num_batches_tracked``), so a file written here loads into the PyTorch twin of the model with

    import safetensors.torch
    twin.load_state_dict(safetensors.torch.load_file("model.safetensors"))

and a file PyTorch wrote (``safetensors.torch.save_file(twin.state_dict(), path)``) loads back with
``model.load_state_dict(ms.load_safetensors(path))``. Needs the ``safetensors`` package
(``pip install 'minise[torch-bridge]'``), imported only when called. docs/pytorch.md walks through it.
"""

from .. import backend
from ..models.weights import import_safetensors, read_safetensors
from ..tensor import Tensor
from .atomic import atomic_path

__all__ = ["save_safetensors", "load_safetensors"]


def save_safetensors(state_dict, path, metadata=None):
    """Write ``state_dict`` (name -> Tensor or NumPy/CuPy array) to the ``.safetensors`` file ``path``.

    Arrays are copied to the CPU and made contiguous; the write is atomic. ``metadata``: an optional
    dict of str -> str stored in the header (``{"format": "pt"}`` is added, as PyTorch's writer does).
    Raises TypeError for a non-string key or a value that is not an array.
    """
    arrays = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"save_safetensors: keys must be strings, got {key!r}")
        if isinstance(value, Tensor):
            value = value.data
        if not backend.is_array(value):
            raise TypeError(f"save_safetensors: {key!r} is a {type(value).__name__}, expected a Tensor or an array")
        arrays[key] = backend.to_numpy(value).copy(order="C")
    st = import_safetensors()
    header = {"format": "pt", **{str(k): str(v) for k, v in (metadata or {}).items()}}
    with atomic_path(path) as tmp:
        try:
            st.save_file(arrays, str(tmp), metadata=header)
        except Exception as exc:   # safetensors' own SafetensorError wraps the I/O error of the disk
            if type(exc).__name__ != "SafetensorError":
                raise
            raise OSError(f"safetensors could not write {path}: {exc}") from None


def load_safetensors(path, device="cpu", sha256=None):
    """Read a ``.safetensors`` file as a dict name -> Tensor (on ``device``), ready for ``load_state_dict``.

    sha256: the file's expected SHA-256 (or its first 8+ hex digits), checked before reading;
    a mismatch raises ``minise.models.WeightsError``. Dtypes are kept (float32 stays float32,
    int64 ``num_batches_tracked`` stays int64).
    """
    return {key: Tensor(value, device=device) for key, value in read_safetensors(path, sha256).items()}
