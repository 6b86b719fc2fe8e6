"""ms.load, training checkpoints and excitations.npz against files made to hurt: truncated,
bit-flipped, bombs, forged zip headers, members named with ``..``, huge declared shapes, missing
and mistyped keys.

The oracle everywhere: ``ms.load`` raises SerializationError naming the file (or returns
exactly what was saved), never another exception; it never allocates what a file only
declares (tracemalloc peak); and the file is left byte for byte as it was.
"""

import io
import json
import os
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hostile_fixtures import deflate_zeros, raw_zip

import minise as ms
from minise.io import CheckpointError, SerializationError, load_checkpoint, remove_stale_temps, serialization
from minise.io.checkpoint import SCHEMA, save_checkpoint

STATE = {"epoch": 3, "w": np.arange(60, dtype=np.float32).reshape(3, 4, 5), "names": ["a", "b"],
         "opt": {0: {"momentum": np.ones(7)}}, "lr": 0.1, "big": 2**100, "t": (1, None, True)}


def _npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _structure(root):
    return json.dumps({"format": "minise", "version": 1, "root": root}).encode()


def _array_root(entry="arrays/0.npy"):
    return {"type": "dict", "items": [[{"type": "str", "value": "w"}, {"type": "ndarray", "entry": entry}]]}


def _load_refused(path, match=None):
    """ms.load(path) raises SerializationError naming the file; the file is unchanged."""
    before = path.read_bytes()
    with pytest.raises(SerializationError, match=match) as info:
        ms.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert path.read_bytes() == before
    return str(info.value)


def _equal(a, b):
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


# --- truncated and bit-flipped ------------------------------------------------------
@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.ckpt"
    ms.save(STATE, path)
    return path.read_bytes()


def test_every_truncation_of_a_checkpoint_is_a_serialization_error(tmp_path, good_bytes):
    cuts = sorted(set(np.linspace(0, len(good_bytes) - 1, 40).astype(int)))
    path = tmp_path / "cut.ckpt"
    for cut in cuts:  # 40 truncated files, from empty to one byte short
        path.write_bytes(good_bytes[:cut])
        _load_refused(path)


def test_a_flipped_byte_anywhere_gives_the_saved_object_or_a_serialization_error(tmp_path, good_bytes):
    path = tmp_path / "flipped.ckpt"
    refused = 0
    positions = range(0, len(good_bytes), 5)
    for i in positions:  # every 5th byte flipped, one at a time (a few hundred files)
        path.write_bytes(good_bytes[:i] + bytes([good_bytes[i] ^ 0x5A]) + good_bytes[i + 1:])
        try:
            loaded = ms.load(path)
        except SerializationError as exc:
            assert str(path) in str(exc)
            refused += 1
            continue
        # a flip in a field nobody reads (a timestamp, a version-made-by byte) may pass unnoticed,
        # but then what comes back is exactly what was saved
        assert _equal(loaded, STATE), f"byte {i} flipped changed the data without an error"
    assert refused > len(positions) // 2


# --- bombs: declared sizes that would need gigabytes -----------------------------------
def test_a_structure_json_that_inflates_to_1_gib_is_refused_without_allocating_it(tmp_path):
    stream, crc = deflate_zeros(1024)  # a real deflate stream of 1 GiB of zeros, 1 MB on disk
    path = tmp_path / "bomb.ckpt"
    path.write_bytes(raw_zip([{"name": "structure.json", "data": stream, "method": 8,
                               "file_size": 1 << 30, "crc": crc}]))
    assert zipfile.ZipFile(path).getinfo("structure.json").file_size == 1 << 30
    tracemalloc.start()
    try:
        message = _load_refused(path, "decompression bomb")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"ms.load allocated {peak:,} bytes for a refused file"
    assert "1,073,741,824" in message


