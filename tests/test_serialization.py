"""ms.save / ms.load: exact round trips, atomic writes, and files that are refused.

Oracles: the object that was saved (values, types and dtypes must come back
identical), the previous file's bytes (after a failed save), and a side effect
that unpickling would trigger (it must never happen).
"""

import io
import json
import math
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import minise as ms
from minise import backend
from minise.io import atomic_path, remove_stale_temps, serialization
from minise.io.serialization import SerializationError

UNPICKLED = []


class _Payload:
    """Unpickling this calls UNPICKLED.append: proof that code ran during a load."""

    def __reduce__(self):
        return (UNPICKLED.append, ("code ran",))


def _assert_same(a, b, where="obj"):
    """Equal values AND equal types, recursively (1 != True != 1.0 here)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} came back as {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} came back as {list(b)}"
        for key in a:
            assert type(key) is type(list(b)[list(a).index(key)])
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype, where
        assert a == b or (a != a and b != b), where
    elif isinstance(a, ms.Tensor):
        assert b.device == "cpu" and a.dtype == b.dtype and a.requires_grad == b.requires_grad, where
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=where)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, where
        if isinstance(a, float):
            assert math.copysign(1, a) == math.copysign(1, b), where


def _everything():
    rng = np.random.default_rng(7)
    return {
        "none": None, "true": True, "false": False, "zero": 0, "int": -42,
        "big": 2 ** 200, "big_negative": -(2 ** 127) - 1,
        "float": 0.1, "tiny": 5e-324, "nan": float("nan"), "inf": float("inf"), "minus_zero": -0.0,
        "str": "squeeze–excite ✓ \"quoted\" \n newline", "empty_str": "",
        "list": [1, 2.5, "three", None, [True, False]], "tuple": (1, (2, 3), []), "empty": [[], (), {}],
        7: "an int key", -1: "a negative int key", "7": "a str key that looks like 7",
        1.5: "a float key", None: "a None key", True: "a bool key",
        "float32": rng.standard_normal((3, 4)).astype(np.float32),
        "float64_0d": np.array(3.25), "float16": np.arange(5, dtype=np.float16),
        "uint8_image": rng.integers(0, 256, (2, 3, 4, 4), dtype=np.uint8),
        "int64_labels": np.array([3, 1, 4, 1, 5], dtype=np.int64),
        "bool_mask": np.array([[True, False], [False, True]]),
        "complex": np.array([1 + 2j, -3j]), "empty_array": np.zeros((0, 3), np.float32),
        "transposed": np.arange(12, dtype=np.int32).reshape(3, 4).T,
        "fortran": np.asfortranarray(rng.standard_normal((3, 5))),
        "np_float32": np.float32(1.5), "np_int64": np.int64(-9), "np_bool": np.bool_(True),
        "np_float64": np.float64(2.5), np.int64(3): "a numpy int key",
        "tensor": ms.tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True),
        "int_tensor": ms.tensor(np.array([1, 2, 3])),
    }


def test_every_supported_type_round_trips_with_its_exact_type_and_value(tmp_path):
    obj = _everything()
    ms.save(obj, tmp_path / "all.ckpt")
    _assert_same(obj, ms.load(tmp_path / "all.ckpt"))


def test_int_keys_stay_ints_next_to_string_keys(tmp_path):
    state = {"state": {0: {"step": 3}, 1: {"step": 4}}, "param_groups": [{"params": [0, 1]}], "0": "str"}
    ms.save(state, str(tmp_path / "opt.ckpt"))
    loaded = ms.load(str(tmp_path / "opt.ckpt"))
    assert list(loaded["state"]) == [0, 1] and all(type(k) is int for k in loaded["state"])
    assert loaded["0"] == "str" and 0 not in loaded


def test_big_python_ints_survive_exactly(tmp_path):
    values = [2 ** 127 + 12345, -(2 ** 128), 2 ** 1000 - 1, 0]
    ms.save(values, tmp_path / "big.ckpt")
    assert ms.load(tmp_path / "big.ckpt") == values


def test_numpy_generator_states_restore_the_same_random_stream(tmp_path):
    pcg = np.random.default_rng(12345)
    pcg.standard_normal(3)
    mt = np.random.Generator(np.random.MT19937(5))
    legacy = np.random.RandomState(9)
    saved = {"pcg64": pcg.bit_generator.state, "mt19937": mt.bit_generator.state,
             "legacy": legacy.get_state(), "minise": backend.get_rng_state()}
    assert saved["pcg64"]["state"]["state"] >= 2 ** 64 or saved["pcg64"]["state"]["inc"] >= 2 ** 64
    ms.save(saved, tmp_path / "rng.ckpt")
    loaded = ms.load(tmp_path / "rng.ckpt")
    _assert_same(saved, loaded)

    expected = (pcg.random(5), mt.random(5), legacy.random_sample(5), backend.rng().random(5))
    pcg2 = np.random.default_rng()
    pcg2.bit_generator.state = loaded["pcg64"]
    mt2 = np.random.Generator(np.random.MT19937())
    mt2.bit_generator.state = loaded["mt19937"]
    legacy2 = np.random.RandomState()
    legacy2.set_state(loaded["legacy"])
    backend.set_rng_state(loaded["minise"])
    got = (pcg2.random(5), mt2.random(5), legacy2.random_sample(5), backend.rng().random(5))
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)


def test_tensors_on_any_device_load_back_as_cpu_tensors(device, tmp_path):
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = ms.tensor(values, requires_grad=True, device=device)
    ms.save({"x": x, "raw": x.data, "frozen": ms.tensor(values, device=device)}, tmp_path / "t.ckpt")
    loaded = ms.load(tmp_path / "t.ckpt")
    assert isinstance(loaded["x"], ms.Tensor) and loaded["x"].device == "cpu" and loaded["x"].requires_grad
    assert loaded["frozen"].requires_grad is False
    assert isinstance(loaded["raw"], np.ndarray)
    for value in (loaded["x"].numpy(), loaded["raw"], loaded["frozen"].numpy()):
        np.testing.assert_array_equal(value, values)


def test_open_file_objects_work_too():
    buffer = io.BytesIO()
    ms.save({"w": np.ones(3, np.float32), "step": 2}, buffer)
    buffer.seek(0)
    loaded = ms.load(buffer)
    assert loaded["step"] == 2
    np.testing.assert_array_equal(loaded["w"], np.ones(3, np.float32))


def test_the_file_is_a_zip_of_json_and_npy_entries(tmp_path):
    path = tmp_path / "layout.ckpt"
    ms.save({"w": np.arange(3.0), "b": [np.zeros(2)], "lr": 0.1}, path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["arrays/0.npy", "arrays/1.npy", "structure.json"]
        header = json.loads(zf.read("structure.json"))
        assert header["format"] == "minise" and header["version"] == 1
        with zf.open("arrays/0.npy") as f:
            np.testing.assert_array_equal(np.load(f, allow_pickle=False), np.arange(3.0))


def _write_old(path):
    ms.save({"epoch": 1, "w": np.ones(4, np.float32)}, path)
    return path.read_bytes()


def _assert_old_file_intact_and_no_temp_left(path, old_bytes):
    assert path.read_bytes() == old_bytes
    assert ms.load(path)["epoch"] == 1
    assert sorted(os.listdir(path.parent)) == [path.name], "a temporary file was left behind"


def test_an_unsaveable_object_midway_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "last.ckpt"
    old = _write_old(path)
    with pytest.raises(TypeError, match=r"obj\['model'\]\[1\] of type object"):
        ms.save({"epoch": 2, "model": [np.zeros(1000), object(), np.zeros(3)]}, path)
    _assert_old_file_intact_and_no_temp_left(path, old)


@pytest.mark.parametrize("failure", [OSError("No space left on device"), KeyboardInterrupt()],
                         ids=["disk-full", "ctrl-c"])
def test_a_failure_while_writing_arrays_leaves_the_previous_file_intact(tmp_path, monkeypatch, failure):
    path = tmp_path / "last.ckpt"
    old = _write_old(path)
    real_write = serialization._write_array
    written = []

    def write_then_fail(zf, entry, array):
        if written:
            assert path.read_bytes() == old, "the target was touched before the new file was complete"
            assert len(os.listdir(tmp_path)) == 2      # the old file and the temporary one
            raise failure
        written.append(entry)
        real_write(zf, entry, array)

    monkeypatch.setattr(serialization, "_write_array", write_then_fail)
    with pytest.raises(type(failure)):
        ms.save({"epoch": 2, "a": np.zeros(10), "b": np.zeros(10)}, path)
    assert written == ["arrays/0.npy"]
    _assert_old_file_intact_and_no_temp_left(path, old)


def test_a_failed_rename_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    old = _write_old(path)

    def failing_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(serialization.os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        ms.save({"epoch": 2}, path)
    monkeypatch.undo()
    _assert_old_file_intact_and_no_temp_left(path, old)


def test_a_successful_save_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "last.ckpt"
    _write_old(path)
    ms.save({"epoch": 2}, path)
    assert ms.load(path) == {"epoch": 2}
    assert os.listdir(tmp_path) == ["last.ckpt"]


def _savez(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _zip_with(path, structure, entries):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("structure.json", json.dumps(structure))
        for name, data in entries.items():
            zf.writestr(name, data)


def test_a_pickle_bearing_npy_entry_is_refused_without_running_code(tmp_path):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([_Payload()], dtype=object), allow_pickle=True)
    assert b"append" in buffer.getvalue()                # the payload is really in there
    path = tmp_path / "evil.ckpt"
    _zip_with(path, {"format": "minise", "version": 1,
                     "root": {"type": "dict", "items": [[{"type": "str", "value": "w"},
                                                         {"type": "ndarray", "entry": "arrays/0.npy"}]]}},
              {"arrays/0.npy": buffer.getvalue()})
    with pytest.raises(SerializationError, match=r"evil\.ckpt.*arrays/0\.npy.*pickled"):
        ms.load(path)
    assert UNPICKLED == []
    with pytest.raises(TypeError, match="dtype object"):
        ms.save({"w": np.array([_Payload()], dtype=object)}, tmp_path / "refused.ckpt")
    assert not (tmp_path / "refused.ckpt").exists()


@pytest.mark.parametrize("make_file,match", [
    (lambda p: p.write_bytes(b""), "not a zip file"),
    (lambda p: p.write_bytes(pickle.dumps({"w": 1})), "not a zip file"),
    (lambda p: _savez(p, w=np.ones(3)), "without structure.json"),
    (lambda p: _zip_with(p, {"format": "something-else"}, {}), "does not describe a minise checkpoint"),
    (lambda p: _zip_with(p, {"format": "minise", "version": 99, "root": {"type": "none"}}, {}), "version 99"),
    (lambda p: _zip_with(p, {"format": "minise", "version": 1, "root": {"type": "ndarray", "entry": "x.npy"}}, {}),
     "damaged"),
    (lambda p: _zip_with(p, {"format": "minise", "version": 1, "root": {"type": "mystery"}}, {}), "damaged"),
], ids=["empty", "a-pickle", "npz", "other-format", "future-version", "missing-entry", "unknown-node"])
def test_files_that_are_not_minise_checkpoints_raise_an_error_naming_the_path(tmp_path, make_file, match):
    path = tmp_path / "suspect.ckpt"
    make_file(path)
    with pytest.raises(SerializationError, match=match) as info:
        ms.load(path)
    assert str(path) in str(info.value)


def test_a_truncated_or_bit_flipped_checkpoint_is_reported_as_damaged(tmp_path):
    good = tmp_path / "good.ckpt"
    ms.save({"w": np.arange(1000, dtype=np.float32)}, good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SerializationError, match="truncated.ckpt"):
        ms.load(truncated)
    flipped = tmp_path / "flipped.ckpt"
    middle = len(data) // 2                               # inside the array's bytes: the CRC catches it
    flipped.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    with pytest.raises(SerializationError, match="flipped.ckpt.*damaged"):
        ms.load(flipped)


def test_save_explains_what_it_cannot_save(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['opt'\]\['fn'\] of type function"):
        ms.save({"opt": {"fn": lambda: 0}}, tmp_path / "a.ckpt")
    with pytest.raises(TypeError, match="key"):
        ms.save({(1, 2): "tuple key"}, tmp_path / "a.ckpt")
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        ms.save(loop, tmp_path / "a.ckpt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ms.save({}, tmp_path / "no" / "such" / "folder.ckpt")
    with pytest.raises(FileNotFoundError):
        ms.load(tmp_path / "missing.ckpt")
    assert os.listdir(tmp_path) == []


# --- every writer: the mode of a plain open(), and the bytes on disk before the rename ---------
def _save_ckpt(path):
    ms.save({"epoch": 2, "w": np.arange(6, dtype=np.float32)}, path)


def _save_safetensors(path):
    pytest.importorskip("safetensors")
    ms.save_safetensors({"w": np.arange(6, dtype=np.float32)}, path)   # safetensors 0.8 creates its file 0600


def _save_via_atomic_path_0600(path):
    from minise.io.atomic import atomic_path
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)   # a writer that picks its own mode
        os.write(fd, b"data")
        os.close(fd)


WRITERS = [_save_ckpt, _save_safetensors, _save_via_atomic_path_0600]


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002], ids=oct)
@pytest.mark.parametrize("write", WRITERS, ids=lambda w: w.__name__)
def test_every_written_file_gets_the_mode_a_plain_open_gives(tmp_path, write, umask):
    # `minise export` wrote model.safetensors -rw------- under umask 022, every other output -rw-r--r--
    old = os.umask(umask)
    try:
        with open(tmp_path / "plain", "w"):
            pass
        write(tmp_path / "out")
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert (tmp_path / "plain").stat().st_mode & 0o777 == expected
    assert oct((tmp_path / "out").stat().st_mode & 0o777) == oct(expected)


@pytest.mark.skipif(os.name == "nt", reason="POSIX umask")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002], ids=oct)
def test_current_umask_reads_the_umask_and_leaves_it_as_it_was(umask):
    from minise.io.atomic import current_umask
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        assert current_umask() == umask
    finally:
        assert os.umask(old) == umask


@pytest.mark.parametrize("write", WRITERS, ids=lambda w: w.__name__)
def test_every_written_file_is_fsynced_before_it_is_renamed_into_place(tmp_path, monkeypatch, write):
    # atomic_path renamed without an fsync: a power cut after the rename could leave an empty model.safetensors
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        return real_fsync(fd)

    def replace(src, dst, *args, **kwargs):
        events.append(("replace", os.stat(src).st_ino))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write(tmp_path / "out")
    monkeypatch.undo()
    inode = (tmp_path / "out").stat().st_ino
    assert ("replace", inode) in events, events
    assert ("fsync", inode) in events[:events.index(("replace", inode))], events
    folder = os.stat(tmp_path).st_ino      # and the folder after the rename, so the rename itself survives
    assert ("fsync", folder) in events[events.index(("replace", inode)):], events


@pytest.mark.parametrize("name", ["a" * 245 + ".ckpt", "é" * 122 + ".ckpt"], ids=["ascii-250", "utf8-249-bytes"])
@pytest.mark.parametrize("write", WRITERS, ids=lambda w: w.__name__)
def test_every_writer_takes_a_name_as_long_as_the_file_system_does(tmp_path, write, name):
    # the temporary file's name is 21 bytes longer: a 240-byte name failed with "File name too long"
    assert len(name.encode()) <= 255
    write(tmp_path / name)
    assert os.listdir(tmp_path) == [name] and (tmp_path / name).stat().st_size > 0


@pytest.mark.skipif(sys.platform != "linux", reason="a file name of bytes that are no UTF-8: Linux file systems")
@pytest.mark.parametrize("raw", [b"\xff", b"\xe9t\xe9.ckpt", b"\xff" * 255], ids=["one-byte", "latin-1", "255-bytes"])
def test_a_temporary_file_keeps_the_bytes_of_a_name_that_is_no_utf8(tmp_path, raw):
    # its <name> part dropped them: b"\xff" gave "..<pid>.<hex>.tmp", which TEMP_PATTERN read as an old temporary
    # file without a process id, so another write into the folder removed it while it was being written
    name = os.fsdecode(raw)
    with atomic_path(tmp_path / name) as tmp:
        Path(tmp).write_bytes(b"x")
        assert remove_stale_temps(tmp_path) == []          # a live writer's file is kept
        assert os.fsencode(tmp.name).startswith(b"." + raw[:200])
    assert os.listdir(tmp_path) == [name] and (tmp_path / name).read_bytes() == b"x"


@pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664], ids=oct)
@pytest.mark.parametrize("write", WRITERS, ids=lambda w: w.__name__)
def test_a_file_written_over_keeps_its_mode_as_with_a_plain_open(tmp_path, write, mode):
    # a checkpoint made private with chmod 600 became -rw-r--r-- when saved again (the umask's mode)
    target = tmp_path / "out"
    with open(tmp_path / "plain", "w"):
        pass
    write(target)
    os.chmod(tmp_path / "plain", mode)
    os.chmod(target, mode)
    with open(tmp_path / "plain", "w"):        # what open() does to an existing file: keeps its mode
        pass
    write(target)
    assert oct(target.stat().st_mode & 0o777) == oct(mode) == oct((tmp_path / "plain").stat().st_mode & 0o777)
