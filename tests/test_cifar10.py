"""CIFAR10 from archives built here in the official format (Python 2 pickles in a tar.gz), served on loopback."""

import pickle

import numpy as np
import pytest
from data_fixtures import CIFAR_CLASSES, FileServer, cifar_archive, cifar_batches, closed_port_url, md5, tar_gz

from minise import data
from minise.data import CIFAR10, ChecksumError, DownloadError
from minise.data.cifar import load_cifar_batch

ARCHIVE = "cifar-10-python.tar.gz"


@pytest.fixture(scope="module")
def official():
    """(archive bytes, md5s, expected arrays) with 4 images per batch."""
    return cifar_archive(n=4)


def write_folder(root, files):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    return folder


def test_cifar10_downloads_extracts_and_parses_both_splits(tmp_path, official):
    archive, md5s, expected = official
    with FileServer({"/" + ARCHIVE: archive}) as server:
        train = CIFAR10(tmp_path, train=True, download=True, url=server.url("/" + ARCHIVE), md5s=md5s, progress=False)
        test = CIFAR10(tmp_path, train=False, download=True, url=server.url("/" + ARCHIVE), md5s=md5s, progress=False)
    assert len(server.requests) == 1  # the second split reuses the extracted folder
    for ds, split in ((train, "train"), (test, "test")):
        images, labels = expected[split]
        assert ds.images.dtype == np.uint8 and ds.images.shape == images.shape
        np.testing.assert_array_equal(ds.images, images)
        assert ds.labels.dtype == np.int64
        np.testing.assert_array_equal(ds.labels, labels)
        assert ds.classes == CIFAR_CLASSES
    assert len(train) == 20 and len(test) == 4
    assert {p.name for p in tmp_path.iterdir()} == {ARCHIVE, "cifar-10-batches-py"}  # no temp folder left


def test_cifar10_image_layout_is_the_official_red_green_blue_planes(tmp_path, official):
    _, md5s, _ = official
    files, _ = cifar_batches(n=4)
    folder = write_folder(tmp_path, files)
    raw = load_cifar_batch(folder / "data_batch_1")["data"]  # (4, 3072)
    ds = CIFAR10(tmp_path, md5s=md5s)
    # pixel (row 3, col 5) of image 2: red at 3*32+5, green 1024 later, blue 2048 later
    assert [ds.images[2, c, 3, 5] for c in range(3)] == [raw[2, 3 * 32 + 5 + 1024 * c] for c in range(3)]


def test_cifar10_indexing_returns_an_image_and_an_int_label(tmp_path, official):
    archive, md5s, expected = official
    write_folder(tmp_path, cifar_batches(n=4)[0])
    ds = CIFAR10(tmp_path, train=False, md5s=md5s)
    image, label = ds[1]
    np.testing.assert_array_equal(image, expected["test"][0][1])
    assert image.shape == (3, 32, 32) and isinstance(label, int) and label == expected["test"][1][1]


def test_cifar10_reads_the_archive_alone_without_downloading(tmp_path, official):
    archive, md5s, expected = official
    (tmp_path / ARCHIVE).write_bytes(archive)
    ds = CIFAR10(tmp_path, train=False, md5s=md5s)
    np.testing.assert_array_equal(ds.images, expected["test"][0])


def test_cifar10_uses_minise_data_when_no_root_is_given(tmp_path, official, monkeypatch):
    archive, md5s, expected = official
    monkeypatch.setenv("MINISE_DATA", str(tmp_path))
    (tmp_path / ARCHIVE).write_bytes(archive)
    assert CIFAR10(train=False, md5s=md5s).root == tmp_path


