"""CIFAR-10 from the official python archive, read without trusting pickle.

The archive ``cifar-10-python.tar.gz`` (Krizhevsky, 2009) holds the folder
``cifar-10-batches-py/`` with five training batches, one test batch and
``batches.meta``. Each batch is a Python 2 pickle of a dict::

    {b"data": uint8 array (10000, 3072),   # 1024 red, 1024 green, 1024 blue values per image
     b"labels": [int, ...],                # 10000 labels in 0..9
     b"batch_label": b"...", b"filenames": [b"...", ...]}

A pickle can run any code when loaded, so three locks guard it:

1. every file's MD5 must match the official checksum before it is opened;
2. the unpickler admits only the three globals NumPy needs to rebuild an
   array (``_reconstruct``, ``ndarray``, ``dtype``) and refuses anything else
   with a ``pickle.UnpicklingError`` that names the global;
3. those three are stand-ins, not NumPy's own: an array is materialised only
   after its shape, its dtype (plain numbers only) and the length of its bytes
   have been checked against each other and :data:`MAX_ARRAY_BYTES`.
"""

import os
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import numpy as np

from .dataset import ArrayDataset
from .download import ChecksumError, default_data_dir, download_url, md5sum

__all__ = ["CIFAR10", "load_cifar_batch"]


MAX_ARRAY_BYTES = 64 << 20  # one array in a batch file (the official data arrays are 30 MB)
_DTYPES = {"u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8", "b1"}


class _NDArray:
    """Stands for ``numpy.ndarray`` inside a batch pickle; only :func:`_reconstruct` accepts it."""


class _PendingArray:
    """What ``_reconstruct`` gives: an array to be, built by ``__setstate__`` once its state is checked.

    NumPy pickles an array as ``_reconstruct(ndarray, (0,), b"b")`` followed by
    the state ``(version, shape, dtype, fortran_order, raw_bytes)``.
    """

    def __init__(self, source):
        self.source, self.array = source, None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError(f"CIFAR10: {self.source}: an array state is not NumPy's 5-tuple")
        _, shape, dtype, fortran_order, raw = state
        if (not isinstance(shape, tuple) or len(shape) > 4
                or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
            raise pickle.UnpicklingError(f"CIFAR10: {self.source}: an array has shape {shape!r}")
        if not isinstance(dtype, np.dtype) or dtype.str[1:] not in _DTYPES:
            raise pickle.UnpicklingError(f"CIFAR10: {self.source}: an array has dtype {dtype!r}, not a plain number")
        if not isinstance(raw, bytes):
            raise pickle.UnpicklingError(f"CIFAR10: {self.source}: an array's data is a {type(raw).__name__}, "
                                         "not bytes")
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if nbytes != len(raw) or nbytes > MAX_ARRAY_BYTES:
            raise pickle.UnpicklingError(
                f"CIFAR10: {self.source}: an array declares shape {shape} of {dtype} ({nbytes:,} bytes) but "
                f"holds {len(raw):,} bytes (at most {MAX_ARRAY_BYTES:,} are read)")
        order = "F" if fortran_order else "C"
        self.array = np.frombuffer(raw, dtype=dtype).reshape(shape, order=order).copy(order=order)


def _materialise(value, source):
    """``value`` with every checked pending array replaced by its NumPy array (through dicts and lists)."""
    if isinstance(value, _PendingArray):
        if value.array is None:
            raise pickle.UnpicklingError(f"CIFAR10: {source}: an array without its data")
        return value.array
    if isinstance(value, dict):
        return {k: _materialise(v, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_materialise(v, source) for v in value]
    return value


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays of plain numbers, checked, and nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),   # written by NumPy 1.x (the official files)
        ("numpy._core.multiarray", "_reconstruct"),  # written by NumPy 2.x
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def __init__(self, file, source):
        super().__init__(file, encoding="bytes")  # Python 2 str -> bytes, as in the official reader
        self.source = source

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"CIFAR10: refused to load global '{module}.{name}' from {self.source}: "
                "the official batch files need only NumPy array reconstruction"
            )
        if name == "_reconstruct":
            return self._reconstruct
        if name == "ndarray":
            return _NDArray
        return self._dtype

    def _reconstruct(self, cls, shape, typecode):
        if cls is not _NDArray:
            raise pickle.UnpicklingError(f"CIFAR10: {self.source}: _reconstruct of something other than an array")
        return _PendingArray(self.source)

    def _dtype(self, spec, align=False, copy=False):
        name = spec.decode("latin1") if isinstance(spec, bytes) else spec
        if not isinstance(name, str) or name.lstrip("<>|=") not in _DTYPES:
            raise pickle.UnpicklingError(f"CIFAR10: {self.source}: refused dtype {spec!r}; the batches hold "
                                         "plain numbers")
        return np.dtype(name)


