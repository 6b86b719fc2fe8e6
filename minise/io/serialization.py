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

import errno
import json
import os
import re
import stat
import struct
import zipfile
import zlib

import numpy as np

from .. import backend
from ..tensor import Tensor
from .atomic import atomic_write_bytes

__all__ = ["save", "load", "SerializationError"]

FORMAT = "minise"
FORMAT_VERSION = 1
STRUCTURE = "structure.json"


class SerializationError(ValueError):
    """A file that ``ms.load`` cannot read: not written by ``ms.save``, damaged, or carrying pickled data."""


# --- saving ------------------------------------------------------------------
def save(obj, path):
    """Write ``obj`` (a tree of dicts/lists/tuples of arrays, Tensors, numbers, strings) to ``path``.

    path: a file name (str or os.PathLike), written atomically with
    :func:`minise.io.atomic.atomic_write_bytes` (which also removes temporary
    files of earlier saves that were killed); or an open binary file object,
    written to as it is. Raises FileNotFoundError when the folder is missing.
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
    atomic_write_bytes(path, lambda f: _write_zip(f, structure, arrays), make_parents=False)


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


# --- loading -----------------------------------------------------------------
# Budgets, checked before anything is read (tests lower them with monkeypatch).
MAX_STRUCTURE_BYTES = 64 << 20   # structure.json, decompressed: a ResNet-110 checkpoint needs < 1 MiB
MAX_ARRAY_BYTES = 16 << 30       # one array
MAX_NPY_HEADER = 10_000          # bytes of an .npy header (NumPy's own default limit)
ENTRY_NAME = re.compile(r"^arrays/\d+\.npy$")


def load(path, map_location=None, weights_only=True):
    """Read what :func:`save` wrote. Arrays come back as NumPy arrays, Tensors as CPU Tensors.

    path: a file name or an open binary file object. map_location: None or "cpu" (everything
    on the CPU, the default), or "cuda" / "cuda:N": arrays and Tensors are moved to that GPU,
    as ``torch.load(path, map_location=...)``. weights_only: accepted for PyTorch scripts;
    minise never unpickles, so loading is always "weights only" whatever it says.

    A file from a stranger is data, never instructions, and never a reason to
    allocate more memory than it holds: before reading a member, ``load``
    checks that it is not encrypted, that it is stored as ``ms.save`` stores it
    (``structure.json`` may also be deflated, up to :data:`MAX_STRUCTURE_BYTES`),
    that its bytes lie inside the file, and that each array's declared
    shape x itemsize is exactly the member's size and at most
    :data:`MAX_ARRAY_BYTES`; each array entry may be used once.

    Raises :class:`SerializationError` (a ValueError) naming the file, and the
    member when there is one, for anything wrong with the file's content:
    not a minise checkpoint, truncated, bit-flipped, a decompression bomb,
    pickled data. An OSError only when the file cannot be opened or read
    at all (missing, a folder, permission denied, an I/O error of the disk). A bad
    ``map_location`` raises TypeError (not a string) or ``backend.DeviceError``.
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
    opened = None
    if not hasattr(path, "read"):
        opened = path = open_regular(path, "ms.load")
    try:
        return _load_from(path, name)
    finally:
        if opened is not None:
            opened.close()


