"""Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) from its four idx files.

The idx format is a tiny header and then raw bytes::

    magic: 0x00 0x00 <type> <ndim>   (type 0x08 = unsigned byte)
    ndim big-endian uint32 sizes     (images: N, 28, 28; labels: N)
    the values, row-major

Files are found as ``<name>.gz`` (as published, and as Debian's
``dataset-fashion-mnist`` package installs them in
``/usr/share/datasets/fashion-mnist/``) or uncompressed as ``<name>``.
A file is accepted when the MD5 of the ``.gz`` matches the official one, or
when the MD5 of its decompressed bytes does (Debian recompressed the ``.gz``
files, so only their content matches).
"""

import gzip
import hashlib
import io
import zlib
from pathlib import Path

import numpy as np

from .dataset import ArrayDataset
from .download import ChecksumError, DownloadError, default_data_dir, download_url

__all__ = ["FashionMNIST", "read_idx"]

IDX_UBYTE = 0x08
MAX_RAW_BYTES = 64 << 20  # the largest official file decompresses to 47,040,016 bytes


def _gunzip(data, source):
    """Decompress a .gz, refusing (ValueError) to inflate past :data:`MAX_RAW_BYTES` (a decompression bomb)."""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        raw = f.read(MAX_RAW_BYTES + 1)
    if len(raw) > MAX_RAW_BYTES:
        raise ValueError(f"FashionMNIST: {source} inflates to more than {MAX_RAW_BYTES:,} bytes; "
                         "it is not an official file")
    return raw


def read_idx(raw, source="<bytes>"):
    """Parse idx bytes into a uint8 array of the shape the header states.

    Raises ``ValueError`` naming ``source`` when the header is malformed or the
    data length does not match it.
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"read_idx: {source} is not an idx file (magic {raw[:4].hex() or 'missing'})")
    if raw[2] != IDX_UBYTE:
        raise ValueError(f"read_idx: {source} holds idx type 0x{raw[2]:02x}, expected 0x08 (unsigned bytes)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"read_idx: {source} has a truncated header ({len(raw)} bytes, {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise ValueError(
            f"read_idx: {source} header says shape {shape} ({expected} values) "
            f"but {len(raw) - header} bytes follow"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


class FashionMNIST(ArrayDataset):
    """Fashion-MNIST: 70,000 28x28 greyscale images of clothing in 10 classes (60,000 train, 10,000 test).

    root: a data folder (default :func:`~minise.data.default_data_dir`: ``$MINISE_DATA``,
    else ``~/.cache/minise``; ``minise --data-dir`` passes its folder here). The files are
    read from ``root`` itself when it holds them (``/usr/share/datasets/fashion-mnist``
    works as it is), else from ``root / "fashion-mnist"``, where downloads go too.
    train: the 60,000 training images, else the 10,000 test images.
    download: fetch missing or corrupt files (MD5-checked, resumable).
    url, md5s, raw_md5s: base address and checksum tables (of the ``.gz`` files and of
    their decompressed bytes), for mirrors and tests.

    ``.images`` uint8 (N, 1, 28, 28), ``.labels`` int64 (N,), ``.classes`` the ten names.
    """

    URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    FILES = {
        True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
    MD5S = {  # of the published .gz files (the dataset's README)
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    RAW_MD5S = {  # of the decompressed idx bytes
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    }
    CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]  # fmt: skip
    MEAN = (0.2860,)
    STD = (0.3530,)

    def __init__(self, root=None, train=True, download=False, *, url=None, md5s=None, raw_md5s=None,
                 progress=True):  # fmt: skip
        self.train = train
        self.url = url or self.URL
        self.md5s = dict(self.MD5S if md5s is None else md5s)
        self.raw_md5s = dict(self.RAW_MD5S if raw_md5s is None else raw_md5s)
        root = default_data_dir() if root is None else Path(root).expanduser()
        names = [n for split in (True, False) for n in self.FILES[split]]
        self.root = root if self._holds(root, names) else root / "fashion-mnist"
        image_name, label_name = self.FILES[bool(train)]
        if not download and not self._holds(self.root, self.FILES[bool(train)], every=True):
            raise FileNotFoundError(self._missing_message("Pass download=True (minise train downloads them "
                                                          "itself), or download them by hand"))
        images = read_idx(self._raw(image_name, download, progress), self.root / image_name)
        labels = read_idx(self._raw(label_name, download, progress), self.root / label_name)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"FashionMNIST: {image_name} should hold (N, 28, 28) images, got {images.shape}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"FashionMNIST: {len(images)} images but labels of shape {labels.shape}")
        if labels.size and labels.max() >= len(self.CLASSES):
            raise ValueError(f"FashionMNIST: {label_name} has labels outside 0..9")
        super().__init__(images[:, None], labels, self.CLASSES)

    @staticmethod
    def _holds(folder, names, every=False):
        """Whether ``folder`` holds any (or every) one of ``names``, as ``<name>.gz`` or ``<name>``."""
        found = ((folder / n).is_file() or (folder / (n + ".gz")).is_file() for n in names)
        return all(found) if every else any(found)

    def _missing_message(self, what_to_do):
        """Every one of the four files that is missing, with its address and MD5, in one message."""
        names = [n for split in (True, False) for n in self.FILES[split]]
        missing = [n for n in names if not ((self.root / n).is_file() or (self.root / (n + ".gz")).is_file())]
        files = "; ".join(f"{self.url + n}.gz (MD5 {self.md5s[n + '.gz']})" for n in missing)
        return (  # one line: the CLI prints each error as one line
            f"FashionMNIST: {len(missing)} of the 4 files are missing from {self.root}. {what_to_do} on a "
            f"machine with internet and put them in {self.root}: {files}. "
            "(Debian/Ubuntu: apt install dataset-fashion-mnist, then pass the folder "
            "/usr/share/datasets/fashion-mnist: --data-dir, $MINISE_DATA or root=.)"
        )

    def _raw(self, name, download, progress):
        """The verified, decompressed bytes of one idx file, downloading it when asked and needed."""
        gz_path, raw_path = self.root / (name + ".gz"), self.root / name
        present = [path for path in (gz_path, raw_path) if path.is_file()]
        for path in present:
            data = path.read_bytes()
            try:
                raw = _gunzip(data, path) if path.suffix == ".gz" else data
            except (OSError, EOFError, ValueError, zlib.error):  # not gzip, cut short, or a bomb
                raw = None
            if self._verified(path, data, raw, name):
                return raw
        if present and not download:
            raise ChecksumError(
                f"FashionMNIST: {present[0]} does not match the official checksums (corrupt or a "
                "different file); delete it, or pass download=True to fetch it again"
            )
        # A corrupt gz_path is replaced; download_url checks its MD5 again.
        try:
            download_url(self.url + name + ".gz", gz_path, self.md5s[name + ".gz"], progress=progress)
        except DownloadError as exc:  # offline: name every missing file at once, not one per attempt
            reason = exc.__cause__ or exc
            kept = "; the partial download is kept and resumes on the next try" if Path(
                f"{gz_path}.part").exists() else ""
            raise DownloadError(self._missing_message(
                f"Could not download {name}.gz ({reason}{kept}). Download the files by hand")) from exc
        return _gunzip(gz_path.read_bytes(), gz_path)

    def _verified(self, path, data, raw, name):
        """True when the file's bytes (a .gz) or its decompressed bytes have the official MD5."""
        if path.suffix == ".gz" and hashlib.md5(data).hexdigest() == self.md5s.get(name + ".gz"):
            return True
        return raw is not None and hashlib.md5(raw).hexdigest() == self.raw_md5s.get(name)