def load_cifar_batch(path):
    """Unpickle one CIFAR batch file with the restricted unpickler; dict keys become str.

    Check the file's MD5 first (``CIFAR10`` does): the unpickler refuses foreign
    globals, but a checksum is what proves the file is the official one.
    """
    with open(path, "rb") as f:
        batch = _materialise(_CifarUnpickler(f, path).load(), path)
    if not isinstance(batch, dict):
        raise ValueError(f"CIFAR10: {path} should hold a dict, got {type(batch).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}


class CIFAR10(ArrayDataset):
    """CIFAR-10: 60,000 32x32 colour images in 10 classes (50,000 train, 10,000 test).

    root: folder holding ``cifar-10-python.tar.gz`` or its extracted
    ``cifar-10-batches-py/`` (default: :func:`~minise.data.default_data_dir`).
    train: the five training batches, else the test batch.
    download: fetch the archive (170 MB, resumable, MD5-checked) if it is not there.
    url, md5s: the address and the checksum table (``CIFAR10.MD5S``'s keys), for mirrors and tests.

    ``.images`` uint8 (N, 3, 32, 32), ``.labels`` int64 (N,), ``.classes`` the
    ten names from ``batches.meta``.
    """

    URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    ARCHIVE = "cifar-10-python.tar.gz"
    ARCHIVE_SIZE = 170_498_071
    FOLDER = "cifar-10-batches-py"
    TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
    TEST_FILES = ["test_batch"]
    META = "batches.meta"
    MD5S = {
        ARCHIVE: "c58f30108f718f92721af3b95e74349a",
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
    }
    # channel statistics of the training set, pixels scaled to [0, 1]
    MEAN = (0.4914, 0.4822, 0.4465)
    STD = (0.2470, 0.2435, 0.2616)

    def __init__(self, root=None, train=True, download=False, *, url=None, md5s=None, progress=True):
        self.root = Path(root).expanduser() if root is not None else default_data_dir()
        self.train = train
        self.url = url or self.URL
        self.md5s = dict(self.MD5S if md5s is None else md5s)
        missing = set(self.MD5S) - set(self.md5s)
        if missing:
            raise ValueError(f"CIFAR10: md5s must give a checksum for every file, missing {sorted(missing)}")
        names = self.TRAIN_FILES if train else self.TEST_FILES
        folder = self.root / self.FOLDER
        if not all((folder / n).is_file() for n in names + [self.META]):
            self._extract(self._archive(download, progress), folder)
        batches = [self._load(folder / n) for n in names]
        meta = self._load(folder / self.META)
        images = np.concatenate([b["data"] for b in batches]).reshape(-1, 3, 32, 32)
        labels = np.concatenate([np.asarray(b["labels"], dtype=np.int64) for b in batches])
        classes = [c.decode("utf-8") if isinstance(c, bytes) else str(c) for c in meta["label_names"]]
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(f"CIFAR10: labels in {folder} outside 0..{len(classes) - 1}")
        super().__init__(images, labels, classes)

    def _archive(self, download, progress):
        """The path of a verified archive, downloading it when asked."""
        archive = self.root / self.ARCHIVE
        md5 = self.md5s[self.ARCHIVE]
        if download:
            size = self.ARCHIVE_SIZE if md5 == self.MD5S[self.ARCHIVE] else None
            return download_url(self.url, archive, md5, size=size, progress=progress)
        if not archive.is_file():
            raise FileNotFoundError(
                f"CIFAR10: no data in {self.root}: expected the folder {self.root / self.FOLDER} or the "
                f"archive {archive}. Pass download=True, or download "
                f"{self.url} by hand and put it at {archive}."
            )
        got = md5sum(archive)
        if got != md5:
            raise ChecksumError(
                f"CIFAR10: {archive} is corrupt (MD5 {got}, expected {md5}); delete it, or pass "
                "download=True to fetch it again"
            )
        return archive

    def _extract(self, archive, folder):
        """Unpack the batch files into ``folder``, via a temporary folder, refusing unsafe members."""
        wanted = set(self.MD5S) - {self.ARCHIVE}
        tmp = Path(tempfile.mkdtemp(prefix=".cifar-extract-", dir=self.root))
        try:
            found = set()
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    path = PurePosixPath(member.name)
                    if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
                        raise ValueError(
                            f"CIFAR10: refusing to extract {archive}: member {member.name!r} is a link, "
                            "a device or points outside the archive folder"
                        )
                    if member.isfile() and path.parent == PurePosixPath(self.FOLDER) and path.name in wanted:
                        with tar.extractfile(member) as src, open(tmp / path.name, "wb") as dst:
                            shutil.copyfileobj(src, dst)
                        found.add(path.name)
            if found != wanted:
                raise ValueError(f"CIFAR10: {archive} lacks {sorted(wanted - found)} in {self.FOLDER}/")
            folder.mkdir(parents=True, exist_ok=True)
            for name in sorted(found):
                os.replace(tmp / name, folder / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _load(self, path):
        """MD5-check one batch file, then unpickle it with the restricted unpickler."""
        expected = self.md5s[path.name]
        got = md5sum(path)
        if got != expected:
            raise ChecksumError(
                f"CIFAR10: {path} has MD5 {got}, expected {expected}: the file is corrupt or was "
                f"modified, so it is not unpickled. Delete {path.parent} to extract it again from the archive."
            )
        batch = load_cifar_batch(path)
        if path.name == self.META:
            return batch
        data = batch.get("data")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            got = getattr(data, "shape", type(data).__name__)
            raise ValueError(f"CIFAR10: {path}: 'data' must be uint8 (N, 3072), got {got}")
        if len(batch.get("labels", ())) != len(data):
            raise ValueError(f"CIFAR10: {path}: {len(data)} images but {len(batch.get('labels', ()))} labels")
        return batch
