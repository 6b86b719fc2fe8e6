"""`minise train | eval | plot` when things go wrong: a hostile or broken checkpoint, missing data,
a full disk, a read-only folder, a second Ctrl-C, divergence. Each failure must give ONE line
``minise <command>: error: ...``, the documented exit code (minise/cli/common.py, docs/files.md),
no traceback, and leave every file the user had byte for byte as it was.

Two real runs are shared (SE-ResNet-20 on a 32-image embedded subset): one finished (1 of 1
epochs) and one half done (1 of 2 epochs). Disk failures are injected as OSError.
"""

import contextlib
import errno
import io
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import minise as ms
from minise.cli import common, main
from minise.data import ChecksumError, DownloadError
from minise.io import CheckpointError, SerializationError, serialization
from minise.training import NonFiniteLossError, TrainConfig, Trainer, builders, read_metrics
from minise.training import trainer as trainer_module
from minise.viz import write_curves

TINY = ["--model", "se_resnet20", "--dataset", "embedded", "--subset", "32", "--batch-size", "16",
        "--eval-batch-size", "32", "--no-progress"]
TINY_CONFIG = dict(model="se_resnet20", dataset="embedded", subset=32, batch_size=16, eval_batch_size=32,
                   progress=False)


@pytest.fixture(scope="module", autouse=True)
def embedded_once():
    """The embedded 32-image splits are drawn once for the module (drawing them is most of a tiny run's time)."""
    real = builders.load_dataset
    config = TrainConfig(**TINY_CONFIG).resolved()
    cached = {True: real(config, train=True), False: real(config, train=False)}

    def load_dataset(config, train=True, download=True):
        if config.dataset == "embedded" and config.subset == 32:
            return cached[train]
        return real(config, train=train, download=download)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builders, "load_dataset", load_dataset)
        yield


@pytest.fixture(scope="module")
def runs(tmp_path_factory, embedded_once):
    """(finished run folder, half-done run folder): built once, copied by each test that changes them."""
    root = tmp_path_factory.mktemp("runs")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", *TINY, "--epochs", "1", "--out", str(root / "finished")]) == 0
        Trainer(TrainConfig(epochs=2, out=str(root / "half"), **TINY_CONFIG), log_writers=[write_curves]).fit(1)
    return root / "finished", root / "half"


def _copy(folder, tmp_path):
    return Path(shutil.copytree(folder, tmp_path / folder.name))


def _snapshot(folder):
    """Every file under ``folder`` and its bytes: what 'unchanged' is checked against."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


def _run(argv, capsys):
    """(exit code, stdout, stderr) of ``minise argv``; asserts a failure is one error line, no traceback."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if code != 0 and code != 130:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"minise {argv[0]}: error: "), err
    return code, out, err


def _edit(path, change):
    state = ms.load(path)
    change(state)
    ms.save(state, path)


# --- 1. a checkpoint chooses no place and no download -----------------------------------
@pytest.fixture
def no_download(monkeypatch, tmp_path):
    """MINISE_DATA points to an empty folder; any download attempt fails the test."""
    monkeypatch.setenv("MINISE_DATA", str(tmp_path / "cache"))

    def forbidden(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args}")

    from minise.data import cifar, fashion_mnist
    monkeypatch.setattr(cifar, "download_url", forbidden)
    monkeypatch.setattr(fashion_mnist, "download_url", forbidden)


def _plant_elsewhere(state, elsewhere, epochs=None):
    state["config"].update(dataset="cifar10", data_dir=str(elsewhere))
    if epochs:
        state["config"]["epochs"] = epochs


def test_eval_neither_creates_nor_downloads_into_a_folder_a_checkpoint_names(runs, tmp_path, capsys, no_download):
    run = _copy(runs[0], tmp_path)
    elsewhere = tmp_path / "some" / "other" / "place"
    _edit(run / "best.ckpt", lambda s: _plant_elsewhere(s, elsewhere))
    before = _snapshot(run)
    code, out, err = _run(["eval", str(run / "best.ckpt")], capsys)
    assert code == common.EXIT_USAGE
    assert "does not download a dataset because a checkpoint names it" in err and "--dataset cifar10" in err
    assert str(tmp_path / "cache") in err  # it looked where MINISE_DATA says
    assert not (tmp_path / "some").exists() and not (tmp_path / "cache").exists()
    assert _snapshot(run) == before


def test_resume_neither_creates_nor_downloads_into_a_folder_a_checkpoint_names(runs, tmp_path, capsys, no_download):
    run = _copy(runs[1], tmp_path)
    elsewhere = tmp_path / "some" / "other" / "place"
    _edit(run / "last.ckpt", lambda s: _plant_elsewhere(s, elsewhere))
    before = _snapshot(run)
    code, out, err = _run(["train", "--resume", str(run / "last.ckpt"), "--no-progress"], capsys)
    assert code == common.EXIT_USAGE and "--dataset cifar10" in err
    assert not (tmp_path / "some").exists()
    assert _snapshot(run) == before


def test_class_names_from_a_checkpoint_are_printed_with_control_characters_escaped(runs, tmp_path, capsys):
    run = _copy(runs[0], tmp_path)
    evil = ["cat\x1b[2J", "dog\rOWNED", "bi\u202erd"] + [f"c{i}" for i in range(7)]
    _edit(run / "best.ckpt", lambda s: s.update(classes=evil))
    code, out, err = _run(["eval", str(run / "best.ckpt"), "--out", str(tmp_path / "cm.png")], capsys)
    assert code == 0
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    assert "cat\\x1b[2J" in out and "dog\\x0dOWNED" in out and "bi\\u202erd" in out


# --- 2. broken checkpoints: one line, exit 3 ------------------------------------------------
@pytest.mark.parametrize("key", ["epoch", "config", "model", "optimizer", "rng", "classes", "metrics", "scheduler"])
@pytest.mark.parametrize("command", ["eval", "resume"])
def test_a_checkpoint_missing_a_key_is_one_line_naming_it(runs, tmp_path, capsys, key, command):
    run = _copy(runs[1], tmp_path)
    _edit(run / "last.ckpt", lambda s: s.pop(key))
    before = _snapshot(run)
    argv = (["eval", str(run / "last.ckpt")] if command == "eval"
            else ["train", "--resume", str(run / "last.ckpt"), "--no-progress"])
    code, out, err = _run(argv, capsys)
    assert code == common.EXIT_BAD_FILE and f"has no '{key}'" in err
    assert _snapshot(run) == before