def test_a_structure_just_over_a_lowered_limit_is_refused_and_one_just_under_loads(tmp_path, monkeypatch):
    path = tmp_path / "s.ckpt"
    ms.save({"text": "x" * 5000}, path)
    size = zipfile.ZipFile(path).getinfo("structure.json").file_size
    monkeypatch.setattr(serialization, "MAX_STRUCTURE_BYTES", size - 1)
    _load_refused(path, "limit")
    monkeypatch.setattr(serialization, "MAX_STRUCTURE_BYTES", size)
    assert ms.load(path) == {"text": "x" * 5000}


@pytest.mark.parametrize("shape", [(10**13,), (2**31, 2**31), (10**6, 10**6, 8)])
def test_an_npy_header_claiming_a_huge_shape_is_refused_before_any_allocation(tmp_path, shape):
    data = bytearray(_npy(np.zeros(4, np.float64)))
    header_end = data.index(b"\n") + 1
    header = np.lib.format.header_data_from_array_1_0(np.zeros(4))
    header["shape"] = shape
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    npy = buffer.getvalue() + bytes(data[header_end:])
    path = tmp_path / "huge.ckpt"
    path.write_bytes(raw_zip([{"name": "structure.json", "data": _structure(_array_root())},
                              {"name": "arrays/0.npy", "data": npy}]))
    tracemalloc.start()
    try:
        _load_refused(path, r"arrays/0\.npy.*declares shape")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_an_array_over_the_per_array_limit_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "a.ckpt"
    ms.save({"w": np.zeros(1000, np.float32)}, path)
    monkeypatch.setattr(serialization, "MAX_ARRAY_BYTES", 3999)
    _load_refused(path, "limit for one array")
    monkeypatch.setattr(serialization, "MAX_ARRAY_BYTES", 4000)
    assert ms.load(path)["w"].shape == (1000,)


# --- forged zip headers --------------------------------------------------------------
def _one_array_zip(**array_member):
    npy = _npy(np.arange(6, dtype=np.int16))
    member = {"name": "arrays/0.npy", "data": npy, **array_member}
    return raw_zip([{"name": "structure.json", "data": _structure(_array_root())}, member])


FORGED = {
    "compression-99": (_one_array_zip(method=99), "compression method 99"),
    "deflated-array": (_one_array_zip(method=8), "compression method 8"),
    "encrypted": (_one_array_zip(flags=1), "encrypted"),
    "past-the-end": (_one_array_zip(compress_size=10**9, file_size=10**9), "past the end"),
    "stored-size-lie": (_one_array_zip(file_size=10**9), "stored but declares"),
    "bad-crc": (_one_array_zip(crc=12345), "CRC"),
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_forged_zip_headers_give_a_serialization_error(tmp_path, name):
    data, match = FORGED[name]
    path = tmp_path / f"{name}.ckpt"
    path.write_bytes(data)
    _load_refused(path, match)


# --- structure.json that lies ------------------------------------------------------
def _with_structure(path, root, members=None):
    members = members if members is not None else {"arrays/0.npy": _npy(np.arange(3.0))}
    path.write_bytes(raw_zip([{"name": "structure.json", "data": _structure(root)}]
                             + [{"name": k, "data": v} for k, v in members.items()]))
    return path


STRUCTURES = {
    "entry-dotdot": (_array_root("../../etc/passwd"), None, "not a name ms.save writes"),
    "entry-dotdot-inside": (_array_root("arrays/../arrays/0.npy"), None, "not a name ms.save writes"),
    "member-named-dotdot": (_array_root("../0.npy"), {"../0.npy": _npy(np.arange(3.0))}, "not a name"),
    "entry-not-a-string": (_array_root(["arrays/0.npy"]), None, "not a name"),
    "entry-used-twice": ({"type": "list", "items": [{"type": "ndarray", "entry": "arrays/0.npy"}] * 2},
                         None, "used twice"),
    "node-a-list": ([1, 2], None, "unknown node type"),
    "items-not-a-list": ({"type": "list", "items": 5}, None, "must be a list"),
    "dict-pair-of-three": ({"type": "dict", "items": [[{"type": "none"}] * 3]}, None, "pairs"),
    "unhashable-key": ({"type": "dict", "items": [[{"type": "list", "items": []}, {"type": "none"}]]}, None,
                       "unhashable"),
    "int-value-a-number": ({"type": "int", "value": 5}, None, "must be a str"),
    "int-of-10000-digits": ({"type": "int", "value": "9" * 10000}, None, "damaged"),
    "float-not-a-number": ({"type": "float", "value": "one"}, None, "damaged"),
    "scalar-with-a-shape": ({"type": "numpy_scalar", "entry": "arrays/0.npy"}, None, "expected"),
}


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_a_structure_that_lies_gives_a_serialization_error(tmp_path, name):
    root, members, match = STRUCTURES[name]
    _load_refused(_with_structure(tmp_path / "s.ckpt", root, members), match)


def test_a_structure_nested_100000_deep_gives_a_serialization_error(tmp_path):
    text = '{"type": "list", "items": [' * 100_000 + "]}" * 100_000
    path = tmp_path / "deep.ckpt"
    path.write_bytes(raw_zip([{"name": "structure.json",
                               "data": b'{"format": "minise", "version": 1, "root": ' + text.encode() + b"}"}]))
    _load_refused(path)


def test_an_npy_of_format_version_3_or_with_objects_is_refused(tmp_path):
    npy = bytearray(_npy(np.arange(3.0)))
    npy[6] = 3  # major version 3
    _load_refused(_with_structure(tmp_path / "v3.ckpt", _array_root(), {"arrays/0.npy": bytes(npy)}), "version")
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([1, "x"], dtype=object), allow_pickle=True)
    _load_refused(_with_structure(tmp_path / "obj.ckpt", _array_root(), {"arrays/0.npy": buffer.getvalue()}),
                  "pickled")


