"""download_url and CIFAR-10 against servers and files that misbehave: no Content-Length with an
endless body, a Content-Length that lies or is not a number, a wrong Content-Range, a trickle, a
full disk; and CIFAR-10 batches whose arrays declare shapes or dtypes they do not hold.

Servers bind 127.0.0.1 only and stop on their own after a bounded number of bytes and seconds.
"""

import errno
import pickle
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import FileServer, cifar_batches, md5, py2_pickle
from hostile_fixtures import BadServer, deflate_zeros

from minise.data import CIFAR10, ChecksumError, DownloadError, FashionMNIST, download, download_url, fashion_mnist
from minise.data.cifar import load_cifar_batch

BODY = bytes(range(256)) * 4  # 1024 bytes
MD5 = md5(BODY)


def _part(dest):
    return Path(str(dest) + ".part")


def test_an_endless_body_without_content_length_stops_just_past_the_known_size(tmp_path):
    dest = tmp_path / "f.bin"
    with BadServer("no-length-endless", body=b"y" * 4096) as server:
        with pytest.raises(DownloadError, match="more than the 1,024 bytes expected") as info:
            download_url(server.url(), dest, MD5, size=len(BODY), progress=False)
    assert "nothing was kept" in str(info.value)
    assert not dest.exists() and not _part(dest).exists()


def test_an_endless_body_of_unknown_size_stops_at_the_download_ceiling(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 100_000)
    dest = tmp_path / "f.bin"
    with BadServer("no-length-endless", body=b"y" * 4096) as server:
        with pytest.raises(DownloadError, match="more than the 100,000 bytes"):
            download_url(server.url(), dest, MD5, progress=False)
    assert not dest.exists() and not _part(dest).exists()


def test_a_content_length_that_contradicts_the_known_size_is_refused_before_writing(tmp_path):
    dest = tmp_path / "f.bin"
    with BadServer("length-lies", body=BODY, length=20 << 20) as server:
        with pytest.raises(DownloadError, match="announces 20,971,520 bytes, the file has 1,024"):
            download_url(server.url(), dest, MD5, size=len(BODY), progress=False)
    assert not dest.exists() and not _part(dest).exists()


@pytest.mark.parametrize("length", ["lots", "-5", "1e3", ""])
def test_a_content_length_that_is_not_a_number_counts_as_absent(tmp_path, length):
    dest = tmp_path / "f.bin"
    with BadServer("length-lies", body=BODY, length=length) as server:
        download_url(server.url(), dest, MD5, size=len(BODY), progress=False)
    assert dest.read_bytes() == BODY


def test_a_short_body_under_a_content_length_is_an_interrupted_download(tmp_path):
    dest = tmp_path / "f.bin"
    with BadServer("length-lies", body=BODY[:100], length=len(BODY)) as server:
        with pytest.raises(DownloadError, match="interrupted"):
            download_url(server.url(), dest, MD5, size=len(BODY), progress=False, retries=1)
    assert _part(dest).read_bytes() == BODY[:100] and not dest.exists()  # kept, to resume


def test_a_content_range_for_another_total_size_is_refused(tmp_path):
    dest = tmp_path / "f.bin"
    _part(dest).write_bytes(BODY[:24])
    with BadServer("wrong-range", body=BODY[24:], content_range="bytes 24-1023/5000000") as server:
        with pytest.raises(DownloadError, match="5,000,000 bytes, it has 1,024"):
            download_url(server.url(), dest, MD5, size=len(BODY), progress=False)
    assert not dest.exists()


@pytest.mark.parametrize("content_range", ["bytes 0-999/1024", "bytes 50-1023/1024", "nonsense"])
def test_a_content_range_starting_elsewhere_restarts_from_zero_and_never_splices(tmp_path, content_range):
    dest = tmp_path / "f.bin"
    _part(dest).write_bytes(BODY[:24])
    with BadServer("wrong-range", body=BODY, content_range=content_range) as server:
        download_url(server.url(), dest, MD5, size=len(BODY), progress=False, retries=1)
    assert dest.read_bytes() == BODY  # the wrong range was dropped, not spliced onto the 24 bytes
    assert [r for _, r in server.requests] == ["bytes=24-", None]  # the retry starts over


def test_a_trickling_server_is_cut_off_by_the_deadline_and_the_part_is_kept(tmp_path):
    dest = tmp_path / "f.bin"
    start = time.monotonic()
    with BadServer("trickle", body=BODY, interval=0.02, max_seconds=5) as server:
        with pytest.raises(DownloadError, match="deadline") as info:
            download_url(server.url(), dest, MD5, size=len(BODY), progress=False, deadline=0.5)
    assert time.monotonic() - start < 3
    assert str(_part(dest)) in str(info.value)
    assert 0 < _part(dest).stat().st_size < len(BODY) and not dest.exists()


