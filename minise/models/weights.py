"""Reading a weights file: a ``.safetensors`` file (optionally checked against its SHA-256) as NumPy arrays.

The `safetensors <https://github.com/huggingface/safetensors>`_ format is a JSON header (names,
dtypes, shapes, byte offsets) followed by the raw little-endian bytes: no pickle, no code, the same
file for NumPy, PyTorch, JAX. PyTorch's ``safetensors.torch.save_file(model.state_dict(), path)``
writes one; ``read_safetensors`` reads it into NumPy arrays with the ``safetensors`` package's
NumPy API. The package is an optional extra (``pip install 'minise[torch-bridge]'``), imported
only when a file is read.

This lives with the models (like torchvision's weights API) because ``models.se_resnet50(weights=PATH)``
needs it; ``ms.load_safetensors`` / ``ms.save_safetensors`` (minise/io) build on it.
"""

import hashlib
from pathlib import Path

__all__ = ["read_safetensors", "sha256sum", "import_safetensors", "WeightsError"]


class WeightsError(ValueError):
    """A weights file that does not fit: wrong hash, unknown key naming, unsupported dtype."""


def import_safetensors():
    """The ``safetensors.numpy`` module, or an ImportError that says how to install it."""
    try:
        import safetensors.numpy
    except ImportError as exc:
        raise ImportError(
            "reading or writing .safetensors files needs the `safetensors` package "
            "(pip install 'minise[torch-bridge]', or pip install safetensors)"
        ) from exc
    return safetensors.numpy


def sha256sum(path, chunk=1 << 20):
    """The SHA-256 of the file at ``path`` as 64 lowercase hex digits (read 1 MiB at a time)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def read_safetensors(path, sha256=None):
    """The tensors of the ``.safetensors`` file ``path`` as a dict name -> NumPy array.

    sha256: if given (hex digits, or a prefix of at least 8 of them, as in timm's file names), the
    file's SHA-256 must start with it, else :class:`WeightsError` names both. Raises
    FileNotFoundError for a missing file, ImportError without the ``safetensors`` package, and
    WeightsError for a file it cannot parse (bfloat16 tensors included: NumPy has no such dtype).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_safetensors: no file at {path}")
    st = import_safetensors()
    if sha256 is not None:
        expected = str(sha256).lower()
        if len(expected) < 8:
            raise ValueError(f"read_safetensors: sha256 must give at least 8 hex digits, got {sha256!r}")
        actual = sha256sum(path)
        if not actual.startswith(expected):
            raise WeightsError(f"read_safetensors: {path} has SHA-256 {actual}, expected {expected}: the file is "
                               "damaged, incomplete, or a different release; download it again")
    try:
        return st.load_file(str(path))
    except Exception as exc:  # safetensors raises its own SafetensorError / TypeError for bf16
        raise WeightsError(f"read_safetensors: cannot read {path} as safetensors ({type(exc).__name__}: {exc}); "
                           "bfloat16 files must be converted to float32 first") from None