def test_a_folder_or_a_missing_file_is_an_os_error_not_a_content_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        ms.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        ms.load(tmp_path / "missing.ckpt")


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"), reason="needs /dev/zero, mkfifo")
@pytest.mark.parametrize("loader", ["find_checkpoint", "load_checkpoint", "load_model", "resume"])
def test_the_python_api_says_what_a_checkpoint_path_is_when_it_is_no_regular_file(tmp_path, loader):
    # a link to /dev/zero, a pipe: was FileNotFoundError "no checkpoint at ..." (something IS there)
    from minise import training

    call = {"find_checkpoint": training.find_checkpoint, "load_checkpoint": load_checkpoint,
            "load_model": training.load_model, "resume": training.resume}[loader]
    (tmp_path / "zero.ckpt").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe.ckpt")
    (tmp_path / "gone.ckpt").symlink_to(tmp_path / "nothing-here")
    with pytest.raises(CheckpointError, match=r"zero\.ckpt is a device \(a link to /dev/zero\), not a regular file"):
        call(tmp_path / "zero.ckpt")
    with pytest.raises(CheckpointError, match=r"pipe\.ckpt is a pipe, not a regular file: pass a \.ckpt file"):
        call(tmp_path / "pipe.ckpt")
    with pytest.raises(FileNotFoundError, match=r"gone\.ckpt: it is a broken link \(to .*nothing-here\)"):
        call(tmp_path / "gone.ckpt")
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.ckpt").symlink_to("/dev/zero")       # a run folder whose checkpoint is a device
    with pytest.raises(CheckpointError, match=r"last\.ckpt is a device \(a link to /dev/zero\), not a regular file"):
        call(run)