@pytest.mark.parametrize("damage", ["truncated", "not-a-zip", "empty", "a-folder"])
def test_a_damaged_checkpoint_file_is_one_line_and_exit_3(runs, tmp_path, capsys, damage):
    run = _copy(runs[0], tmp_path)
    ckpt = run / "best.ckpt"
    data = ckpt.read_bytes()
    if damage == "truncated":
        ckpt.write_bytes(data[: len(data) // 3])
    elif damage == "not-a-zip":
        ckpt.write_bytes(b"\x80\x04K\x01." + data[5:])
    elif damage == "empty":
        ckpt.write_bytes(b"")
    before = _snapshot(run)
    if damage == "a-folder":
        ckpt.unlink()
        ckpt.mkdir()
        code, _, err = _run(["eval", str(ckpt)], capsys)  # a folder holding no checkpoint: was exit 2, "no checkpoint"
        assert code == common.EXIT_BAD_FILE and f"{ckpt} is a folder, not a checkpoint file" in err
        return
    code, _, err = _run(["eval", str(ckpt)], capsys)
    assert code == common.EXIT_BAD_FILE and str(ckpt) in err
    assert _snapshot(run) == before


def test_resume_refuses_a_checkpoint_without_the_scheduler_state_its_run_needs(runs, tmp_path, capsys):
    run = _copy(runs[1], tmp_path)
    _edit(run / "last.ckpt", lambda s: s.update(scheduler=None))
    before = _snapshot(run)
    code, _, err = _run(["train", "--resume", str(run), "--no-progress"], capsys)
    assert code == common.EXIT_BAD_FILE and "'onecycle' learning-rate schedule" in err and "no scheduler state" in err
    assert _snapshot(run) == before


@pytest.mark.parametrize("schedule", ["cosine", "step", "none"])
def test_resume_refuses_scheduler_state_of_another_schedule(runs, tmp_path, capsys, schedule):
    run = _copy(runs[1], tmp_path)
    _edit(run / "last.ckpt", lambda s: s["config"].update(schedule=schedule, warmup_epochs=0.0))
    before = _snapshot(run)
    code, _, err = _run(["train", "--resume", str(run), "--no-progress"], capsys)
    assert code == common.EXIT_BAD_FILE and "scheduler" in err
    assert _snapshot(run) == before


@pytest.mark.parametrize("change", ["lr-a-string", "model-unknown", "weights-misshapen", "steps-do-not-fit",
                                    "best-acc-nan"])
def test_resume_refuses_a_checkpoint_whose_contents_do_not_fit_its_run(runs, tmp_path, capsys, change):
    run = _copy(runs[1], tmp_path)

    def damage(state):
        if change == "lr-a-string":
            state["config"]["lr"] = "0.1; rm -rf /"
        elif change == "model-unknown":
            state["config"]["model"] = "../../evil"
        elif change == "weights-misshapen":
            state["model"]["fc.weight"] = np.zeros((3, 3), np.float32)
        elif change == "best-acc-nan":           # was accepted: "best test accuracy nan%", never a new best
            state["best_acc"] = float("nan")
        else:
            state["global_step"] = 7
    _edit(run / "last.ckpt", damage)
    before = _snapshot(run)
    code, _, err = _run(["train", "--resume", str(run), "--no-progress"], capsys)
    assert code in (common.EXIT_BAD_FILE, common.EXIT_USAGE), err
    assert _snapshot(run) == before


@pytest.mark.parametrize("entry, value, named", [
    ("model", np.nan, "model['linear.weight']"),
    ("momentum", np.inf, "optimizer.state['linear.bias']['momentum_buffer']"),
])
def test_resume_refuses_a_checkpoint_holding_nan_or_infinity_by_name(runs, tmp_path, capsys, entry, value, named):
    # minise never saves such a state (the run stops first): the file was damaged or edited. Without
    # this check the resumed run reported "training diverged" (exit 1) an epoch later.
    run = _copy(runs[1], tmp_path)

    def damage(state):
        if entry == "model":
            state["model"]["linear.weight"][0, 0] = value
        else:                     # the optimiser's state is indexed by parameter order: the last is linear.bias
            buffers = state["optimizer"]["state"]
            buffers[max(buffers, key=int)]["momentum_buffer"][0] = value
    _edit(run / "last.ckpt", damage)
    before = _snapshot(run)
    code, _, err = _run(["train", "--resume", str(run), "--no-progress"], capsys)
    assert code == common.EXIT_BAD_FILE, err
    assert f"1 entry holds NaN or infinity ({named})" in err and "damaged or was edited" in err, err
    assert _snapshot(run) == before


# --- 3. the disk refuses ------------------------------------------------------------------
@pytest.mark.parametrize("code_errno", [errno.EROFS, errno.EACCES, errno.ENOSPC])
def test_an_unwritable_out_folder_fails_in_a_second_before_any_data_or_model(tmp_path, capsys, monkeypatch,
                                                                             runs, code_errno):
    def refuse(*args, **kwargs):
        raise OSError(code_errno, os.strerror(code_errno))

    def no_data(*args, **kwargs):
        raise AssertionError("the dataset was built before the output folder was checked")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(builders, "load_dataset", no_data)
    run = _copy(runs[0], tmp_path)
    before = _snapshot(run)
    code, out, err = _run(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "new")], capsys)
    assert code == common.EXIT_IO and str(tmp_path / "new") in err
    assert not (tmp_path / "new").exists()
    code, out, err = _run(["eval", str(run / "best.ckpt")], capsys)
    assert code == common.EXIT_IO and out == ""  # no accuracy printed before a crash on the PNG
    assert _snapshot(run) == before


def test_eval_out_in_a_folder_that_refuses_files_names_the_flag_and_what_failed(runs, tmp_path, capsys, monkeypatch):
    # /proc exists but answers ENOENT to a new file: the message said "No such file or directory: '/proc'"
    def refuse(*args, dir=None, **kwargs):
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), dir)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    run = _copy(runs[0], tmp_path)
    code, out, err = _run(["eval", str(run / "best.ckpt"), "--out", str(tmp_path / "x.png")], capsys)
    assert code == common.EXIT_USAGE and out == ""
    assert err.strip() == (f"minise eval: error: --out {tmp_path / 'x.png'}: cannot create a file in {tmp_path} "
                           "(No such file or directory)")


def test_a_full_disk_during_a_checkpoint_save_is_one_line_exit_4_and_the_run_folder_is_unchanged(
        runs, tmp_path, capsys, monkeypatch):
    run = _copy(runs[1], tmp_path)
    before = _snapshot(run)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(serialization, "_write_zip", full)
    code, _, err = _run(["train", "--resume", str(run), "--no-progress"], capsys)
    assert code == common.EXIT_IO and "no space left" in err and ".ckpt" in err
    after = _snapshot(run)  # no temp file left, every file as it was (config.json records the copy's folder)
    assert after.pop("config.json") and before.pop("config.json") and after == before


