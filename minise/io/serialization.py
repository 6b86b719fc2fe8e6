"""``ms.save(obj, path)`` / ``ms.load(path)``: checkpoints that never run code when loaded.

A checkpoint is ONE zip file (like ``np.savez``), readable with any zip tool:

* ``structure.json``: the tree of the saved object -- dicts, lists, tuples,
  numbers, strings -- with every array replaced by the name of its entry;
* ``arrays/0.npy``, ``arrays/1.npy``, ...: one ``.npy`` file per array,
  read back with ``allow_pickle=False``.

``torch.save`` uses pickle, which can run arbitrary code when a file is
loaded; here loading only parses JSON and raw array bytes, so a checkpoint
from a stranger can at worst contain wrong numbers.

What can be saved: dicts (keys str, int, float, bool, None or NumPy scalars -- int keys stay
ints, e.g. an optimizer's parameter indices), lists, tuples, str, int (any
size: a PCG64 generator state is a 128-bit int), float (nan and inf too),
bool, None, NumPy arrays (not object arrays) and NumPy scalars, CuPy arrays
(saved from the CPU), and minise Tensors (saved as their data on the CPU,
loaded back as CPU Tensors with the same ``requires_grad``). Dict subclasses
(OrderedDict, Counter) load back as plain dicts, tuple subclasses as tuples.

Writing is atomic: the zip goes to a temporary file in the same folder,
which is flushed to disk and then renamed over ``path`` in one step, so a
crash or a Ctrl-C leaves either the old file or the new one, never half of one.
"""

import json
import os
import secrets
import zipfile

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = ["save", "load", "SerializationError"]

FORMAT = "minise"
FORMAT_VERSION = 1
STRUCTURE = "structure.json"


class SerializationError(ValueError):
    """A file that ``ms.load`` cannot read: not written by ``ms.save``, damaged, or carrying pickled data."""


# --- saving ------------------------------------------------------------------
def save(obj, path):
    """Write ``obj`` (a tree of dicts/lists/tuples of arrays, Tensors, numbers, strings) to ``path``.

    path: a file name (str or os.PathLike), written atomically; or an open
    binary file object, written to as it is.
    """
    arrays = []
    root = _encode(obj, arrays, "obj", set())
    structure = json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "root": root}, allow_nan=False)
    if hasattr(path, "write"):
        _write_zip(path, structure, arrays)
        return
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"ms.save: cannot write {path}: the folder {folder} does not exist")
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: never write into someone else's file; mode 0o666 minus the umask, like open().
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_zip(f, structure, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def _encode(obj, arrays, where, active):
    """Return the JSON node for ``obj``; append its arrays to ``arrays``.

    where: a readable path to ``obj`` for error messages, e.g. ``obj['model']['fc.weight']``.
    active: ids of the containers being encoded (to catch an object that contains itself).
    """
    if isinstance(obj, Tensor):
        return {"type": "tensor", "entry": _add_array(arrays, obj.data, where), "requires_grad": obj.requires_grad}
    if backend.is_array(obj):
        return {"type": "ndarray", "entry": _add_array(arrays, obj, where)}
    if isinstance(obj, np.generic):                 # before float: np.float64 is a float subclass
        return {"type": "numpy_scalar", "entry": _add_array(arrays, np.asarray(obj), where)}
    if obj is None:
        return {"type": "none"}
    if isinstance(obj, bool):                       # before int: bool is an int subclass
        return {"type": "bool", "value": obj}
    if isinstance(obj, int):
        return {"type": "int", "value": str(int(obj))}          # a string: exact for any size
    if isinstance(obj, float):
        return {"type": "float", "value": repr(float(obj))}     # repr round-trips exactly; 'nan', 'inf' too
    if isinstance(obj, str):
        return {"type": "str", "value": obj}
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in active:
            raise ValueError(f"ms.save: {where} contains itself; a checkpoint must be a tree")
        active.add(id(obj))
        try:
            if isinstance(obj, dict):
                items = []
                for key, value in obj.items():
                    if not isinstance(key, (str, int, float, type(None), np.generic)):
                        raise TypeError(
                            f"ms.save: {where} has a key {key!r} of type {type(key).__name__}; "
                            "dict keys must be str, int, float, bool, None or NumPy scalars"
                        )
                    items.append([_encode(key, arrays, where, active),
                                  _encode(value, arrays, f"{where}[{key!r}]", active)])
                return {"type": "dict", "items": items}
            kind = "list" if isinstance(obj, list) else "tuple"
            return {"type": kind,
                    "items": [_encode(value, arrays, f"{where}[{i}]", active) for i, value in enumerate(obj)]}
        finally:
            active.discard(id(obj))
    raise TypeError(
        f"ms.save: cannot save {where} of type {type(obj).__name__}. Supported: dict, list, tuple, str, int, "
        "float, bool, None, NumPy/CuPy arrays and scalars, minise Tensors (save a module's or an "
        "optimizer's state_dict(), not the object itself)"
    )


def _add_array(arrays, array, where):
    array = backend.to_numpy(array)
    if array.dtype.hasobject:
        raise TypeError(
            f"ms.save: {where} is an array of dtype {array.dtype}, which holds Python objects; "
            "saving it would need pickle. Convert it to a numeric array"
        )
    entry = f"arrays/{len(arrays)}.npy"
    arrays.append((entry, array))
    return entry


def _write_zip(file, structure, arrays):
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(STRUCTURE, structure)
        for entry, array in arrays:
            _write_array(zf, entry, array)


def _write_array(zf, entry, array):
    with zf.open(entry, "w", force_zip64=True) as f:
        np.lib.format.write_array(f, array, allow_pickle=False)


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX); not possible (nor needed) on every platform."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- loading -----------------------------------------------------------------
def load(path, map_location=None, weights_only=True):
    """Read what :func:`save` wrote. Arrays come back as NumPy arrays, Tensors as CPU Tensors.

    path: a file name or an open binary file object. map_location: None or "cpu" (everything
    on the CPU, the default), or "cuda" / "cuda:N": arrays and Tensors are moved to that GPU,
    as ``torch.load(path, map_location=...)``. weights_only: accepted for PyTorch scripts;
    minise never unpickles, so loading is always "weights only" whatever it says. Raises
    :class:`SerializationError` (a ValueError) naming the file when it is not
    a minise checkpoint, is damaged, or holds pickled data; a bad ``map_location`` raises
    TypeError (not a string) or ``backend.DeviceError``.
    """
    if map_location is not None and not isinstance(map_location, str):
        raise TypeError(f"ms.load: map_location must be None or a device string ('cpu', 'cuda', 'cuda:N'), "
                        f"got {type(map_location).__name__}")
    if map_location is not None:
        backend.parse_device(map_location)
    obj = _load(path)
    if map_location is None or backend.parse_device(map_location)[0] == "cpu":
        return obj
    return _to_device(obj, map_location)