def test_cifar10_without_data_and_download_says_where_to_put_the_archive(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        CIFAR10(tmp_path)
    assert str(tmp_path / ARCHIVE) in str(info.value) and CIFAR10.URL in str(info.value)


def test_cifar10_download_with_no_server_names_the_archive_and_its_place(tmp_path, official):
    _, md5s, _ = official
    url = closed_port_url("/" + ARCHIVE)
    with pytest.raises(DownloadError) as info:
        CIFAR10(tmp_path, download=True, url=url, md5s=md5s, progress=False)
    assert url in str(info.value) and str(tmp_path / ARCHIVE) in str(info.value)


def test_a_corrupt_archive_is_refused_offline_and_fetched_again_with_download(tmp_path, official):
    archive, md5s, expected = official
    (tmp_path / ARCHIVE).write_bytes(archive[:-10])
    with pytest.raises(ChecksumError, match="corrupt"):
        CIFAR10(tmp_path, md5s=md5s)
    with FileServer({"/" + ARCHIVE: archive}) as server:
        ds = CIFAR10(tmp_path, train=False, download=True, url=server.url("/" + ARCHIVE), md5s=md5s, progress=False)
    assert len(server.requests) == 1
    np.testing.assert_array_equal(ds.labels, expected["test"][1])


def test_an_interrupted_archive_download_resumes_with_range(tmp_path, official):
    archive, md5s, expected = official
    path = "/" + ARCHIVE
    with FileServer({path: archive}, cut={path: len(archive) // 2}, cut_times=1) as server:
        ds = CIFAR10(tmp_path, train=False, download=True, url=server.url(path), md5s=md5s, progress=False)
    assert server.ranges(path) == [None, f"bytes={len(archive) // 2}-"]
    np.testing.assert_array_equal(ds.images, expected["test"][0])


def test_a_tampered_batch_file_is_refused_by_its_md5_before_unpickling(tmp_path, official):
    _, md5s, _ = official
    sentinel = tmp_path / "pwned"
    files, _ = cifar_batches(n=4)
    # protocol 0: os.mkdir(sentinel) when unpickled
    files["test_batch"] = f"cos\nmkdir\n(V{sentinel}\ntR.".encode()
    folder = write_folder(tmp_path, files)
    with pytest.raises(ChecksumError) as info:
        CIFAR10(tmp_path, train=False, md5s=md5s)
    assert str(folder / "test_batch") in str(info.value) and md5s["test_batch"] in str(info.value)
    assert not sentinel.exists()


def test_the_restricted_unpickler_refuses_a_forbidden_global_even_with_a_matching_md5(tmp_path, official):
    _, md5s, _ = official
    sentinel = tmp_path / "pwned"
    files, _ = cifar_batches(n=4)
    files["test_batch"] = f"cos\nsystem\n(Vtouch {sentinel}\ntR.".encode()
    write_folder(tmp_path, files)
    with pytest.raises(pickle.UnpicklingError, match="os.system"):
        CIFAR10(tmp_path, train=False, md5s={**md5s, "test_batch": md5(files["test_batch"])})
    assert not sentinel.exists()


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("numpy", "load"), ("subprocess", "Popen")])
def test_load_cifar_batch_admits_only_numpy_array_reconstruction(tmp_path, module, name):
    path = tmp_path / "batch"
    path.write_bytes(f"c{module}\n{name}\n(V1\ntR.".encode())
    with pytest.raises(pickle.UnpicklingError, match=f"{module}.{name}"):
        load_cifar_batch(path)


def test_load_cifar_batch_reads_a_numpy_2_pickle_too(tmp_path):
    path = tmp_path / "batch"
    array = np.arange(12, dtype=np.uint8).reshape(2, 6)
    path.write_bytes(pickle.dumps({b"data": array, b"labels": [3, 4]}, protocol=4))
    batch = load_cifar_batch(path)
    np.testing.assert_array_equal(batch["data"], array)
    assert batch["labels"] == [3, 4]


def test_an_archive_with_a_path_traversal_member_is_refused(tmp_path):
    files, _ = cifar_batches(n=2)
    members = {f"cifar-10-batches-py/{k}": v for k, v in files.items()}
    members["cifar-10-batches-py/../../escaped"] = b"x"
    archive = tar_gz(members)
    root = tmp_path / "root"
    root.mkdir()
    (root / ARCHIVE).write_bytes(archive)
    md5s = {**{k: md5(v) for k, v in files.items()}, ARCHIVE: md5(archive)}
    with pytest.raises(ValueError, match="escaped"):
        CIFAR10(root, md5s=md5s)
    assert not (tmp_path / "escaped").exists() and not (root / "cifar-10-batches-py").exists()
    assert [p.name for p in root.iterdir()] == [ARCHIVE]  # the temporary folder is gone


def test_cifar10_rejects_a_checksum_table_missing_files(tmp_path, official):
    with pytest.raises(ValueError, match="test_batch"):
        CIFAR10(tmp_path, md5s={ARCHIVE: "0" * 32})


def test_get_dataset_builds_cifar10_and_its_channel_stats_are_the_published_ones(tmp_path, official):
    archive, md5s, expected = official
    (tmp_path / ARCHIVE).write_bytes(archive)
    ds = data.get_dataset("cifar10", root=tmp_path, train=False, md5s=md5s)
    assert isinstance(ds, CIFAR10)
    np.testing.assert_array_equal(ds.labels, expected["test"][1])
    assert data.channel_stats("cifar10") == ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