# --- 4. resume is exact or refuses -----------------------------------------------------------
def test_a_completed_run_whose_logs_lag_gets_them_rewritten_from_the_checkpoint(runs, tmp_path, capsys):
    run = _copy(runs[0], tmp_path)
    (run / "metrics.csv").write_text("epoch,lr\n")  # the crash came after last.ckpt, before metrics.csv
    (run / "curves.png").unlink()
    code, out, _ = _run(["train", "--resume", "--out", str(run)], capsys)
    assert code == 0 and "rewrote" in out and "already completed 1 of 1" in out
    saved = ms.load(run / "last.ckpt")["metrics"]
    assert read_metrics(run) == [{k: row[k] for k in read_metrics(run)[0]} for row in saved]
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_removes_the_temp_file_of_a_save_killed_earlier_and_finishes(runs, tmp_path, capsys):
    run = _copy(runs[1], tmp_path)
    stale = run / f".last.ckpt.{2**22 + 4321}.0123abcd.tmp"
    stale.write_bytes(b"half a checkpoint")
    code, _, _ = _run(["train", "--resume", str(run), "--no-progress"], capsys)
    assert code == 0 and not stale.exists()
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2]
    assert not [p for p in os.listdir(run) if p.endswith(".tmp")]


def test_a_second_ctrl_c_during_the_save_is_honoured_quietly_and_the_files_stay_whole(
        runs, tmp_path, capsys, monkeypatch):
    run = _copy(runs[1], tmp_path)
    before = _snapshot(run)

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module, "evaluate", ctrl_c)          # first Ctrl-C: during epoch 2
    monkeypatch.setattr(serialization, "_write_zip", ctrl_c)         # second: while saving last.ckpt
    code, out, err = _run(["train", "--resume", str(run), "--no-progress"], capsys)
    assert code == common.EXIT_INTERRUPTED and "interrupted again while saving" in out
    after = _snapshot(run)  # (config.json records the copy's folder)
    assert after.pop("config.json") and before.pop("config.json") and after == before


# --- 5. divergence --------------------------------------------------------------------------------
def test_an_infinite_batchnorm_buffer_stops_the_run_and_is_never_saved_as_best(tmp_path, capsys, monkeypatch):
    evaluate = trainer_module.evaluate

    def overflow_then_evaluate(model, *args, **kwargs):  # what lr 10 does to running_var, in one step
        model.layer1[0].bn1.running_var.data[3] = np.inf
        return evaluate(model, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "evaluate", overflow_then_evaluate)
    out_dir = tmp_path / "run"
    code, _, err = _run(["train", *TINY, "--epochs", "1", "--out", str(out_dir)], capsys)
    assert code == common.EXIT_NON_FINITE and "layer1.0.bn1.running_var" in err
    assert not (out_dir / "best.ckpt").exists()
    state = ms.load(out_dir / "last.ckpt")
    assert state["epoch"] == 0 and all(np.isfinite(v).all() for v in state["model"].values())


# --- the mapping itself ------------------------------------------------------------------------------
@pytest.mark.parametrize("exc, code", [
    (NonFiniteLossError(1, 1, 1, float("nan")), 1),
    (ValueError("bad value"), 2), (FileNotFoundError("no such"), 2), (FileExistsError("there"), 2),
    (SerializationError("bad zip"), 3), (CheckpointError("no epoch"), 3), (ChecksumError("md5"), 3),
    (OSError(errno.ENOSPC, "full"), 4), (OSError(errno.EDQUOT, "quota"), 4), (OSError(errno.EROFS, "ro"), 4),
    (PermissionError(errno.EACCES, "denied"), 4), (OSError(errno.EIO, "io"), 4),
    (DownloadError("offline"), 5), (KeyboardInterrupt(), 130),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v))
def test_guarded_maps_each_expected_failure_to_one_line_and_its_code(exc, code, capsys):
    def body():
        raise exc
    assert common.guarded("train", body) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["train", "eval", "plot"])
