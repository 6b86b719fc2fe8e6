"""FashionMNIST from idx files built here, read from a folder or downloaded from a loopback server."""

import gzip

import numpy as np
import pytest
from data_fixtures import FileServer, closed_port_url, fashion_files, idx_bytes, md5

from minise import data
from minise.data import ChecksumError, DownloadError, FashionMNIST
from minise.data.fashion_mnist import read_idx


@pytest.fixture(scope="module")
def files():
    """(gz files, raw files, expected arrays, md5s of the gz, md5s of the raw bytes)."""
    gz, raw, expected = fashion_files()
    return gz, raw, expected, {k: md5(v) for k, v in gz.items()}, {k: md5(v) for k, v in raw.items()}


def write(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        (folder / name).write_bytes(blob)


def check(ds, expected):
    images, labels = expected
    assert ds.images.dtype == np.uint8 and ds.images.shape == images.shape
    np.testing.assert_array_equal(ds.images, images)
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.labels, labels)


def test_fashion_mnist_downloads_the_four_files_and_parses_both_splits(tmp_path, files):
    gz, _, expected, md5s, _ = files
    with FileServer({"/" + k: v for k, v in gz.items()}) as server:
        url = server.url("/")
        train = FashionMNIST(tmp_path, train=True, download=True, url=url, md5s=md5s, progress=False)
        test = FashionMNIST(tmp_path, train=False, download=True, url=url, md5s=md5s, progress=False)
    assert sorted(p for p, _ in server.requests) == sorted("/" + k for k in gz)
    check(train, expected["train"])
    check(test, expected["test"])
    assert train.images.shape[1:] == (1, 28, 28)
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot" and len(train.classes) == 10
    image, label = test[2]
    np.testing.assert_array_equal(image, expected["test"][0][2])
    assert isinstance(label, int) and label == expected["test"][1][2]


def test_fashion_mnist_reads_a_folder_of_gz_files_as_is(tmp_path, files):
    gz, _, expected, md5s, _ = files
    write(tmp_path, gz)
    check(FashionMNIST(tmp_path, train=False, md5s=md5s), expected["test"])


def test_fashion_mnist_reads_uncompressed_idx_files_checked_by_their_content(tmp_path, files):
    _, raw, expected, md5s, raw_md5s = files
    write(tmp_path, raw)
    check(FashionMNIST(tmp_path, train=True, md5s=md5s, raw_md5s=raw_md5s), expected["train"])


def test_a_recompressed_gz_is_accepted_when_its_content_matches(tmp_path, files):
    # Debian's dataset-fashion-mnist recompressed the .gz files: other bytes, same idx content
    _, raw, expected, md5s, raw_md5s = files
    recompressed = {k + ".gz": gzip.compress(v, compresslevel=1, mtime=12345) for k, v in raw.items()}
    assert all(md5(recompressed[k]) != md5s[k] for k in recompressed)
    write(tmp_path, recompressed)
    check(FashionMNIST(tmp_path, train=False, md5s=md5s, raw_md5s=raw_md5s), expected["test"])