@pytest.mark.parametrize("loader", ["find_checkpoint", "load_checkpoint", "load_model", "resume"])
@pytest.mark.parametrize("name", ["best.ckpt", "last.ckpt"])
def test_a_run_folder_whose_checkpoint_is_a_broken_link_has_no_checkpoint(tmp_path, loader, name):
    # find_checkpoint raised CheckpointError "... is a broken link (to ...), not a regular file" (minise eval,
    # export: exit 3) where load_checkpoint, resume and a broken link typed raise FileNotFoundError (exit 2)
    from minise import training

    call = {"find_checkpoint": training.find_checkpoint, "load_checkpoint": load_checkpoint,
            "load_model": training.load_model, "resume": training.resume}[loader]
    run = tmp_path / "run"
    run.mkdir()
    (run / name).symlink_to(tmp_path / "nothing-here")
    expected = f"no checkpoint at {run / name}: it is a broken link (to {tmp_path / 'nothing-here'})"
    if name == "best.ckpt" and loader != "find_checkpoint":    # they read last.ckpt: there is none
        expected = f"no checkpoint at {run / 'last.ckpt'}: pass a run folder holding last.ckpt, or a .ckpt file"
    with pytest.raises(FileNotFoundError) as caught:
        call(run)
    assert str(caught.value) == expected

@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_find_checkpoint_of_the_last_names_the_last_in_its_hint(tmp_path):
    # which="last" said "a run folder (its best.ckpt, else its last.ckpt)"
    from minise.training import find_checkpoint

    (tmp_path / "zero.ckpt").symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match=r"or a run folder \(its last\.ckpt\)$"):
        find_checkpoint(tmp_path / "zero.ckpt", which="last")
    with pytest.raises(FileNotFoundError, match=r"or a run folder \(its last\.ckpt\)$"):
        find_checkpoint(tmp_path / "missing.ckpt", which="last")
    with pytest.raises(FileNotFoundError, match=r"\(its best\.ckpt, else its last\.ckpt\)$"):
        find_checkpoint(tmp_path / "missing.ckpt")


# --- training checkpoints: the schema ---------------------------------------------------
def _checkpoint_state():
    return {"model": {"fc.weight": np.zeros((2, 3), np.float32)}, "optimizer": {"state": {}, "param_groups": []},
            "scheduler": None, "epoch": 1, "global_step": 4, "best_acc": 0.5, "best_epoch": 1,
            "rng": {"minise": {"state": 1}, "train_loader": {"seed": 0, "epoch": 1, "batch": 0}},
            "config": {"model": "resnet20", "dataset": "embedded", "epochs": 2, "schedule": "none", "seed": 0},
            "metrics": [{"epoch": 1}], "classes": ["a", "b"]}


def test_a_complete_checkpoint_passes_the_schema(tmp_path):
    save_checkpoint(_checkpoint_state(), tmp_path / "ok.ckpt")
    assert load_checkpoint(tmp_path / "ok.ckpt")["epoch"] == 1


@pytest.mark.parametrize("key", sorted(set(SCHEMA) - {"format", "version"}))
def test_a_checkpoint_missing_a_key_names_it(tmp_path, key):
    state = _checkpoint_state()
    del state[key]
    save_checkpoint(state, tmp_path / "c.ckpt")
    with pytest.raises(CheckpointError, match=f"has no '{key}'"):
        load_checkpoint(tmp_path / "c.ckpt")


WRONG_TYPES = {
    "epoch": "1", "global_step": 4.0, "best_acc": "high", "best_epoch": True, "model": [], "optimizer": None,
    "scheduler": [1], "rng": 0, "config": "resnet", "metrics": {}, "classes": "ab",
}


@pytest.mark.parametrize("key", sorted(WRONG_TYPES))
def test_a_checkpoint_key_of_the_wrong_type_is_named(tmp_path, key):
    state = _checkpoint_state()
    state[key] = WRONG_TYPES[key]
    save_checkpoint(state, tmp_path / "c.ckpt")
    with pytest.raises(CheckpointError, match=f"\\['{key}'\\] must be"):
        load_checkpoint(tmp_path / "c.ckpt")