@pytest.mark.parametrize("device, says", [
    ("nosuch", "unknown device 'nosuch': expected 'cpu', 'cuda' or 'cuda:N'"),
    ("cuda:x", "unknown device 'cuda:x'"),
])
def test_an_unknown_device_is_one_line_naming_the_flag_and_what_was_typed(runs, tmp_path, capsys, command,
                                                                           device, says):
    finished, _ = runs
    argv = {"train": ["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "run")],
            "eval": ["eval", str(finished / "best.ckpt")],
            "plot": ["plot", str(finished), "--excitations"]}[command] + ["--device", device]
    code, _, err = _run(argv, capsys)
    assert code == common.EXIT_USAGE
    assert err.startswith(f"minise {command}: error: --device {device}: {says}"), err
    assert not (tmp_path / "run").exists()


def test_a_device_this_machine_cannot_use_names_the_flag_and_offers_the_cpu_in_its_words(capsys, monkeypatch):
    def no_gpu(device):
        raise ms.backend.DeviceError(f"device {device!r} was asked for, but CUDA is not usable here: "
                                     "no driver. Use device='cpu'.")
    monkeypatch.setattr(ms.backend, "_require_gpu", no_gpu)
    code, _, err = _run(["train", *TINY, "--epochs", "1", "--device", "cuda"], capsys)
    assert code == common.EXIT_USAGE
    assert err.strip() == ("minise train: error: --device cuda: device 'cuda' was asked for, but CUDA is not "
                           "usable here: no driver. Use --device cpu.")


def test_a_reader_closing_the_pipe_ends_the_command_quietly_with_exit_0(capsys):
    # `minise eval RUN | head -1` printed "minise eval: error: Broken pipe" and exit 4 ("the disk refused")
    def body():
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")
    assert common.guarded("eval", body) == 0
    assert capsys.readouterr().err == ""


def test_minise_piped_into_a_reader_that_quits_exits_0_without_a_word_on_stderr(tmp_path):
    import subprocess
    import sys
    # `true` exits at once: minise (a second to import and build) then writes into a pipe nobody reads
    result = subprocess.run(f"{sys.executable} -m minise summary se_resnet20 | true; exit ${{PIPESTATUS[0]}}",
                            shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result


@pytest.mark.parametrize("exc", [RuntimeError("a bug"), KeyError("x"), TypeError("y"), AttributeError("z")])
def test_guarded_lets_a_bug_through_as_a_traceback(exc):
    def body():
        raise exc
    with pytest.raises(type(exc)):
        common.guarded("train", body)


def test_every_exit_code_is_documented_in_the_files_page():
    page = (Path(__file__).parents[1] / "docs" / "files.md").read_text(encoding="utf-8")
    for code in common.EXIT_CODES:
        assert f"| {code} |" in page


def test_a_download_failure_through_the_cli_is_exit_5(tmp_path, capsys, monkeypatch):
    from data_fixtures import closed_port_url

    from minise.data import CIFAR10
    monkeypatch.setattr(CIFAR10, "URL", closed_port_url("/cifar.tgz"))
    code, _, err = _run(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
                         "--no-progress", "--out", str(tmp_path / "run")], capsys)
    assert code == common.EXIT_DOWNLOAD and "could not download" in err


# --- the same on real small and read-only file systems (needs root: mounts a tmpfs) -----------------------
@contextlib.contextmanager
def _tmpfs(mount, size):
    """A tmpfs of ``size`` at ``mount``; skips the test where mounting is not allowed (not root)."""
    import subprocess

    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not root'})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_fs(tmp_path):
    """A 256 KiB file system: a se_resnet20 checkpoint (1.1 MB) does not fit."""
    with _tmpfs(tmp_path / "small", "256k") as mount:
        yield mount


@pytest.fixture
def roomy_fs(tmp_path):
    with _tmpfs(tmp_path / "roomy", "8m") as mount:
        yield mount


def test_a_really_full_disk_ends_training_with_exit_4_and_no_temp_file(small_fs, capsys):
    out_dir = small_fs / "run"
    code, _, err = _run(["train", *TINY, "--epochs", "1", "--out", str(out_dir)], capsys)
    assert code == common.EXIT_IO and "no space left" in err and "last.ckpt" in err
    assert sorted(os.listdir(out_dir)) == ["config.json"]  # the checkpoint did not fit; no temp file stays


def test_a_really_read_only_folder_fails_eval_before_any_output(roomy_fs, runs, capsys):
    import subprocess

    shutil.copy(runs[0] / "best.ckpt", roomy_fs / "best.ckpt")
    before = _snapshot(roomy_fs)
    subprocess.run(["mount", "-o", "remount,ro", str(roomy_fs)], check=True)
    code, out, err = _run(["eval", str(roomy_fs / "best.ckpt")], capsys)
    assert code == common.EXIT_IO and "read-only file system" in err and out == ""
    assert _snapshot(roomy_fs) == before


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("name, kind", [("metrics.csv", "dev-zero"), ("metrics.csv", "folder"),
                                        ("lr.csv", "dev-zero"), ("grad_health.csv", "folder")])
def test_resume_refuses_a_log_that_is_not_a_regular_file_before_reading_it(runs, tmp_path, capsys, name, kind):
    # metrics.csv -> /dev/zero made resume read forever (2 GB in 15 s); a folder gave "[Errno 21] ... .tmp"
    run = _copy(runs[1], tmp_path)
    (run / name).unlink(missing_ok=True)
    if kind == "dev-zero":
        (run / name).symlink_to("/dev/zero")
    else:
        (run / name).mkdir()
    code, _, err = _run(["train", "--resume", str(run), "--no-progress"], capsys)
    assert code == common.EXIT_BAD_FILE and "is not a regular file" in err and name in err, err   # a bad file


def test_a_log_over_the_size_limit_is_refused_before_its_rows_are_read(tmp_path, monkeypatch):
    from minise.io import text
    from minise.training import read_metrics
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,lr\n" + "1,0.1\n" * 100)
    monkeypatch.setattr(text, "MAX_LOG_BYTES", 500)
    with pytest.raises(ValueError, match=r"holds 609 bytes, over the 500-byte limit"):
        read_metrics(path)


@pytest.mark.parametrize("case, code, message", [
    ("empty checkpoint", common.EXIT_BAD_FILE, "is not a minise checkpoint"),        # was exit 2
    ("unwritable out", common.EXIT_USAGE, "OUT "),                                   # was a traceback, exit 1
])
def test_export_failures_are_one_line_with_the_documented_exit_code(runs, tmp_path, capsys, monkeypatch, case, code,
                                                                    message):
    if case == "empty checkpoint":
        (tmp_path / "empty.ckpt").write_bytes(b"")
        argv = ["export", str(tmp_path / "empty.ckpt"), str(tmp_path / "x.safetensors")]
    else:
        def refuse(*args, dir=None, **kwargs):
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), dir)
        monkeypatch.setattr(tempfile, "mkstemp", refuse)
        argv = ["export", str(runs[0]), str(tmp_path / "x.safetensors")]
    got, _, err = _run(argv, capsys)
    assert got == code and message in err, err
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("command", ["eval", "export"])
def test_a_best_ckpt_that_is_not_a_regular_file_is_refused_not_skipped_for_last_ckpt(runs, tmp_path, capsys, command):
    # eval fell back to last.ckpt without a word; export said "no checkpoint at .../best.ckpt/last.ckpt"
    run = _copy(runs[0], tmp_path)
    (run / "best.ckpt").unlink()
    (run / "best.ckpt").mkdir()
    argv = [command, str(run)] + ([str(tmp_path / "x.safetensors")] if command == "export" else [])
    code, out, err = _run(argv, capsys)
    assert code == common.EXIT_BAD_FILE and out == ""
    assert f"{run / 'best.ckpt'} is a folder, not a regular file; expected a checkpoint minise wrote" in err


@pytest.mark.parametrize("name", ["best.ckpt", "last.ckpt"])
@pytest.mark.parametrize("command", ["eval", "export"])
def test_a_run_folder_whose_checkpoint_is_a_broken_link_is_no_checkpoint_exit_2(tmp_path, capsys, command, name):
    # "RUN/best.ckpt is a broken link (to ...), not a regular file; ...", exit 3, where a broken link typed as
    # CKPT, and train --resume of the same folder, say "no checkpoint at", exit 2 (docs/files.md)
    run = tmp_path / "run"
    run.mkdir()
    (run / name).symlink_to(tmp_path / "gone.ckpt")
    argv = [command, str(run)] + ([str(tmp_path / "x.safetensors")] if command == "export" else [])
    got, out, err = _run(argv, capsys)
    line = f"no checkpoint at {run / name}: it is a broken link (to {tmp_path / 'gone.ckpt'})"
    assert (got, err) == (common.EXIT_USAGE, f"minise {command}: error: {line}\n") and out == ""


REGULAR_HINT = "pass a .ckpt file minise wrote, or a run folder (its best.ckpt, else its last.ckpt)"


