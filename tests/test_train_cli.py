"""`minise train | eval | plot` end to end, through ``minise.cli.main``, on the real embedded dataset
(a 32-image subset, one or two short epochs)."""

import contextlib
import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

import minise as ms
from minise import functional as F
from minise import train
from minise.cli import main
from minise.training import trainer as trainer_module

TINY = ["--model", "se_resnet20", "--dataset", "embedded", "--subset", "32", "--batch-size", "16",
        "--eval-batch-size", "32", "--no-progress"]
PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    return Path(path).read_bytes()[:8] == PNG


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One finished 1-epoch run and what it printed, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("cli") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["train", *TINY, "--epochs", "1", "--out", str(out), "--grad-health", "1"]) == 0
    return out, printed.getvalue()


@pytest.fixture
def run_dir(finished_run):
    return finished_run[0]


def test_minise_train_writes_a_complete_run_folder(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"] == "se_resnet20" and config["epochs"] == 1 and config["subset"] == 32
    with open(run_dir / "metrics.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc",
                                        "time_s", "images_per_s")
    assert len(rows) == 1 and rows[0]["epoch"] == "1"
    assert 0 <= float(rows[0]["test_acc"]) <= 1 and float(rows[0]["train_loss"]) > 0
    for name in ("last.ckpt", "best.ckpt"):
        state = ms.load(str(run_dir / name))
        assert state["epoch"] == 1 and state["global_step"] == 2  # 32 images / batch 16
        assert state["best_acc"] == float(rows[0]["test_acc"])
    assert _is_png(run_dir / "curves.png")
    assert not [p for p in os.listdir(run_dir) if ".tmp" in p]  # no temporary file left behind


def test_minise_train_prints_the_epoch_summary_and_next_steps(finished_run):
    out, printed = finished_run
    assert "se_resnet20" in printed and "32 train / 32 test images" in printed
    assert "epoch 1/1  train loss" in printed and "test loss" in printed and "img/s" in printed
    assert f"minise eval {out / 'best.ckpt'}" in printed


def test_minise_train_will_not_overwrite_a_run(run_dir, capsys):
    assert main(["train", *TINY, "--epochs", "1", "--out", str(run_dir)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_ctrl_c_exits_cleanly_and_minise_train_resume_finishes_the_run(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    calls = []
    evaluate = train.evaluate

    def evaluate_then_ctrl_c(*args, **kwargs):  # Ctrl-C while epoch 2 is being evaluated
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "evaluate", evaluate_then_ctrl_c)
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 130
    printed = capsys.readouterr().out
    assert "at the end of epoch 1" in printed and f"minise train --resume {out / 'last.ckpt'}" in printed
    assert ms.load(str(out / "last.ckpt"))["epoch"] == 1
    assert len(train.read_metrics(out)) == 1

    monkeypatch.setattr(trainer_module, "evaluate", evaluate)
    assert main(["train", "--resume", str(out / "last.ckpt"), "--no-progress"]) == 0
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert [row["epoch"] for row in train.read_metrics(out)] == [1, 2]
    assert ms.load(str(out / "last.ckpt"))["epoch"] == 2
    # --resume with --out names the same run; a finished run says so and changes nothing
    assert main(["train", "--resume", "--out", str(out)]) == 0
    assert "already completed 2 of 2 epochs" in capsys.readouterr().out


def test_a_nan_loss_exits_non_zero_naming_epoch_and_step(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    cross_entropy = F.cross_entropy

    def nan_in_training(logits, labels):
        loss = cross_entropy(logits, labels)
        return loss * float("nan") if ms.is_grad_enabled() else loss

    monkeypatch.setattr(F, "cross_entropy", nan_in_training)
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "loss became nan at epoch 1, step 1" in err
    assert ms.load(str(out / "last.ckpt"))["epoch"] == 0  # the initial state, never a NaN one


def test_minise_eval_reports_the_checkpoint_accuracy_and_plots_the_confusion_matrix(run_dir, capsys):
    assert main(["eval", str(run_dir / "best.ckpt")]) == 0
    printed = capsys.readouterr().out
    acc = train.read_metrics(run_dir)[0]["test_acc"]
    assert f"accuracy {100 * acc:.2f}%" in printed and "32 images" in printed
    assert "confusion matrix" in printed and "checkerboard" in printed
    assert _is_png(run_dir / "best-confusion.png")


def test_minise_eval_writes_the_plot_where_out_says(run_dir, tmp_path):
    assert main(["eval", str(run_dir), "--out", str(tmp_path / "cm.png")]) == 0
    assert _is_png(tmp_path / "cm.png")


def test_minise_train_grad_health_logs_every_step_and_minise_plot_draws_it(run_dir, capsys):
    with open(run_dir / "grad_health.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    model, _ = train.load_model(run_dir / "last.ckpt")
    names = [name for name, _ in model.named_parameters()]
    assert [(r["epoch"], r["step"], r["param"]) for r in rows] == [("1", str(s), n) for s in (1, 2) for n in names]
    (run_dir / "curves.png").unlink()
    assert main(["plot", str(run_dir)]) == 0
    assert _is_png(run_dir / "curves.png") and _is_png(run_dir / "grad_health.png")
    printed = capsys.readouterr().out
    assert "curves.png" in printed and "grad_health.png" in printed


def test_minise_plot_excitations_saves_per_class_numbers_and_the_figure(run_dir, capsys):
    assert main(["plot", "--excitations", str(run_dir), "--classes", "0,5,8"]) == 0
    printed = capsys.readouterr().out
    assert "layer3.2.se" in printed and "excitations.png" in printed
    assert _is_png(run_dir / "excitations.png")
    exc = train.Excitations.load(run_dir / "excitations.npz")
    assert exc.counts.sum() == 32 and len(exc.blocks) == 9
    model, _ = train.load_model(run_dir / "best.ckpt")
    assert exc.means["layer1.0.se"].shape == (10, 16) and exc.means["layer3.2.se"].shape == (10, 64)
    for name in exc.blocks:
        seen = exc.counts > 0
        assert np.all((exc.means[name][seen] > 0) & (exc.means[name][seen] < 1))


def test_minise_plot_excitations_checks_classes_before_measuring_anything(run_dir, capsys, monkeypatch):
    from minise.cli import plot as plot_cli

    def measured(*args, **kwargs):
        raise AssertionError("the excitations were measured before --classes was checked")
    monkeypatch.setattr(plot_cli, "excitations_per_class", measured)
    before = (run_dir / "excitations.npz").read_bytes() if (run_dir / "excitations.npz").exists() else None
    assert main(["plot", "--excitations", str(run_dir), "--classes", "1,99"]) == 2
    assert capsys.readouterr().err.strip() == "minise plot: error: --classes [99] out of range 0..9"
    after = (run_dir / "excitations.npz").read_bytes() if (run_dir / "excitations.npz").exists() else None
    assert after == before


def test_minise_plot_of_a_missing_folder_is_an_error(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    assert "no run folder" in capsys.readouterr().err


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_minise_train_reads_fashion_mnist_from_the_debian_folder(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "fashion-mnist", "--data-dir", str(FASHION), "--subset", "16",
                 "--batch-size", "8", "--epochs", "1", "--no-progress", "--out", str(out)]) == 0
    state = ms.load(str(out / "last.ckpt"))
    assert state["model"]["conv1.weight"].shape == (16, 1, 3, 3)  # one input channel
    assert state["classes"][0] == "T-shirt/top" and len(state["classes"]) == 10


def test_minise_train_help_gives_the_momentum_each_default_schedule_uses(capsys):
    # it said "momentum 0.9 nesterov" for the onecycle defaults, which cycle the momentum between 0.95 and 0.85
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    lines = capsys.readouterr().out.splitlines()
    embedded = next(line for line in lines if line.startswith("  embedded "))
    cifar10 = next(line for line in lines if line.startswith("  cifar10 "))
    assert "sgd lr 0.1 momentum 0.95-0.85 (cycled by onecycle) nesterov," in embedded
    assert "momentum 0.9 " not in embedded
    assert "sgd lr 0.1 momentum 0.9 nesterov," in cifar10 and "schedule cosine (warmup 1 epoch)" in cifar10
    assert "  with --schedule cosine, step or none instead of onecycle: momentum 0.9 (--momentum sets it)" in lines