def _load_from(file, name):
    try:
        zf = zipfile.ZipFile(file)
    except OSError as exc:
        if not _from_content(exc):
            raise
        raise SerializationError(f"ms.load: {name} is not a minise checkpoint: its zip directory points to "
                                 f"impossible places ({exc})") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OverflowError) as exc:
        raise SerializationError(
            f"ms.load: {name} is not a minise checkpoint: it is not a zip file ({exc}); "
            "it may be truncated, or written by something other than ms.save"
        ) from None
    reader = _Reader(zf, name, _file_size(file))
    with zf:
        try:
            header = json.loads(reader.read_structure().decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise SerializationError(f"ms.load: {name}: {STRUCTURE} does not describe a minise checkpoint")
            if header.get("version") != FORMAT_VERSION:
                raise SerializationError(
                    f"ms.load: {name} has checkpoint format version {header.get('version')!r}; this minise "
                    f"reads version {FORMAT_VERSION}"
                )
            if "root" not in header:
                raise SerializationError(f"ms.load: {name}: {STRUCTURE} has no 'root'")
            return _decode(header["root"], reader)
        except SerializationError:
            raise
        except OSError as exc:
            if not _from_content(exc):
                raise
            raise SerializationError(f"ms.load: {name} is damaged or not a valid minise checkpoint "
                                     f"(member {reader.member}): {exc}") from None
        except _Refused as exc:
            raise SerializationError(f"ms.load: {name} is damaged or not a valid minise checkpoint: {exc}") from None
        except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, TypeError, ValueError, EOFError,
                RecursionError, OverflowError, NotImplementedError, RuntimeError, MemoryError,
                zlib.error, struct.error) as exc:
            member = f" (member {reader.member})" if reader.member else ""
            raise SerializationError(
                f"ms.load: {name} is damaged or not a valid minise checkpoint{member}: "
                f"{type(exc).__name__}: {exc}"
            ) from None


def open_regular(path, who):
    """``open(path, "rb")`` of a regular file (a symlink to one is fine). A device, a pipe or a
    socket (``/dev/zero`` or a FIFO named like a checkpoint) is refused with SerializationError
    before it is opened: it could be read forever. OSError when it cannot be opened at all."""
    mode = os.stat(path).st_mode                      # FileNotFoundError etc. here
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a folder: open() says IsADirectoryError
        raise SerializationError(f"{who}: {os.fspath(path)} is not a regular file (a device, a pipe or a "
                                 "socket); expected a file minise wrote")
    return open(path, "rb")


def _from_content(exc):
    """True for an OSError that the file's content caused (a seek to a negative offset), not the disk."""
    return exc.errno in (None, errno.EINVAL)


class _Refused(Exception):
    """A member that ``load`` will not read; the message names it and says why."""