def test_the_official_checksums_cover_both_the_gz_files_and_their_content():
    assert FashionMNIST.MD5S["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert FashionMNIST.MD5S["t10k-labels-idx1-ubyte.gz"] == "bb300cfdad3c16e7a12a480ee83cd310"
    assert set(FashionMNIST.RAW_MD5S) == {k[: -len(".gz")] for k in FashionMNIST.MD5S}


def test_a_fashion_mnist_subfolder_of_root_is_found(tmp_path, files):
    gz, _, expected, md5s, _ = files
    write(tmp_path / "fashion-mnist", gz)
    ds = FashionMNIST(tmp_path, train=False, md5s=md5s)
    assert ds.root == tmp_path / "fashion-mnist"
    check(ds, expected["test"])


def test_the_default_root_is_a_fashion_mnist_folder_in_minise_data(tmp_path, files, monkeypatch):
    gz, _, expected, md5s, _ = files
    monkeypatch.setenv("MINISE_DATA", str(tmp_path))
    write(tmp_path / "fashion-mnist", gz)
    check(FashionMNIST(train=False, md5s=md5s), expected["test"])


def test_a_corrupt_file_is_refused_offline_and_fetched_again_with_download(tmp_path, files):
    gz, _, expected, md5s, _ = files
    write(tmp_path, gz)
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(gz[bad.name][:-20])
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte.gz"):
        FashionMNIST(tmp_path, train=False, md5s=md5s)
    with FileServer({"/" + k: v for k, v in gz.items()}) as server:
        ds = FashionMNIST(tmp_path, train=False, download=True, url=server.url("/"), md5s=md5s, progress=False)
    assert [p for p, _ in server.requests] == ["/t10k-images-idx3-ubyte.gz"]
    check(ds, expected["test"])


def test_an_interrupted_download_resumes_with_range(tmp_path, files):
    gz, _, expected, md5s, _ = files
    path = "/t10k-images-idx3-ubyte.gz"
    with FileServer({"/" + k: v for k, v in gz.items()}, cut={path: 1000}) as server:
        ds = FashionMNIST(tmp_path, train=False, download=True, url=server.url("/"), md5s=md5s, progress=False)
    assert server.ranges(path) == [None, "bytes=1000-"]
    check(ds, expected["test"])


def test_missing_files_without_download_are_all_named_at_once_with_address_and_md5(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        FashionMNIST(tmp_path)
    message = str(info.value)
    assert "4 of the 4 files are missing from " + str(tmp_path / "fashion-mnist") in message
    for name, md5sum in FashionMNIST.MD5S.items():  # all four, not only the first one needed
        assert f"{FashionMNIST.URL + name} (MD5 {md5sum})" in message


def test_the_missing_list_leaves_out_the_files_that_are_there(tmp_path, files):
    gz, _, _, md5s, _ = files
    write(tmp_path, {k: v for k, v in gz.items() if k.startswith("train")})
    with pytest.raises(FileNotFoundError, match="2 of the 4 files are missing") as info:
        FashionMNIST(tmp_path, train=False, md5s=md5s)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value) and "train-images" not in str(info.value)


def test_no_server_raises_a_download_error_naming_every_missing_file_and_their_place(tmp_path, files):
    _, _, _, md5s, _ = files
    url = closed_port_url("/")
    with pytest.raises(DownloadError) as info:
        FashionMNIST(tmp_path, download=True, url=url, md5s=md5s, progress=False)
    message = str(info.value)
    assert "Could not download train-images-idx3-ubyte.gz" in message
    assert all(url + name in message for name in FashionMNIST.MD5S)
    assert "put them in " + str(tmp_path / "fashion-mnist") in message


def test_a_data_folder_means_the_same_given_as_root_or_as_minise_data(tmp_path, files, monkeypatch):
    gz, _, expected, md5s, _ = files
    monkeypatch.setenv("MINISE_DATA", str(tmp_path))
    for folder in (tmp_path, tmp_path / "fashion-mnist"):  # the files in the folder itself, or in its subfolder
        write(folder, gz)
        check(FashionMNIST(tmp_path, train=False, md5s=md5s), expected["test"])
        check(FashionMNIST(train=False, md5s=md5s), expected["test"])
        for name in gz:
            (folder / name).unlink()
    with FileServer({"/" + k: v for k, v in gz.items()}) as server:  # downloads go to the subfolder either way
        a = FashionMNIST(tmp_path, train=False, download=True, url=server.url("/"), md5s=md5s, progress=False)
    assert a.root == tmp_path / "fashion-mnist" and (a.root / "t10k-images-idx3-ubyte.gz").is_file()
    assert FashionMNIST(train=False, md5s=md5s).root == a.root


def test_read_idx_parses_big_endian_dimensions():
    array = np.arange(2 * 3 * 300, dtype=np.int64).reshape(2, 3, 300).astype(np.uint8)
    out = read_idx(idx_bytes(array))
    assert out.shape == (2, 3, 300)  # 300 > 255 needs the second byte of the big-endian size
    np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"\x01\x00\x08\x01" + (2).to_bytes(4, "big") + b"ab", "not an idx file"),
        (b"\x00\x00\x0d\x01" + (2).to_bytes(4, "big") + b"ab", "type 0x0d"),
        (b"\x00\x00\x08\x03" + (2).to_bytes(4, "big"), "truncated header"),
        (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"ab", "5 values"),
        (b"", "not an idx file"),
    ],
)
def test_read_idx_rejects_a_bad_header_with_a_clear_error(blob, message):
    with pytest.raises(ValueError, match=message):
        read_idx(blob, "some-file")


def test_idx_images_of_the_wrong_size_are_rejected(tmp_path):
    raw = {"t10k-images-idx3-ubyte": idx_bytes(np.zeros((2, 27, 28))), "t10k-labels-idx1-ubyte": idx_bytes([1, 2])}
    write(tmp_path, raw)
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        FashionMNIST(tmp_path, train=False, raw_md5s={k: md5(v) for k, v in raw.items()})


def test_get_dataset_builds_fashion_mnist_with_its_channel_stats(tmp_path, files):
    gz, _, expected, md5s, _ = files
    write(tmp_path, gz)
    ds = data.get_dataset("fashion-mnist", root=tmp_path, train=False, md5s=md5s)
    check(ds, expected["test"])
    assert data.channel_stats("fashion-mnist") == ((0.2860,), (0.3530,))
