"""What a newcomer meets in the first hour: the words of --help and of errors, the progress bar, the
learning rate the run records per step, the summary's title, the GPU message."""

import contextlib
import io

import numpy as np
import pytest

import minise as ms
from minise import backend, models, train
from minise.cli import main
from minise.optim import SGD, lr_scheduler
from minise.training import TrainConfig, Trainer, builders

FAST = dict(model="resnet20", dataset="embedded", epochs=2, batch_size=8, eval_batch_size=16, progress=False,
            seed=3)


@pytest.fixture
def tiny_data(monkeypatch):
    """32 training and 16 test images of 8x8 pixels: 4 steps per epoch at batch 8."""
    rng = np.random.default_rng(0)
    splits = {split: ms.data.ArrayDataset(rng.integers(0, 255, (n, 3, 8, 8)).astype(np.uint8), np.arange(n) % 10,
                                          [f"class{k}" for k in range(10)])
              for split, n in ((True, 32), (False, 16))}
    monkeypatch.setattr(builders, "load_dataset", lambda config, train=True, download=True: splits[train])
    return splits


def _capture(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


# --- the learning rate, per step -------------------------------------------------------------------------
def test_lr_csv_holds_the_learning_rate_each_step_used(tiny_data, tmp_path):
    result = train.train(TrainConfig(out=str(tmp_path / "run"), schedule="onecycle", lr=0.1, **FAST))
    rows = train.read_lr(result.run_dir)
    steps, epochs, rates = (np.array([r[k] for r in rows]) for k in ("step", "epoch", "lr"))
    # oracle: the same one-cycle schedule stepped by hand, read before each step as the optimiser uses it
    opt = SGD([ms.tensor(np.zeros(1, np.float32), requires_grad=True)], lr=0.1)
    schedule = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=8)
    expected = []
    for _ in range(8):
        expected.append(opt.param_groups[0]["lr"])
        schedule.step()
    assert steps.tolist() == list(range(1, 9)) and epochs.tolist() == [1] * 4 + [2] * 4
    np.testing.assert_array_equal(rates, expected)
    assert rates.max() > 0.09 and rates[-1] < 1e-3  # the peak and the fall the curves panel must show
    # metrics.csv keeps its lr column: the value at each epoch's start
    assert [m["lr"] for m in result.metrics] == [expected[0], expected[4]]


def test_lr_csv_after_ctrl_c_and_resume_is_the_same_file(tiny_data, tmp_path):
    straight = train.train(TrainConfig(out=str(tmp_path / "straight"), schedule="onecycle", **FAST))

    def press_ctrl_c(trainer, epoch, step):
        if epoch == 2 and step == 3:
            raise KeyboardInterrupt

    out = tmp_path / "stopped"
    assert Trainer(TrainConfig(out=str(out), schedule="onecycle", **FAST), callbacks=[press_ctrl_c]).fit().status \
        == "interrupted"
    assert [r["epoch"] for r in train.read_lr(out)] == [1] * 4  # the interrupted epoch's steps are not kept
    train.resume(out)
    assert (out / "lr.csv").read_text() == (straight.run_dir / "lr.csv").read_text()


def test_the_epoch_line_says_which_learning_rates_the_epoch_used(tiny_data, tmp_path, capsys):
    train.train(TrainConfig(out=str(tmp_path / "run"), schedule="onecycle", lr=0.1, **FAST))
    rates = np.array([r["lr"] for r in train.read_lr(tmp_path / "run")])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert f"lr {rates[:4].min():.3g}..{rates[:4].max():.3g}  " in lines[0]
    assert f"lr {rates[4:].min():.3g}..{rates[4:].max():.3g}  " in lines[1]


# --- the progress bar ------------------------------------------------------------------------------------
class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_the_progress_bar_shows_one_speed_and_only_on_a_terminal(tiny_data, tmp_path, monkeypatch, terminal):
    err = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    import tqdm

    class EveryUpdate(tqdm.tqdm):  # draw every update, however fast the steps
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **dict(kwargs, mininterval=0, miniters=1))

    monkeypatch.setattr(tqdm, "tqdm", EveryUpdate)
    train.train(TrainConfig(out=str(tmp_path / "run"), **dict(FAST, progress=True)))
    text = err.getvalue()
    if terminal:
        assert "img/s" in text and "batches" in text
        assert "batch/s" not in text and "it/s" not in text and "img_s" not in text  # no second speed
        assert "batches [" in text and ", loss " in text and ", , " not in text
    else:
        assert text == ""  # a log file gets no carriage-return lines