NESTED = {
    "config-without-model": lambda s: s["config"].pop("model"),
    "config-epochs-a-string": lambda s: s["config"].update(epochs="2"),
    "rng-without-loader": lambda s: s["rng"].pop("train_loader"),
    "model-value-a-list": lambda s: s["model"].update({"fc.bias": [1.0]}),
    "class-a-number": lambda s: s.update(classes=["a", 2]),
    "no-classes": lambda s: s.update(classes=[]),
    "negative-epoch": lambda s: s.update(epoch=-1, metrics=[]),
    "metrics-longer-than-epochs": lambda s: s.update(metrics=[{}, {}]),
    "normalize-of-strings": lambda s: s.update(normalize={"mean": ["a"], "std": [1.0]}),
    "future-version": lambda s: None,
    "not-a-dict": lambda s: None,
}


@pytest.mark.parametrize("name", sorted(NESTED))
def test_nested_checkpoint_damage_is_a_checkpoint_error(tmp_path, name):
    state = _checkpoint_state()
    NESTED[name](state)
    path = tmp_path / "c.ckpt"
    save_checkpoint(state, path)
    if name == "future-version":
        ms.save({**ms.load(path), "version": 2}, path)
    if name == "not-a-dict":
        ms.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match=str(path).replace("\\", "\\\\")):
        load_checkpoint(path)


# --- stale temporary files ---------------------------------------------------------------
def test_a_save_removes_temp_files_of_killed_saves_but_not_of_live_ones_nor_other_files(tmp_path):
    dead_pid = 2**22 + 12345  # above Linux's pid_max default: no such process
    stale = [f".last.ckpt.{dead_pid}.0a1b2c3d.tmp", ".last.ckpt.deadbeef.tmp", f".metrics.csv.tmp-{dead_pid}"]
    live = f".best.ckpt.{os.getpid()}.0a1b2c3d.tmp"
    keep = ["notes.tmp", ".hidden", "last.ckpt.bak"]
    for name in stale + [live] + keep:
        (tmp_path / name).write_bytes(b"x")
    ms.save({"epoch": 1}, tmp_path / "last.ckpt")
    assert sorted(os.listdir(tmp_path)) == sorted([live, "last.ckpt"] + keep)
    assert remove_stale_temps(tmp_path) == []


def test_a_save_killed_with_sigkill_leaves_a_temp_file_that_the_next_save_removes(tmp_path):
    import signal
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, numpy as np, minise as ms\n"
        "from minise.io import serialization\n"
        "real = serialization._write_array\n"
        "def stall(zf, entry, array):\n"
        "    real(zf, entry, array); print('writing', flush=True); time.sleep(60)\n"
        "serialization._write_array = stall\n"
        f"ms.save({{'w': np.zeros(10)}}, {str(tmp_path / 'last.ckpt')!r})\n")],
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(Path(ms.__file__).parents[1])})
    try:
        assert child.stdout.readline() == b"writing\n"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
        child.stdout.close()
    left = os.listdir(tmp_path)
    assert len(left) == 1 and left[0].startswith(f".last.ckpt.{child.pid}.") and left[0].endswith(".tmp")
    ms.save({"epoch": 1}, tmp_path / "best.ckpt")  # the next save into the folder cleans up
    assert os.listdir(tmp_path) == ["best.ckpt"]


# --- excitations.npz: minise's other file, read with the same budgets (minise.io.npz) ----------
def _excitations_members(**replace):
    """The members Excitations.save writes for 2 classes and one block of 3 channels, as .npy bytes."""
    arrays = {"blocks": np.array(["layer1.0.se"]), "classes": np.array(["cat", "dog"]),
              "counts": np.array([4, 5]), "mean:layer1.0.se": np.full((2, 3), 0.5)}
    arrays.update(replace)
    return [{"name": f"{key}.npy", "data": _npy(value)} for key, value in arrays.items()]


def test_an_excitations_file_saved_by_minise_loads_back_exactly(tmp_path):
    from minise.analysis import Excitations
    path = tmp_path / "excitations.npz"
    path.write_bytes(raw_zip(_excitations_members()))
    loaded = Excitations.load(path)
    assert loaded.blocks == ["layer1.0.se"] and loaded.classes == ["cat", "dog"]
    assert loaded.counts.tolist() == [4, 5] and np.array_equal(loaded.means["layer1.0.se"], np.full((2, 3), 0.5))