def _no_regular_ckpt(tmp_path, kind, hint):
    """x.ckpt made a link to /dev/zero, a fifo or a broken link: (its path, the exit code and the error line
    expected for it; ``hint`` ends the line of the first two)."""
    typed = tmp_path / "x.ckpt"
    if kind == "dev-zero":
        typed.symlink_to("/dev/zero")
        return typed, common.EXIT_BAD_FILE, f"{typed} is a device (a link to /dev/zero), not a regular file: {hint}"
    if kind == "fifo":
        os.mkfifo(typed)
        return typed, common.EXIT_BAD_FILE, f"{typed} is a pipe, not a regular file: {hint}"
    typed.symlink_to(tmp_path / "gone.ckpt")
    return typed, common.EXIT_USAGE, f"no checkpoint at {typed}: it is a broken link (to {tmp_path / 'gone.ckpt'})"


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"), reason="needs /dev/zero, mkfifo")
@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "folder", "broken link"])
@pytest.mark.parametrize("command", ["eval", "export", "plot"])
def test_a_ckpt_that_is_there_but_no_regular_file_is_refused_saying_what_it_is(tmp_path, capsys, command, kind):
    # all said "no checkpoint at zero.ckpt: pass a .ckpt file, ...", exit 2: something IS there
    if kind == "folder":
        typed = tmp_path / "x.ckpt"
        typed.mkdir()
        code, line = common.EXIT_BAD_FILE, (f"{typed} is a folder, not a checkpoint file, and holds no best.ckpt or "
                                            "last.ckpt: pass a .ckpt file minise wrote, or a run folder")
    else:
        typed, code, line = _no_regular_ckpt(tmp_path, kind, REGULAR_HINT)
    argv = [command, str(typed)] + ([str(tmp_path / "x.safetensors")] if command == "export" else [])
    got, out, err = _run(argv, capsys)
    assert (got, err) == (code, f"minise {command}: error: {line}\n") and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ckpt"]   # nothing written (no .safetensors, no PNG)


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"), reason="needs /dev/zero, mkfifo")
@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "broken link"])
def test_train_resume_of_a_ckpt_that_is_no_regular_file_says_what_it_is(tmp_path, capsys, kind):
    # "no checkpoint at zero.ckpt: pass a run folder holding last.ckpt, or a .ckpt file", exit 2, for each
    hint = "pass a .ckpt file minise wrote, or a run folder (its last.ckpt)"
    typed, code, line = _no_regular_ckpt(tmp_path, kind, hint)
    got, out, err = _run(["train", "--resume", str(typed)], capsys)
    assert (got, err) == (code, f"minise train: error: {line}\n") and out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ckpt"]


@pytest.mark.parametrize("name", ["afile.bin", "metrics.csv"])
def test_plot_of_a_file_that_is_not_a_checkpoint_names_it_and_says_what_plot_takes(runs, tmp_path, capsys, name):
    # afile.bin said "nothing to plot in .: no metrics.csv yet"; RUN/metrics.csv was quietly read as RUN
    run = _copy(runs[0], tmp_path)
    if name == "afile.bin":
        (run / name).write_bytes(b"\x00not a checkpoint")
    (run / "curves.png").unlink()
    before = _snapshot(run)
    code, out, err = _run(["plot", str(run / name)], capsys)
    hint = f": pass its folder, {run}" if name == "metrics.csv" else ""
    assert code == common.EXIT_USAGE and out == ""
    assert err == (f"minise plot: error: RUN_DIR {run / name} is a file but not a checkpoint (.ckpt); minise plot "
                   f"takes a run folder, or a .ckpt file in one{hint}\n")
    assert _snapshot(run) == before


def test_plot_of_a_lone_checkpoint_names_the_folder_and_the_file_typed(runs, tmp_path, capsys):
    # said "nothing to plot in .: ..." for `minise plot best.ckpt`, naming neither
    shutil.copy(runs[0] / "best.ckpt", tmp_path / "best.ckpt")
    code, out, err = _run(["plot", str(tmp_path / "best.ckpt")], capsys)
    assert code == common.EXIT_USAGE and out == ""
    assert err == (f"minise plot: error: nothing to plot in {tmp_path} (the folder of {tmp_path / 'best.ckpt'}): no "
                   "metrics.csv yet (and no excitations.npz; --excitations measures them from a checkpoint)\n")


# --- 6. a file where a folder should be, a folder where a file should be ---------------------
@pytest.mark.parametrize("argv", [
    ["train", *TINY, "--epochs", "1", "--dataset", "cifar10"],
    ["train", *TINY, "--epochs", "1", "--dataset", "fashion-mnist"],
    ["train", *TINY, "--epochs", "1"],                      # embedded reads no data folder: refused all the same
    ["eval", "RUN"],
    ["plot", "RUN", "--excitations"],
])
@pytest.mark.parametrize("under", [False, True])
def test_a_data_dir_that_is_a_file_is_one_line_naming_the_flag(runs, tmp_path, capsys, no_download, argv, under):
    # cifar10 said "[Errno 17] File exists: 'FILE'", fashion-mnist "[Errno 20] Not a directory: 'FILE/fashion-mnist'"
    file = tmp_path / "data.bin"
    file.write_bytes(b"not a folder")
    typed = file / "cifar" if under else file
    argv = [str(runs[0]) if word == "RUN" else word for word in argv]
    before = _snapshot(runs[0])
    argv += ["--data-dir", str(typed)] + (["--out", str(tmp_path / "run")] if argv[0] == "train" else [])
    code, out, err = _run(argv, capsys)
    assert code == common.EXIT_USAGE and out == ""
    assert err == f"minise {argv[0]}: error: --data-dir {typed}: {file} is a file, not a folder\n"
    assert not (tmp_path / "run").exists() and file.read_bytes() == b"not a folder"
    assert _snapshot(runs[0]) == before


def test_minise_data_that_is_a_file_is_one_line_naming_the_variable(tmp_path, capsys, monkeypatch):
    file = tmp_path / "data.bin"
    file.write_bytes(b"")
    monkeypatch.setenv("MINISE_DATA", str(file))
    code, out, err = _run(["train", *TINY, "--epochs", "1", "--dataset", "cifar10"], capsys)
    assert (code, out) == (common.EXIT_USAGE, "")
    assert err == f"minise train: error: $MINISE_DATA {file}: {file} is a file, not a folder\n"


