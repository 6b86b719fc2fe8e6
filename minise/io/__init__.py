"""Files: ``ms.save`` / ``ms.load`` (never unpickles), atomic writes, training checkpoints.

- ``serialization.py``: ``save(obj, path)`` / ``load(path)``, one zip of JSON + ``.npy`` files;
- ``atomic.py``: ``atomic_path`` / ``atomic_write_text``, how every file minise writes survives a crash;
- ``safetensors_bridge.py``: ``save_safetensors`` / ``load_safetensors``, state dicts PyTorch reads too;
- ``checkpoint.py``: the training checkpoint (a dict saved with ``save``) and its checks.
"""

from .atomic import atomic_path, atomic_write_text
from .checkpoint import load_checkpoint, resolve_checkpoint_path, save_checkpoint, to_host
from .safetensors_bridge import load_safetensors, save_safetensors
from .serialization import SerializationError, load, save

__all__ = ["save", "load", "SerializationError", "atomic_path", "atomic_write_text", "save_checkpoint",
           "load_checkpoint", "resolve_checkpoint_path", "to_host", "save_safetensors", "load_safetensors"]