def test_a_full_disk_while_downloading_is_an_os_error_naming_the_part_file(tmp_path, monkeypatch):
    dest = tmp_path / "f.bin"
    real_open = open

    class FullDisk:
        def __init__(self, *args, **kwargs):
            self.f = real_open(*args, **kwargs)

        def write(self, block):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(download, "open", FullDisk, raising=False)
    with FileServer({"/f.bin": BODY}) as server:
        with pytest.raises(OSError) as info:
            download_url(server.url("/f.bin"), dest, MD5, size=len(BODY), progress=False)
    assert not isinstance(info.value, DownloadError)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(_part(dest))
    assert not dest.exists()


# --- CIFAR-10 batches whose arrays lie ------------------------------------------------------
def _array_state(shape, dtype, raw):
    """A pickle like NumPy's for an array, with a state we choose: (1, shape, dtype, False, raw)."""
    class Forged:
        def __reduce__(self):
            from numpy._core.multiarray import _reconstruct
            return _reconstruct, (np.ndarray, (0,), b"b"), (1, shape, np.dtype(dtype), False, raw)
    return Forged()


LYING_ARRAYS = {
    "huge-shape": ((10**13,), "u1", b"\0" * 16, "declares shape"),
    "shape-short-of-the-bytes": ((4, 3072), "u1", b"\0" * 3072, "declares shape"),
    "negative-dim": ((-1, 3072), "u1", b"", "has shape"),
    "five-dims": ((1, 1, 1, 1, 1), "u1", b"\0", "has shape"),
    "float-shape": ((2.5,), "u1", b"\0\0", "has shape"),
    "object-dtype": ((1,), "O", [1], "dtype"),
    "string-dtype": ((1,), "S8", b"\0" * 8, "dtype"),
    "data-a-list": ((1,), "u1", [120], "not bytes"),
}


@pytest.mark.parametrize("name", sorted(LYING_ARRAYS))
def test_a_cifar_batch_array_is_checked_before_it_is_materialised(tmp_path, name):
    shape, dtype, raw, match = LYING_ARRAYS[name]
    path = tmp_path / "data_batch_1"
    path.write_bytes(py2_pickle({b"data": _array_state(shape, dtype, raw), b"labels": [0]}))
    with pytest.raises(pickle.UnpicklingError, match=match):
        load_cifar_batch(path)


def test_a_cifar_batch_with_a_dtype_outside_plain_numbers_is_refused_by_name(tmp_path):
    files, _ = cifar_batches(n=1)
    forged = files["test_batch"].replace(b"U\x02u1", b"U\x02O8")  # the py2 pickle's dtype('u1', 0, 1)
    assert forged != files["test_batch"]
    path = tmp_path / "test_batch"
    path.write_bytes(forged)
    with pytest.raises(pickle.UnpicklingError, match="refused dtype"):
        load_cifar_batch(path)


def test_the_official_layout_still_loads_through_the_checked_path(tmp_path):
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    path = tmp_path / "b"
    path.write_bytes(py2_pickle({b"data": data, b"labels": [1, 2]}))
    batch = load_cifar_batch(path)
    assert batch["data"].flags.writeable and np.array_equal(batch["data"], data)


def test_cifar10_with_a_misbehaving_server_fails_with_a_download_error_and_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 1 << 20)
    with BadServer("no-length-endless", body=b"z" * 65536) as server:
        with pytest.raises(DownloadError, match="more than"):
            CIFAR10(tmp_path, train=False, download=True, url=server.url(), progress=False,
                    md5s={**CIFAR10.MD5S, CIFAR10.ARCHIVE: MD5})
    assert not (tmp_path / CIFAR10.ARCHIVE).exists() and not _part(tmp_path / CIFAR10.ARCHIVE).exists()


def test_a_fashion_mnist_gz_that_inflates_past_the_limit_is_refused_as_not_official(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "MAX_RAW_BYTES", 1 << 20)
    stream, crc = deflate_zeros(64)  # 64 MiB of zeros in 65 kB
    bomb = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + stream + struct.pack("<II", crc, 64 << 20)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / name).write_bytes(bomb)
    tracemalloc.start()
    try:
        with pytest.raises(ChecksumError, match="does not match the official checksums"):
            FashionMNIST(tmp_path, train=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak:,} bytes allocated: the bomb was inflated"