def test_an_excitations_member_inflating_to_1_gib_is_refused_without_allocating_it(tmp_path):
    from minise.analysis import Excitations
    stream, crc = deflate_zeros(1024)
    path = tmp_path / "excitations.npz"
    path.write_bytes(raw_zip(_excitations_members()[:3] + [
        {"name": "mean:layer1.0.se.npy", "data": stream, "method": 8, "file_size": 1 << 30, "crc": crc}]))
    tracemalloc.start()
    try:
        with pytest.raises(SerializationError, match=r"excitations\.npz.*mean:layer1\.0\.se\.npy.*method 8"):
            Excitations.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def _with_header(array, **fields):
    header = np.lib.format.header_data_from_array_1_0(array)
    header.update(fields)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    data = _npy(array)
    return buffer.getvalue() + data[data.index(b"\n") + 1:]


@pytest.mark.parametrize("name, member, match", [
    ("huge shape", {"name": "counts.npy", "data": _with_header(np.array([4, 5]), shape=(10**12,))},
     r"counts\.npy.*declares shape"),
    ("pickled objects", {"name": "classes.npy", "data": _with_header(np.array([1, 2]), descr="|O")},
     r"classes\.npy.*pickled"),
    ("not an .npy", {"name": "notes.txt", "data": b"hello"}, r"notes\.txt.*not an \.npy"),
])
def test_a_hostile_excitations_member_is_refused_before_any_allocation(tmp_path, name, member, match):
    from minise.analysis import Excitations
    members = [m for m in _excitations_members() if m["name"] != member["name"]] + [member]
    path = tmp_path / "excitations.npz"
    path.write_bytes(raw_zip(members))
    tracemalloc.start()
    try:
        with pytest.raises(SerializationError, match=match):
            Excitations.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


@pytest.mark.parametrize("replace, match", [
    ({"counts": np.array([4, 5, 6])}, "2 classes, 3 counts"),
    ({"mean:layer1.0.se": np.full((5, 3), 0.5)}, "5 rows of means"),
    ({"blocks": np.array(["layer9.se"])}, "no 'mean:layer9.se' array"),
    ({"counts": np.array([0.5, 1.5])}, "'counts' is a 1-D float64 array"),
    ({"counts": np.array([4, -5])}, "negative image counts"),
    ({"mean:layer1.0.se": np.full((2, 3), np.nan)}, r"not all in \[0, 1\]"),
    ({"mean:layer1.0.se": np.full((2, 3), 1.5)}, r"not all in \[0, 1\]"),
    ({"extra": np.zeros(2)}, r"unexpected arrays \['extra'\]"),
])
def test_an_excitations_file_whose_arrays_do_not_fit_together_is_a_value_error_naming_them(tmp_path, replace, match):
    from minise.analysis import Excitations
    path = tmp_path / "excitations.npz"
    path.write_bytes(raw_zip(_excitations_members(**replace)))
    with pytest.raises(ValueError, match=match):
        Excitations.load(path)


def test_minise_plot_of_a_hostile_excitations_file_is_one_line_and_exit_3(tmp_path, capsys):
    from minise.cli import main
    run = tmp_path / "run"
    run.mkdir()
    stream, crc = deflate_zeros(64)
    (run / "excitations.npz").write_bytes(raw_zip(_excitations_members()[:3] + [
        {"name": "mean:layer1.0.se.npy", "data": stream, "method": 8, "file_size": 64 << 20, "crc": crc}]))
    before = (run / "excitations.npz").read_bytes()
    assert main(["plot", str(run)]) == 3
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("minise plot: error: ") and "damaged" in err, err
    assert (run / "excitations.npz").read_bytes() == before