@pytest.mark.parametrize("command", ["train", "train under", "eval", "export"])
def test_an_out_inside_a_file_is_one_line_naming_the_flag_and_the_file(runs, tmp_path, capsys, command):
    # train said "[Errno 20] not a folder, so /x/FILE cannot be made in it: '/x/FILE'" without naming --out
    file = tmp_path / "taken"
    file.write_bytes(b"mine")
    out, flag = {"train": (file, "--out"), "train under": (file / "run", "--out"),
                 "eval": (file / "x.png", "--out"), "export": (file / "x.safetensors", "OUT")}[command]
    argv = {"train": ["train", *TINY, "--epochs", "1", "--out", str(out)],
            "eval": ["eval", str(runs[0]), "--out", str(out)],
            "export": ["export", str(runs[0]), str(out)]}[command.split()[0]]
    code, printed, err = _run(argv, capsys)
    assert (code, printed) == (common.EXIT_USAGE, "")
    assert err == f"minise {argv[0]}: error: {flag} {out}: {file} is a file, not a folder\n"
    assert file.read_bytes() == b"mine"


def test_train_names_the_default_out_when_runs_is_a_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("runs").write_bytes(b"")
    code, out, err = _run(["train", *TINY, "--epochs", "1"], capsys)
    assert (code, out) == (common.EXIT_USAGE, "")
    assert err.startswith("minise train: error: --out (default runs/se_resnet20-embedded-"), err
    assert err.endswith("): runs is a file, not a folder\n"), err


def test_export_to_a_folder_names_what_was_typed_not_a_temp_file(runs, tmp_path, capsys):
    # it said "[Errno 21] Is a directory: '.OUT.1234.0a1b2c3d.tmp' -> 'OUT'"
    folder = tmp_path / "weights"
    folder.mkdir()
    code, out, err = _run(["export", str(runs[0]), str(folder)], capsys)
    assert (code, out) == (common.EXIT_USAGE, "")
    assert err == (f"minise export: error: OUT {folder}: {folder} is a folder, not a file; name the .safetensors "
                   f"file to write, e.g. {folder / 'model.safetensors'}\n")
    assert list(folder.iterdir()) == [] and not list(tmp_path.glob(".*.tmp"))


def test_export_onto_a_folder_made_after_the_check_names_out_not_the_temp_file(runs, tmp_path, capsys, monkeypatch):
    from minise.cli import export
    target = tmp_path / "x.safetensors"
    real = export.unwritable

    def check_then_race(*args):
        code = real(*args)
        target.mkdir()              # someone makes a folder there between the check and the write
        return code

    monkeypatch.setattr(export, "unwritable", check_then_race)
    code, out, err = _run(["export", str(runs[0]), str(target)], capsys)
    assert (code, out) == (common.EXIT_USAGE, "")
    assert err == f"minise export: error: OUT {target}: {target}: Is a directory\n"
    assert not list(tmp_path.glob(".*.tmp"))


# --- 7. a flag that only --excitations reads --------------------------------------------------
@pytest.mark.parametrize("flag, value", [("--checkpoint", "last"), ("--checkpoint", "best"), ("--data-dir", "d"),
                                         ("--device", "cpu"), ("--subset", "8")])
def test_plot_refuses_a_flag_only_excitations_reads_without_it(runs, tmp_path, capsys, flag, value):
    # `minise plot RUN --checkpoint last` redrew the curves and said nothing of the flag
    _assert_plot_refused(_copy(runs[0], tmp_path), [flag, value], capsys,
                         f"{flag} {value} needs --excitations: without it, minise plot only redraws the run's "
                         "pictures from the numbers it saved")


def test_plot_classes_without_excitations_needs_numbers_to_redraw(runs, tmp_path, capsys):
    # --classes chooses the classes of excitations.png: redrawn from excitations.npz, else silently ignored
    run = _copy(runs[0], tmp_path)
    _assert_plot_refused(run, ["--classes", "0,1"], capsys,
                         f"--classes 0,1 needs --excitations here: {run} has no excitations.npz to redraw")


def _assert_plot_refused(run, flags, capsys, message):
    """``minise plot RUN FLAGS`` is the one line ``message``, exit 2, and leaves the run folder as it was."""
    before = _snapshot(run)
    code, out, err = _run(["plot", str(run), *flags], capsys)
    assert (code, out) == (common.EXIT_USAGE, "")
    assert err == f"minise plot: error: {message}\n"
    assert _snapshot(run) == before


def test_plot_checkpoint_of_a_ckpt_file_is_refused_not_ignored(runs, tmp_path, capsys):
    run = _copy(runs[0], tmp_path)
    code, out, err = _run(["plot", str(run / "best.ckpt"), "--excitations", "--checkpoint", "last"], capsys)
    assert (code, out) == (common.EXIT_USAGE, "")
    assert err == (f"minise plot: error: --checkpoint last chooses the checkpoint of a run folder, and "
                   f"{run / 'best.ckpt'} is a checkpoint already: pass the run folder, or leave --checkpoint out\n")


# --- 8. the top-level parser ----------------------------------------------------------------
@pytest.mark.parametrize("argv, rest", [(["--version", "extra"], "extra"), (["--version", "train"], "train"),
                                        (["--bogus", "--version"], "--bogus"), (["--vers", "x", "y"], "x y")])
def test_version_with_anything_else_is_a_usage_error(capsys, argv, rest):
    # `minise --version extra` printed the version and exited 0, ignoring "extra"
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == common.EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and err == (f"minise: error: unrecognized arguments: {rest} (--version takes none); "
                                 "see minise --help\n")


@pytest.mark.parametrize("argv", [["--version"], ["--vers"]])
def test_version_alone_prints_it_and_exits_0(capsys, argv):
    assert main(argv) == 0
    assert capsys.readouterr() == (f"minise {ms.__version__}\n", "")


