"""download_url against a loopback HTTP server: clean, interrupted, Range ignored, corrupt, offline."""

import os
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import FileServer, closed_port_url, md5

from minise.data import ChecksumError, DownloadError, default_data_dir, download_url

BODY = np.random.default_rng(0).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()
MD5 = md5(BODY)


def test_download_url_fetches_the_file_and_leaves_no_part_file(tmp_path, capsys):
    dest = tmp_path / "sub" / "blob.bin"
    with FileServer({"/blob.bin": BODY}) as server:
        got = download_url(server.url("/blob.bin"), dest, MD5, progress=True)
    assert got == dest and dest.read_bytes() == BODY
    assert not Path(str(dest) + ".part").exists()
    assert server.ranges("/blob.bin") == [None]
    assert "blob.bin" in capsys.readouterr().err  # the tqdm bar names the file


def test_a_file_with_the_right_md5_is_not_downloaded_again(tmp_path):
    dest = tmp_path / "blob.bin"
    dest.write_bytes(BODY)
    with FileServer({"/blob.bin": BODY}) as server:
        download_url(server.url("/blob.bin"), dest, MD5, progress=False)
    assert server.requests == []


def test_an_interrupted_download_keeps_the_part_and_the_next_call_resumes_with_range(tmp_path):
    dest = tmp_path / "blob.bin"
    part = Path(str(dest) + ".part")
    with FileServer({"/blob.bin": BODY}, cut={"/blob.bin": 100_000}) as server:
        with pytest.raises(DownloadError, match="interrupted") as info:
            download_url(server.url("/blob.bin"), dest, MD5, progress=False, retries=0)
        assert str(part) in str(info.value) and str(dest) in str(info.value)
        assert not dest.exists() and part.read_bytes() == BODY[:100_000]
        download_url(server.url("/blob.bin"), dest, MD5, progress=False, retries=0)
    assert server.ranges("/blob.bin") == [None, "bytes=100000-"]
    assert dest.read_bytes() == BODY and not part.exists()


def test_download_url_resumes_a_dropped_connection_by_itself_within_its_retries(tmp_path):
    dest = tmp_path / "blob.bin"
    with FileServer({"/blob.bin": BODY}, cut={"/blob.bin": 70_000}, cut_times=2) as server:
        download_url(server.url("/blob.bin"), dest, MD5, progress=False, retries=2)
    assert server.ranges("/blob.bin") == [None, "bytes=70000-", "bytes=140000-"]
    assert dest.read_bytes() == BODY


def test_a_server_that_ignores_range_makes_the_download_start_again_from_zero(tmp_path):
    dest = tmp_path / "blob.bin"
    Path(str(dest) + ".part").write_bytes(BODY[:1234])
    with FileServer({"/blob.bin": BODY}, honour_range=False) as server:
        download_url(server.url("/blob.bin"), dest, MD5, progress=False)
    assert server.ranges("/blob.bin") == ["bytes=1234-"]  # asked, got a 200 with the whole file
    assert dest.read_bytes() == BODY  # not the first 1234 bytes twice


def test_a_complete_part_file_is_checked_and_renamed_without_a_request(tmp_path):
    dest = tmp_path / "blob.bin"
    Path(str(dest) + ".part").write_bytes(BODY)
    with FileServer({"/blob.bin": BODY}) as server:
        download_url(server.url("/blob.bin"), dest, MD5, size=len(BODY), progress=False)
    assert server.requests == [] and dest.read_bytes() == BODY


def test_a_part_file_longer_than_the_real_file_is_replaced(tmp_path):
    dest = tmp_path / "blob.bin"
    Path(str(dest) + ".part").write_bytes(BODY + b"junk")
    with FileServer({"/blob.bin": BODY}) as server:
        download_url(server.url("/blob.bin"), dest, MD5, size=len(BODY), progress=False)
    assert server.ranges("/blob.bin") == [None] and dest.read_bytes() == BODY


def test_a_corrupt_existing_file_is_fetched_again(tmp_path, capsys):
    dest = tmp_path / "blob.bin"
    dest.write_bytes(BODY[:-1] + b"\x00")
    with FileServer({"/blob.bin": BODY}) as server:
        download_url(server.url("/blob.bin"), dest, MD5, progress=False)
    assert len(server.requests) == 1 and dest.read_bytes() == BODY
    assert "corrupt" in capsys.readouterr().err


def test_a_download_with_the_wrong_md5_is_refused_and_deleted(tmp_path):
    dest = tmp_path / "blob.bin"
    with FileServer({"/blob.bin": BODY[::-1]}) as server:
        with pytest.raises(ChecksumError, match=MD5):
            download_url(server.url("/blob.bin"), dest, MD5, progress=False)
    assert not dest.exists() and not Path(str(dest) + ".part").exists()


def test_no_server_raises_an_error_naming_the_file_the_url_and_where_to_put_it(tmp_path):
    dest = tmp_path / "data" / "cifar-10-python.tar.gz"
    url = closed_port_url("/cifar-10-python.tar.gz")
    with pytest.raises(DownloadError) as info:
        download_url(url, dest, MD5, size=170_498_071, progress=False)
    message = str(info.value)
    assert isinstance(info.value, OSError)
    assert url in message and str(dest) in message and MD5 in message and "170,498,071" in message
    assert not dest.exists()


def test_a_missing_file_on_the_server_raises_download_error(tmp_path):
    with FileServer({}) as server:
        with pytest.raises(DownloadError, match="404"):
            download_url(server.url("/nope.bin"), tmp_path / "nope.bin", MD5, progress=False)


def test_default_data_dir_is_the_cache_folder_or_minise_data(monkeypatch, tmp_path):
    monkeypatch.delenv("MINISE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / ".cache" / "minise"
    monkeypatch.setenv("MINISE_DATA", str(tmp_path / "elsewhere"))
    assert default_data_dir() == tmp_path / "elsewhere"
    assert os.fspath(default_data_dir()) == os.fspath(tmp_path / "elsewhere")