def _file_size(file):
    try:
        return os.fstat(file.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        position = file.tell()
        size = file.seek(0, os.SEEK_END)
        file.seek(position)
        return size


class _Reader:
    """Reads the members of one checkpoint zip, checking every budget before reading a byte."""

    def __init__(self, zf, name, file_size):
        self.zf, self.name, self.file_size = zf, name, file_size
        self.used = set()
        self.member = None

    def _info(self, entry, allowed_methods):
        self.member = entry
        try:
            info = self.zf.getinfo(entry)
        except KeyError:
            raise _Refused(f"member {entry!r} named in {STRUCTURE} is missing from the zip") from None
        if info.flag_bits & 0x1:
            raise _Refused(f"member {entry!r} is encrypted; ms.save never encrypts")
        if info.compress_type not in allowed_methods:
            raise _Refused(f"member {entry!r} uses zip compression method {info.compress_type}; "
                           f"ms.save stores it uncompressed (method 0)")
        if info.header_offset < 0 or info.header_offset + info.compress_size > self.file_size:
            raise _Refused(f"member {entry!r} claims {info.compress_size:,} bytes at offset {info.header_offset:,}, "
                           f"past the end of the {self.file_size:,}-byte file (truncated?)")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise _Refused(f"member {entry!r} is stored but declares {info.file_size:,} bytes "
                           f"in {info.compress_size:,}")
        return info

    def read_structure(self):
        try:
            self.zf.getinfo(STRUCTURE)
        except KeyError:
            raise SerializationError(
                f"ms.load: {self.name} is a zip file without {STRUCTURE}, so not a minise checkpoint "
                "(torch.save and np.savez files are zips too; ms.load reads only what ms.save wrote)"
            ) from None
        info = self._info(STRUCTURE, (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED))
        if info.file_size > MAX_STRUCTURE_BYTES:
            raise _Refused(f"member {STRUCTURE} declares {info.file_size:,} bytes, over the "
                           f"{MAX_STRUCTURE_BYTES:,}-byte limit (a decompression bomb?)")
        with self.zf.open(info) as f:
            data = f.read(info.file_size + 1)
        if len(data) != info.file_size:
            raise _Refused(f"member {STRUCTURE} holds {len(data):,} bytes, not the {info.file_size:,} it declares")
        self.member = None
        return data

    def read_array(self, entry):
        if not isinstance(entry, str) or not ENTRY_NAME.match(entry):
            raise _Refused(f"array entry {entry!r} is not a name ms.save writes (arrays/<n>.npy)")
        if entry in self.used:
            raise _Refused(f"member {entry!r} is used twice in {STRUCTURE}; ms.save writes each array once")
        self.used.add(entry)
        return self.read_npy(entry)

    def read_npy(self, entry):
        """The .npy member ``entry``, stored uncompressed, its declared size checked before reading."""
        info = self._info(entry, (zipfile.ZIP_STORED,))
        with self.zf.open(info) as f:
            dtype, shape, fortran_order = self._npy_header(f, entry)
            header_size = f.tell()
            itemsize = dtype.itemsize
            count = 1
            for n in shape:
                count *= n
            nbytes = count * itemsize
            if nbytes != info.file_size - header_size:
                raise _Refused(f"member {entry!r} declares shape {shape} of {dtype} ({nbytes:,} bytes) "
                               f"but holds {info.file_size - header_size:,} bytes of data")
            if nbytes > MAX_ARRAY_BYTES:
                raise _Refused(f"member {entry!r} declares {nbytes:,} bytes, over the "
                               f"{MAX_ARRAY_BYTES:,}-byte limit for one array")
            array = np.empty(count, dtype=dtype)
            view = memoryview(array.view(np.uint8).reshape(-1)) if nbytes else None
            position = 0
            while position < nbytes:
                block = f.read(min(1 << 20, nbytes - position))
                if not block:
                    raise _Refused(f"member {entry!r} ends after {position:,} of {nbytes:,} bytes")
                view[position:position + len(block)] = block
                position += len(block)
            f.read(1)  # reach the end, so zipfile checks the CRC
        self.member = None
        if fortran_order:
            return array.reshape(shape[::-1]).transpose()
        return array.reshape(shape)

    def _npy_header(self, f, entry):
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=MAX_NPY_HEADER)
        else:
            raise _Refused(f"member {entry!r} is .npy format version {version}; ms.save writes 1.0 or 2.0")
        if dtype.hasobject:
            raise _Refused(f"member {entry!r} holds pickled Python objects (dtype {dtype}); refusing to unpickle "
                           "them (unpickling can run arbitrary code)")
        if any(n < 0 for n in shape):
            raise _Refused(f"member {entry!r} declares a negative shape {shape}")
        return dtype, tuple(shape), fortran_order


_NODE_KINDS = ("none", "bool", "int", "float", "str", "list", "tuple", "dict", "ndarray", "numpy_scalar", "tensor")


def _decode(node, reader):
    if not isinstance(node, dict) or node.get("type") not in _NODE_KINDS:
        kind = node.get("type") if isinstance(node, dict) else type(node).__name__
        raise ValueError(f"unknown node type {kind!r}")
    kind = node["type"]
    if kind == "none":
        return None
    if kind == "bool":
        return bool(node["value"])
    if kind == "int":
        return int(_scalar(node, str))
    if kind == "float":
        return float(_scalar(node, str))
    if kind == "str":
        return _scalar(node, str)
    if kind in ("list", "tuple", "dict"):
        items = node["items"]
        if not isinstance(items, list):
            raise TypeError(f"{kind} node items must be a list, got {type(items).__name__}")
        if kind == "list":
            return [_decode(item, reader) for item in items]
        if kind == "tuple":
            return tuple(_decode(item, reader) for item in items)
        out = {}
        for pair in items:
            if not isinstance(pair, list) or len(pair) != 2:
                raise TypeError("dict node items must be [key, value] pairs")
            out[_decode(pair[0], reader)] = _decode(pair[1], reader)
        return out
    array = reader.read_array(node["entry"])
    if kind == "ndarray":
        return array
    if kind == "numpy_scalar":
        if array.shape != ():
            raise ValueError(f"numpy_scalar entry {node['entry']!r} has shape {array.shape}, expected ()")
        return array[()]
    return Tensor(array, requires_grad=bool(node["requires_grad"]))


def _scalar(node, kind):
    value = node["value"]
    if not isinstance(value, kind):
        raise TypeError(f"{node['type']} node value must be a {kind.__name__}, got {type(value).__name__}")
    return value