# --- 9. a train flag that would be silently ignored is refused ------------------------------
# Each was accepted and dropped: the run trained with the default (onecycle, SGD) as if it was never typed.
@pytest.mark.parametrize("flags, message", [
    (["--warmup-epochs", "1", "--schedule", "onecycle"],
     "--warmup-epochs 1 has no effect with --schedule onecycle: only the cosine and step schedules have a warmup "
     "(onecycle ramps the learning rate up by itself); drop it or choose --schedule cosine or step"),
    (["--warmup-epochs", "0.5", "--schedule", "none"],
     "--warmup-epochs 0.5 has no effect with --schedule none: only the cosine and step schedules have a warmup; "
     "drop it or choose --schedule cosine or step"),
    (["--momentum", "0.5"],
     "--momentum 0.5 has no effect with --schedule onecycle, which cycles it between 0.95 and 0.85 (as PyTorch's "
     "OneCycleLR does); to set it, choose --schedule cosine, step or none"),
    (["--momentum", "2", "--schedule", "onecycle"],
     "--momentum 2 has no effect with --schedule onecycle, which cycles it between 0.95 and 0.85 (as PyTorch's "
     "OneCycleLR does); to set it, choose --schedule cosine, step or none"),
    (["--optimizer", "adam", "--nesterov"],
     "--nesterov has no effect with --optimizer adam: Adam's betas play that role (as in PyTorch); "
     "it applies with --optimizer sgd"),
    (["--optimizer", "adamw", "--momentum", "0.5", "--no-nesterov"],
     "--momentum 0.5 and --no-nesterov have no effect with --optimizer adamw: Adam's betas play that role "
     "(as in PyTorch); they apply with --optimizer sgd"),
    (["--schedule", "cosine", "--momentum", "0", "--nesterov"],  # the optimiser turned Nesterov off unsaid
     "--nesterov needs --momentum > 0 (as in PyTorch's SGD), got --momentum 0"),
    (["--schedule", "cosine", "--momentum", "-0.5"],  # where it is used, a momentum < 0 is refused, as in PyTorch
     "--momentum must be a finite number >= 0, got -0.5"),
])
def test_train_refuses_a_flag_its_optimizer_or_schedule_would_ignore(flags, message, tmp_path, capsys):
    code, out, err = _run(["train", *TINY, "--out", str(tmp_path / "run"), *flags], capsys)
    assert code == common.EXIT_USAGE and err == f"minise train: error: {message}\n" and out == ""
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("fields, named", [
    (dict(momentum=0.9), "TrainConfig: momentum 0.9 has no effect with schedule onecycle"),
    (dict(optimizer="adam", momentum=0.9, nesterov=True),
     "TrainConfig: momentum 0.9 and nesterov True have no effect with optimizer adam"),
    (dict(schedule="none", warmup_epochs=2), "TrainConfig: warmup_epochs 2 has no effect with schedule none"),
])
def test_train_config_refuses_the_same_values_naming_its_fields(fields, named):
    with pytest.raises(ValueError) as refused:
        TrainConfig(**TINY_CONFIG, **fields).resolved()
    assert str(refused.value).startswith(named + ":") or str(refused.value).startswith(named + ",")


def test_train_config_keeps_defaults_it_does_not_use_and_resolves_twice():
    # cifar10 defaults to cosine with a 1-epoch warmup and momentum 0.9: onecycle or Adam leave them unused, untyped
    for fields in (dict(schedule="onecycle"), dict(optimizer="adamw"), dict(schedule="none")):
        config = TrainConfig(dataset="cifar10", **fields).resolved()
        assert (config.momentum, config.nesterov, config.warmup_epochs) == (0.9, True, 1.0)
        assert config.resolved() == config
    assert TrainConfig(**TINY_CONFIG, warmup_epochs=0, schedule="none").resolved().warmup_epochs == 0


def test_resuming_a_complete_run_names_the_flags_it_ignores(runs, capsys):
    # the note was printed only for an unfinished run; a complete one dropped --model, --lr, --out unsaid
    run = runs[0]
    code, out, err = _run(["train", "--resume", str(run / "last.ckpt"), "--model", "resnet20", "--lr", "0.5",
                           "--out", str(run.parent / "elsewhere")], capsys)
    assert code == 0 and err == "" and out == (
        "note: resuming uses the run's saved settings; ignoring --lr, --model, --out\n"
        f"{run / 'last.ckpt'} already completed 1 of 1 epoch; its learning-rate schedule has ended; "
        "start a new run to train longer\n")
    assert not (run.parent / "elsewhere").exists()


def test_resuming_a_complete_run_with_another_epochs_is_refused_as_for_an_unfinished_one(runs, tmp_path, capsys):
    # a complete 2-epoch run with --epochs 1 printed "already completed 2 of 1 epoch" (the checkpoint's count,
    # the typed total) and exit 0; an unfinished run with another --epochs is refused
    unfinished = runs[1]
    complete = _copy(unfinished, tmp_path)
    assert _run(["train", "--resume", str(complete), "--no-progress"], capsys)[0] == 0
    for run, epochs in ((complete, 1), (complete, 3), (unfinished, 1), (unfinished, 3)):
        code, out, err = _run(["train", "--resume", str(run / "last.ckpt"), "--epochs", str(epochs)], capsys)
        assert code == common.EXIT_USAGE and out == "" and err == (
            "minise train: error: resume: this run's onecycle learning-rate schedule was planned for 2 epochs, "
            f"so it cannot run for {epochs}; start a new run with --epochs {epochs} (changing the length of a run "
            "works with --schedule none)\n")
    code, out, _ = _run(["train", "--resume", str(complete / "last.ckpt"), "--epochs", "2"], capsys)
    assert code == 0 and out.endswith(" already completed 2 of 2 epochs; its learning-rate schedule has ended; "
                                      "start a new run to train longer\n")


def test_resuming_a_run_without_a_schedule_counts_epochs_it_completed(tmp_path, capsys):
    run = tmp_path / "flat"  # without a learning-rate schedule a run's length may change on resume
    with contextlib.redirect_stdout(io.StringIO()):
        Trainer(TrainConfig(epochs=2, schedule="none", out=str(run), **TINY_CONFIG), log_writers=[write_curves]).fit(1)
    code, out, _ = _run(["train", "--resume", str(run / "last.ckpt"), "--epochs", "1"], capsys)
    assert code == 0 and out == (f"{run / 'last.ckpt'} already completed 1 of 1 epoch; "
                                 "pass --epochs N to train longer\n")
    assert _run(["train", "--resume", str(run), "--no-progress"], capsys)[0] == 0  # now 2 of 2
    code, out, _ = _run(["train", "--resume", str(run / "last.ckpt"), "--epochs", "1"], capsys)
    assert code == 0 and out == (f"{run / 'last.ckpt'} already completed 2 epochs, more than --epochs 1; "
                                 "pass --epochs N to train longer\n")  # it said "2 of 1 epoch"


def test_a_saved_runs_whole_config_resolves_again_though_onecycle_leaves_its_momentum_unused(runs):
    # config.json of a default run records momentum 0.9 and nesterov True under onecycle: rebuilding a
    # Trainer from it (tutorial 08 does) must not read them as typed by the user
    saved = ms.load(runs[0] / "last.ckpt")["config"]
    assert (saved["schedule"], saved["momentum"]) == ("onecycle", 0.9)
    assert TrainConfig.from_dict(saved).resolved().to_dict() == saved
    with pytest.raises(ValueError, match="^TrainConfig: momentum 0.9 has no effect with schedule onecycle"):
        TrainConfig.from_dict({k: v for k, v in saved.items() if k != "seed"}).resolved()  # a partial dict: typed