def _to_device(obj, device):
    """``obj`` with every array and Tensor moved to ``device`` (dicts, lists and tuples walked)."""
    if isinstance(obj, Tensor):
        return Tensor(backend.to_device(obj.data, device), requires_grad=obj.requires_grad)
    if backend.is_array(obj):
        return backend.to_device(obj, device)
    if isinstance(obj, dict):
        return {key: _to_device(value, device) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(value, device) for value in obj)
    return obj


def _load(path):
    name = repr(path) if hasattr(path, "read") else os.fspath(path)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise SerializationError(
            f"ms.load: {name} is not a minise checkpoint: it is not a zip file ({exc}); "
            "it may be truncated, or written by something other than ms.save"
        ) from None
    with zf:
        try:
            try:
                header = json.loads(zf.read(STRUCTURE).decode("utf-8"))
            except KeyError:
                raise SerializationError(
                    f"ms.load: {name} is a zip file without {STRUCTURE}, so not a minise checkpoint "
                    "(torch.save and np.savez files are zips too; ms.load reads only what ms.save wrote)"
                ) from None
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise SerializationError(f"ms.load: {name}: {STRUCTURE} does not describe a minise checkpoint")
            if header.get("version") != FORMAT_VERSION:
                raise SerializationError(
                    f"ms.load: {name} has checkpoint format version {header.get('version')!r}; this minise "
                    f"reads version {FORMAT_VERSION}"
                )
            return _decode(header["root"], zf)
        except SerializationError:
            raise
        except _PickleRefused as exc:
            raise SerializationError(
                f"ms.load: {name}: entry {exc} holds pickled Python objects; refusing to unpickle them "
                "(unpickling can run arbitrary code)"
            ) from None
        except (zipfile.BadZipFile, KeyError, TypeError, ValueError, EOFError, RecursionError) as exc:
            raise SerializationError(
                f"ms.load: {name} is damaged or not a valid minise checkpoint ({type(exc).__name__}: {exc})"
            ) from None


class _PickleRefused(Exception):
    """An array entry that would need pickle to load."""


def _decode(node, zf):
    kind = node["type"]
    if kind == "none":
        return None
    if kind == "bool":
        return bool(node["value"])
    if kind == "int":
        return int(node["value"])
    if kind == "float":
        return float(node["value"])
    if kind == "str":
        return str(node["value"])
    if kind == "list":
        return [_decode(item, zf) for item in node["items"]]
    if kind == "tuple":
        return tuple(_decode(item, zf) for item in node["items"])
    if kind == "dict":
        return {_decode(key, zf): _decode(value, zf) for key, value in node["items"]}
    if kind == "ndarray":
        return _read_array(zf, node["entry"])
    if kind == "numpy_scalar":
        return _read_array(zf, node["entry"])[()]
    if kind == "tensor":
        return Tensor(_read_array(zf, node["entry"]), requires_grad=bool(node["requires_grad"]))
    raise ValueError(f"unknown node type {kind!r}")


def _read_array(zf, entry):
    with zf.open(entry) as f:
        try:
            return np.lib.format.read_array(f, allow_pickle=False)
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise _PickleRefused(entry) from None
            raise