def _run_with_excitations(tmp_path, run_model, blocks):
    """A run folder whose config.json names ``run_model``, holding an excitations.npz of 2 classes with
    ``blocks`` ({block name: channels})."""
    from minise.analysis import Excitations
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": run_model, "dataset": "embedded"}))
    Excitations(list(blocks), {b: np.full((2, c), 0.5) for b, c in blocks.items()}, np.array([4, 5]),
                ["cat", "dog"]).save(run / "excitations.npz")
    return run


# SE-ResNet-20 (He et al. 2016, CIFAR): 3 stages of 3 blocks, 16, 32 and 64 channels, an SE block in each
SE_RESNET20 = {f"layer{s}.{i}.se": c for s, c in ((1, 16), (2, 32), (3, 64)) for i in range(3)}


@pytest.mark.parametrize("run_model, blocks, says", [
    ("se_resnet20", {**SE_RESNET20, "layer2.0.se": 16},
     "block 'layer2.0.se' has 16 channels, but the SE block of se_resnet20 (the model in {config}) has 32"),
    ("se_resnet20", {**SE_RESNET20, "layer1.3.se": 16},     # a deeper model's file (se_resnet32 has layer1.3)
     "block 'layer1.3.se' (16 channels) is not an SE block of se_resnet20 (the model in {config})"),
    ("se_resnet32", SE_RESNET20,                             # a shallower model's: its blocks fit, some are missing
     "no numbers for block 'layer1.3.se' (16 channels) of se_resnet32 (the model in {config}) and 5 more"),
    ("resnet20", SE_RESNET20,
     "block 'layer1.0.se' (16 channels) is not an SE block of resnet20 (the model in {config})"),
])
def test_minise_plot_refuses_excitations_of_another_model_naming_the_block_and_channels(tmp_path, capsys, run_model,
                                                                                         blocks, says):
    from minise.cli import main
    run = _run_with_excitations(tmp_path, run_model, blocks)
    assert main(["plot", str(run)]) == 3
    says = says.format(config=run / "config.json")
    assert capsys.readouterr().err == (f"minise plot: error: {run / 'excitations.npz'}: {says}: it was measured on "
                                       f"another model; delete it: minise plot --excitations {run} measures them "
                                       "again\n")
    assert not (run / "excitations.png").exists()


def test_minise_plot_draws_excitations_that_fit_the_run_model(tmp_path, capsys):
    from minise.cli import main
    run = _run_with_excitations(tmp_path, "se_resnet20", SE_RESNET20)
    assert main(["plot", str(run)]) == 0
    assert capsys.readouterr().out == f"wrote {run / 'excitations.png'}\n"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("name", ["last.ckpt", "excitations.npz"])
def test_a_file_that_is_a_symlink_to_dev_zero_is_refused_before_it_is_read(tmp_path, name):
    # /dev/zero never ends: reading it would take all the memory (a newcomer saw 17 GB for excitations.npz)
    from minise.analysis import Excitations
    path = tmp_path / name
    path.symlink_to("/dev/zero")
    with pytest.raises(SerializationError, match="not a regular file"):
        ms.load(path) if name.endswith(".ckpt") else Excitations.load(path)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("name", ["metrics.csv", "excitations.npz", "config.json"])
def test_minise_plot_of_a_run_folder_holding_a_device_or_a_folder_is_one_line_not_a_hang(tmp_path, capsys, name):
    from minise.cli import main
    run = tmp_path / "run"
    run.mkdir()
    (run / name).symlink_to("/dev/zero")
    if name == "config.json":      # only the plot's title comes from it: the curves are drawn without one
        (run / "metrics.csv").write_text("epoch,lr,train_loss,train_acc,test_loss,test_acc,time_s,images_per_s\n"
                                         "1,0.1,2.0,0.2,2.1,0.25,1.0,100.0\n")
        assert main(["plot", str(run)]) == 0
        return
    assert main(["plot", str(run)]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"minise plot: error: {run / name} is not a regular file; delete it") and err.count("\n") == 1