MOVE_IT_AWAY = ("move it away: minise plot draws without it (its rows are not in the checkpoint, so nothing can "
                "write them again)")


@pytest.mark.parametrize("damaged, content, says", [
    ("excitations.npz", b"PK\x03\x04 cut short", "; delete it: minise plot --excitations {run} measures them again"),
    ("grad_health.csv", b"epoch,step,param\n1,x\n",
     " is damaged: its header has no column 'grad_norm' (it has epoch,step,param); " + MOVE_IT_AWAY),
    ("lr.csv", b"", " is damaged: it is empty (no header line); " + MOVE_IT_AWAY),
    ("lr.csv", b"step,epoch,lr\n1,1,0.1\n2,1\n",
     " is damaged: line 3 has 2 values where the header has 3; " + MOVE_IT_AWAY),
    ("metrics.csv", b"epoch,loss\n1,\n",
     " is damaged: on line 2, loss is '', not a number; delete it: minise train --resume {run} writes it again from "
     "the checkpoint"),
], ids=["npz-cut", "grad-health-no-column", "lr-empty", "lr-short-row", "metrics-empty-value"])
def test_plot_reads_every_file_before_it_draws_any(runs, tmp_path, capsys, damaged, content, says):
    # curves.png was redrawn, then the damaged file refused (exit 3): a half-done redraw behind an error; an
    # empty or short lr.csv was taken as it was; the advice for lr.csv and grad_health.csv was "delete it: resume
    # rewrites it", which it does not (their rows are not in the checkpoint), and it read "RUN_DIR"
    run = _copy(runs[0], tmp_path)
    for png in run.glob("*.png"):
        png.unlink()
    (run / damaged).write_bytes(content)
    before = _snapshot(run)
    code, out, err = _run(["plot", str(run)], capsys)
    assert code == common.EXIT_BAD_FILE and out == "", err
    assert f"{run / damaged}" in err and err.rstrip().endswith(says.format(run=run)), err
    assert _snapshot(run) == before and not list(run.glob("*.png"))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("log, damage, says", [
    ("metrics.csv", "dev-zero", "metrics.csv is not a regular file; move it away to resume"),
    ("lr.csv", b"epoch,step,lr\nfirst,1,0.1\n", "lr.csv is damaged: on line 2, epoch is 'first', not an integer; "
     "move it away to resume (its rows are not in the checkpoint: the resumed run starts the file again)"),
    ("lr.csv", b"", "lr.csv is damaged: it is empty (no header line); move it away"),
    ("grad_health.csv", b"step,param\n1,w\n", "grad_health.csv is damaged: its header has no column 'epoch'"),
], ids=["metrics-dev-zero", "lr-bad-epoch", "lr-empty", "grad-health-no-epoch"])
def test_resume_with_a_damaged_log_is_a_bad_file_exit_3_as_in_plot(runs, tmp_path, capsys, log, damage, says):
    # was a ValueError, exit 2 ("bad input"); minise plot says exit 3 ("a bad file") for the same file;
    # logs that are no regular file: test_resume_refuses_a_log_that_is_not_a_regular_file_before_reading_it
    run = _copy(runs[1], tmp_path)
    (run / log).unlink(missing_ok=True)
    if damage == "dev-zero":
        (run / log).symlink_to("/dev/zero")
    else:
        (run / log).write_bytes(damage)
    code, out, err = _run(["train", "--resume", str(run)], capsys)
    assert code == common.EXIT_BAD_FILE and f"{run / log}" in err and says in err, err
    with pytest.raises(CheckpointError, match=re.escape(says)):
        Trainer.from_checkpoint(run)


@pytest.mark.parametrize("extra", [[], ["--excitations"]], ids=["redraw", "excitations"])
def test_plot_of_a_folder_named_ckpt_holding_no_run_is_a_bad_file_as_in_eval(tmp_path, capsys, extra):
    # "nothing to plot in x.ckpt" / "no checkpoint in x.ckpt", exit 2; eval and export say it is a folder, exit 3
    (tmp_path / "x.ckpt").mkdir()
    code, _, err = _run(["plot", str(tmp_path / "x.ckpt"), *extra], capsys)
    assert code == common.EXIT_BAD_FILE and f"{tmp_path / 'x.ckpt'} is a folder, not a checkpoint file" in err, err


def test_an_output_name_longer_than_the_file_system_takes_says_so(runs, tmp_path, capsys):
    # "minise export: error: <name>: File name too long", exit 4, without what to do
    out = tmp_path / ("m" * 250 + ".safetensors")                  # 262 bytes: over 255
    code, _, err = _run(["export", str(runs[0]), str(out)], capsys)
    assert code == common.EXIT_IO and "the name is too long for the file system" in err, err
    assert "choose a shorter one" in err and os.listdir(tmp_path) == []


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("case", ["metrics-damaged", "metrics-missing", "metrics-dev-zero", "lr-damaged"])
def test_resume_of_a_finished_run_says_why_it_rewrites_its_logs_or_refuses(runs, tmp_path, capsys, case):
    # every rewrite said "(it lagged behind)"; a metrics.csv linked to /dev/zero was replaced without a word
    # (an unfinished run refuses it); a damaged lr.csv ended in "lr.csv is damaged", exit 2
    run = _copy(runs[0], tmp_path)
    if case == "metrics-damaged":
        (run / "metrics.csv").write_text("epoch,loss\n1,\n")
    elif case == "metrics-missing":
        (run / "metrics.csv").unlink()
    elif case == "metrics-dev-zero":
        (run / "metrics.csv").unlink()
        (run / "metrics.csv").symlink_to("/dev/zero")
    else:
        (run / "metrics.csv").unlink()
        (run / "lr.csv").write_text("step,epoch,lr\n1,1\n")
    code, out, err = _run(["train", "--resume", str(run)], capsys)
    if case in ("metrics-damaged", "metrics-missing"):
        why = "damaged" if case == "metrics-damaged" else "missing"
        assert code == 0 and f"rewrote {run / 'metrics.csv'} from the checkpoint (it was {why})" in out, out
        assert read_metrics(run / "metrics.csv")[0]["epoch"] == 1
    elif case == "metrics-dev-zero":
        assert code == common.EXIT_BAD_FILE and f"{run / 'metrics.csv'} is not a regular file; move it away" in err
        assert (run / "metrics.csv").is_symlink()
    else:
        assert code == common.EXIT_BAD_FILE and f"{run / 'lr.csv'} is damaged: line 2 has 2 values" in err, err
        assert "move it away: the curves are drawn without it" in err and not (run / "metrics.csv").exists()