# --- the words of the command line -----------------------------------------------------------------------
def test_train_help_lists_the_models_and_the_defaults_of_each_dataset():
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(printed.getvalue().split())
    assert all(name in text for name in models.list())
    assert "embedded 2 epochs, batch 32, sgd lr 0.1" in text and "cifar10 30 epochs, batch 128" in text
    assert "DATASET_DEFAULTS" not in text and "models.list()" not in text


@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
    (["--lr", "-1"], "--lr must be a finite number > 0, got -1.0"),
    (["--momentum", "-1"], "--momentum must be a finite number >= 0, got -1.0"),  # the one flag that is wrong
    (["--warmup-epochs", "inf"], "--warmup-epochs must be a finite number >= 0, got inf"),   # was a traceback
    (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),        # was a run "diverged" (exit 1)
    (["--weight-decay", "1e400"], "--weight-decay must be a finite number >= 0, got inf"),
    (["--seed", "-1"], "--seed must be an integer >= 0, got -1"),         # was NumPy's words, no flag
])
def test_train_errors_name_the_flag_the_user_typed(flags, message, tmp_path):
    code, _, err = _capture(["train", *flags, "--out", str(tmp_path / "run")])
    assert code == 2 and f"minise train: error: {message}" in err and "TrainConfig" not in err


def test_an_unknown_model_is_refused_by_its_flag_with_the_choices(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--model", "se_resnet21"])
    err = capsys.readouterr().err
    assert "argument --model: invalid choice: 'se_resnet21'" in err and "se_resnet20" in err


def test_one_epoch_is_one_epoch(tiny_data, tmp_path, capsys):
    train.train(TrainConfig(out=str(tmp_path / "run"), **dict(FAST, epochs=1)))
    assert "  1 epoch x 4 steps" in capsys.readouterr().out


def test_summary_says_whether_the_model_has_se_blocks(capsys):
    assert main(["summary", "se_resnet20"]) == 0
    assert capsys.readouterr().out.startswith("se_resnet20 (ResNet with 9 SE blocks) on input (1, 3, 32, 32)")
    assert main(["summary", "resnet20", "--depth", "1"]) == 0
    assert capsys.readouterr().out.startswith("resnet20 (ResNet, no SE blocks) on input")


# --- the GPU message -------------------------------------------------------------------------------------
@pytest.mark.parametrize("driver", [False, True])
def test_a_cuda_device_without_cupy_says_which_of_gpu_and_cupy_is_missing(monkeypatch, driver):
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_error", ImportError("No module named 'cupy'"))
    monkeypatch.setattr(backend, "_cuda_driver_found", lambda: driver)
    with pytest.raises(backend.DeviceError) as info:
        ms.tensor([1.0]).to("cuda")
    message = str(info.value)
    if driver:
        assert "has a CUDA driver, but CuPy could not be imported" in message and "minise[gpu]" in message
    else:
        assert "needs an NVIDIA GPU with its CUDA driver, and this machine has none" in message
        assert "minise[gpu]" not in message  # installing CuPy would not help


# --- one checkpoint rule for eval and plot ---------------------------------------------------------------
@pytest.fixture(scope="module")
def se_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("first-hour") / "run"
    assert _capture(["train", "--model", "se_resnet20", "--subset", "32", "--batch-size", "16", "--epochs", "1",
                     "--no-progress", "--out", str(out)])[0] == 0
    return out


def test_eval_and_plot_read_a_folders_best_ckpt_and_their_errors_say_so(se_run, tmp_path):
    only_best = tmp_path / "only-best"
    only_best.mkdir()
    (only_best / "best.ckpt").write_bytes((se_run / "best.ckpt").read_bytes())
    assert _capture(["eval", str(only_best)])[0] == 0
    assert _capture(["plot", "--excitations", str(only_best)])[0] == 0
    rule = "pass a .ckpt file, or a run folder (its best.ckpt, else its last.ckpt)"
    for argv in (["eval", str(tmp_path / "nope" / "best.ckpt")], ["plot", "--excitations", str(tmp_path)]):
        code, _, err = _capture(argv)
        assert code == 2 and rule in err and "holding last.ckpt" not in err


def test_plot_excitations_draws_the_excitations_and_leaves_curves_png_alone(se_run):
    before = (se_run / "curves.png").read_bytes(), (se_run / "curves.png").stat().st_mtime_ns
    code, out, _ = _capture(["plot", "--excitations", str(se_run)])
    assert code == 0 and "curves.png" not in out and "excitations.png" in out
    assert ((se_run / "curves.png").read_bytes(), (se_run / "curves.png").stat().st_mtime_ns) == before
    assert "class spread" in out  # tutorial 08's statistic, under its name
