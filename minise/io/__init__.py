"""Files: ``ms.save`` / ``ms.load`` (never unpickles), atomic writes, training checkpoints.

- ``serialization.py``: ``save(obj, path)`` / ``load(path)``, one zip of JSON + ``.npy`` files;
- ``atomic.py``: ``atomic_path`` / ``atomic_write_text``, how every file minise writes survives a crash;
- ``checkpoint.py``: the training checkpoint (a dict saved with ``save``) and its schema;
- ``safetensors_bridge.py``: ``save_safetensors`` / ``load_safetensors``, state dicts PyTorch reads too;
- ``text.py``: ``printable``, strings from files made safe to print.
"""

from .atomic import atomic_path, atomic_write_text, remove_stale_temps
from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    not_regular,
    refuse_non_regular,
    resolve_checkpoint_path,
    save_checkpoint,
    to_host,
    validate_checkpoint,
)
from .safetensors_bridge import load_safetensors, save_safetensors
from .serialization import SerializationError, load, save
from .text import printable

__all__ = ["save", "load", "SerializationError", "atomic_path", "atomic_write_text", "remove_stale_temps",
           "save_checkpoint", "load_checkpoint", "validate_checkpoint", "CheckpointError",
           "resolve_checkpoint_path", "not_regular", "refuse_non_regular", "to_host", "printable",
           "save_safetensors", "load_safetensors"]
