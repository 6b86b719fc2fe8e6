"""The training loop: resume is bit-identical, Ctrl-C and NaN keep the run folder good,
gradient health and the excitation analysis compute what they say.

The loop tests train SE-ResNet-20 on tiny 8x8 images (``tiny_data`` replaces
the dataset loader) so each run takes a second; tests/test_train_cli.py runs
the real command on the real embedded dataset.
"""

import csv
import math

import numpy as np
import pytest

import minise as ms
from minise import backend, data, models, train
from minise.train import NonFiniteLossError, TrainConfig, Trainer
from minise.training import builders

FAST = dict(model="se_resnet20", dataset="embedded", epochs=2, batch_size=8, subset=None, eval_batch_size=16,
            progress=False, seed=3)


def _tiny_split(n, split):
    """n random 8x8 RGB images; the class sets the mean brightness of one channel, so it is learnable."""
    rng = np.random.default_rng(100 + split)
    labels = np.arange(n) % 10
    images = rng.integers(0, 150, size=(n, 3, 8, 8))
    images[np.arange(n), labels % 3] += (labels * 10)[:, None, None]
    return data.ArrayDataset(images.astype(np.uint8), labels, [f"class{k}" for k in range(10)])


@pytest.fixture
def tiny_data(monkeypatch):
    splits = {True: _tiny_split(32, 0), False: _tiny_split(24, 1)}
    monkeypatch.setattr(builders, "load_dataset", lambda config, train=True, download=True: splits[train])
    return splits


def _numbers(metrics):
    """The metrics that must be reproducible (not the wall-clock columns)."""
    return [{k: v for k, v in row.items() if k not in ("time_s", "images_per_s")} for row in metrics]


def _weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.fixture
def straight_run(tiny_data, tmp_path):
    """An uninterrupted 2-epoch run; also keeps a copy of its epoch-1 checkpoint."""
    saved = {}

    def keep_epoch1(trainer, epoch, step):
        if epoch == 2 and step == 1:  # last.ckpt on disk is still the end of epoch 1
            saved["epoch1"] = ms.load(str(trainer.run_dir / "last.ckpt"))

    result = train.train(TrainConfig(out=str(tmp_path / "straight"), **FAST), callbacks=[keep_epoch1])
    return result, _weights(result.model), saved["epoch1"]


def test_config_fills_dataset_defaults_and_rejects_unknown_choices():
    cifar = TrainConfig(dataset="cifar10").resolved()
    assert (cifar.optimizer, cifar.lr, cifar.momentum, cifar.weight_decay, cifar.batch_size, cifar.schedule) == (
        "sgd", 0.1, 0.9, 5e-4, 128, "cosine")
    adam = TrainConfig(dataset="cifar10", optimizer="adam").resolved()
    assert adam.lr == 1e-3 and adam.weight_decay == 0.0
    assert TrainConfig(dataset="cifar10", lr=0.05, epochs=3).resolved().lr == 0.05
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        TrainConfig(optimizer="rmsprop").resolved()
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        TrainConfig(dataset="mnist").resolved()
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        TrainConfig(batch_size=0).resolved()


@pytest.mark.parametrize("subset, note", [
    (20_000, "note: --subset 20000 is more than the embedded dataset's 10000 training images and its 2000 test "
             "images: all of them are used\n"),
    (5_000, "note: --subset 5000 is more than the embedded dataset's 2000 test images: all of them are used\n"),
    (2_000, ""),        # exactly the test split: nothing is missing, nothing to say
])
def test_a_subset_larger_than_the_dataset_says_all_images_are_used(subset, note, tmp_path, capsys):
    # the real embedded dataset: SyntheticShapes' 10000 training and 2000 test images
    trainer = Trainer(TrainConfig(**{**FAST, "subset": subset, "out": str(tmp_path / "run")}))
    assert (len(trainer.train_set), len(trainer.test_set)) == (min(subset, 10_000), min(subset, 2_000))
    assert capsys.readouterr().err == note


def test_training_twice_with_the_same_seed_gives_identical_numbers(tiny_data, tmp_path, straight_run):
    result, weights, _ = straight_run
    again = train.train(TrainConfig(out=str(tmp_path / "again"), **FAST))
    assert _numbers(again.metrics) == _numbers(result.metrics)
    _assert_same_weights(_weights(again.model), weights)


def test_resume_after_one_epoch_is_bit_identical_to_an_uninterrupted_run(tiny_data, tmp_path, straight_run):
    result, weights, _ = straight_run
    first = Trainer(TrainConfig(out=str(tmp_path / "split"), **FAST))
    assert first.fit(epochs=1).epochs_completed == 1
    del first
    ms.manual_seed(12345)  # a resumed process starts with other random state; the checkpoint restores it
    resumed = Trainer.from_checkpoint(tmp_path / "split" / "last.ckpt")
    assert resumed.epoch == 1 and resumed.global_step == 4
    final = resumed.fit()
    assert final.status == "finished" and final.epochs_completed == 2
    assert _numbers(final.metrics) == _numbers(result.metrics)
    assert _numbers(train.read_metrics(tmp_path / "split")) == _numbers(train.read_metrics(result.run_dir))
    _assert_same_weights(_weights(final.model), weights)
    ckpt = ms.load(str(tmp_path / "split" / "last.ckpt"))
    ref = ms.load(str(result.run_dir / "last.ckpt"))
    for key in ref["optimizer"]["state"]:
        np.testing.assert_array_equal(ckpt["optimizer"]["state"][key]["momentum_buffer"],
                                      ref["optimizer"]["state"][key]["momentum_buffer"])
    assert ckpt["scheduler"] == ref["scheduler"] and ckpt["rng"] == ref["rng"]


def test_ctrl_c_mid_epoch_saves_the_last_completed_epoch_and_resume_is_bit_identical(
        tiny_data, tmp_path, straight_run, capsys):
    result, weights, epoch1 = straight_run

    def press_ctrl_c(trainer, epoch, step):
        if epoch == 2 and step == 2:
            raise KeyboardInterrupt

    out = tmp_path / "interrupted"
    stopped = Trainer(TrainConfig(out=str(out), **FAST), callbacks=[press_ctrl_c]).fit()
    assert stopped.status == "interrupted" and stopped.epochs_completed == 1
    message = capsys.readouterr().out
    assert "interrupted" in message and f"minise train --resume {out / 'last.ckpt'}" in message
    saved = ms.load(str(out / "last.ckpt"))
    assert saved["epoch"] == 1 and saved["global_step"] == 4
    for key, value in epoch1["model"].items():  # the epoch-1 state, not the half-trained one
        np.testing.assert_array_equal(saved["model"][key], value, err_msg=key)
    assert len(train.read_metrics(out)) == 1
    final = train.resume(out)
    assert _numbers(final.metrics) == _numbers(result.metrics)
    _assert_same_weights(_weights(final.model), weights)


def test_ctrl_c_in_the_first_epoch_saves_the_initial_weights(tiny_data, tmp_path):
    def press_ctrl_c(trainer, epoch, step):
        raise KeyboardInterrupt

    out = tmp_path / "early"
    trainer = Trainer(TrainConfig(out=str(out), **FAST), callbacks=[press_ctrl_c])
    initial = _weights(trainer.model)
    assert trainer.fit().status == "interrupted"
    saved = ms.load(str(out / "last.ckpt"))
    assert saved["epoch"] == 0 and saved["metrics"] == []
    for key, value in initial.items():
        np.testing.assert_array_equal(saved["model"][key], value, err_msg=key)


def test_a_nan_loss_names_epoch_and_step_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path, straight_run):
    _, _, epoch1 = straight_run
    from minise import functional as F

    training_calls = []

    def loss_that_breaks(logits, labels):
        loss = F.cross_entropy(logits, labels)
        if ms.is_grad_enabled():  # a training step (evaluation runs under no_grad)
            training_calls.append(1)
            if len(training_calls) == 7:  # 4 steps per epoch: epoch 2, step 3
                return loss * float("nan")
        return loss

    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError) as info:
        Trainer(TrainConfig(out=str(out), **FAST), loss_fn=loss_that_breaks).fit()
    err = info.value
    assert (err.epoch, err.step, err.global_step) == (2, 3, 7)
    assert math.isnan(err.value)
    assert "epoch 2, step 3" in str(err) and f"{out / 'last.ckpt'} still holds the end of epoch 1" in str(err)
    saved = ms.load(str(out / "last.ckpt"))
    assert saved["epoch"] == 1
    for key, value in epoch1["model"].items():
        np.testing.assert_array_equal(saved["model"][key], value, err_msg=key)
    assert len(train.read_metrics(out)) == 1


def test_grad_health_rows_have_the_documented_columns_and_true_update_ratios(tiny_data, tmp_path):
    config = TrainConfig(out=str(tmp_path / "health"), grad_health=2, optimizer="sgd", momentum=0.0,
                         weight_decay=0.0, schedule="none", lr=0.05, **{**FAST, "epochs": 1})
    result = train.train(config)
    with open(result.run_dir / "grad_health.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == ("epoch", "step", "param", "grad_norm", "update_ratio")
    names = [name for name, _ in result.model.named_parameters()]
    assert [int(r["step"]) for r in rows] == [2] * len(names) + [4] * len(names)
    assert [r["param"] for r in rows[: len(names)]] == names
    # Plain SGD: the update is lr * grad, so update_ratio == lr * |grad| / |w before| (GradHealthRecord's
    # definition), with w before = w after + lr * grad. Step 4 is the last step, and its gradients are
    # still in .grad; the update is measured as a float32 difference of weights, hence the tolerance.
    final = dict(result.model.named_parameters())
    for row in rows[len(names):]:
        p = final[row["param"]]
        grad = p.grad.numpy().astype(np.float64)
        np.testing.assert_allclose(float(row["grad_norm"]), np.linalg.norm(grad), rtol=1e-6, err_msg=row["param"])
        before = p.numpy().astype(np.float64) + 0.05 * grad
        np.testing.assert_allclose(float(row["update_ratio"]), 0.05 * np.linalg.norm(grad) / np.linalg.norm(before),
                                   rtol=2e-3, atol=1e-7, err_msg=row["param"])
        assert float(row["grad_norm"]) > 0


def test_evaluate_counts_accuracy_and_confusion_like_a_plain_loop(tiny_data):
    model = models.get("resnet20").eval()
    dataset = tiny_data[False]
    loader = train.make_test_loader(dataset, [0.5] * 3, [0.25] * 3, batch_size=5)
    result = train.evaluate(model, loader, num_classes=10)
    logits = model(data.Normalize([0.5] * 3, [0.25] * 3)(dataset.images)).numpy()
    predicted = logits.argmax(axis=1)
    expected = np.zeros((10, 10), dtype=np.int64)
    for true, guess in zip(dataset.labels, predicted):
        expected[true, guess] += 1
    np.testing.assert_array_equal(result["confusion"], expected)
    assert result["acc"] == np.mean(predicted == dataset.labels)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(result["loss"], -log_probs[np.arange(len(predicted)), dataset.labels].mean(),
                               rtol=1e-5)


def test_excitations_per_class_are_the_mean_gate_over_each_class_images(tiny_data):
    model = models.get("se_resnet20")
    dataset = tiny_data[False]
    loader = train.make_test_loader(dataset, [0.5] * 3, [0.25] * 3, batch_size=7)
    exc = train.excitations_per_class(model, loader)
    assert model.training  # the mode it had is restored
    assert exc.blocks == [f"layer{s}.{b}.se" for s in (1, 2, 3) for b in range(3)]
    assert exc.stage_blocks() == ["layer1.2.se", "layer2.2.se", "layer3.2.se"]
    np.testing.assert_array_equal(exc.counts, np.bincount(dataset.labels, minlength=10))
    model.eval()
    with ms.no_grad():
        model(data.Normalize([0.5] * 3, [0.25] * 3)(dataset.images))  # every image at once
    modules = dict(model.named_modules())
    for name in exc.blocks:
        gates = modules[name].last_excitation
        assert exc.means[name].shape == (10, modules[name].channels)
        for k in range(10):
            np.testing.assert_allclose(exc.means[name][k], gates[dataset.labels == k].mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(exc.mean_all(name), gates.mean(axis=0), rtol=1e-5)
        assert np.all((exc.means[name] > 0) & (exc.means[name] < 1))


def test_excitations_round_trip_through_npz_without_pickles(tiny_data, tmp_path):
    loader = train.make_test_loader(tiny_data[False], [0.5] * 3, [0.25] * 3, batch_size=12)
    exc = train.excitations_per_class(models.get("se_resnet20"), loader)
    path = exc.save(tmp_path / "excitations.npz")
    back = train.Excitations.load(path)
    assert back.blocks == exc.blocks and back.classes == exc.classes
    np.testing.assert_array_equal(back.counts, exc.counts)
    for name in exc.blocks:
        np.testing.assert_array_equal(back.means[name], exc.means[name])
    with np.load(path, allow_pickle=False) as npz:
        assert "mean:layer3.2.se" in npz.files


def test_excitations_of_a_model_without_se_blocks_is_an_error(tiny_data):
    loader = train.make_test_loader(tiny_data[False], [0.5] * 3, [0.25] * 3)
    with pytest.raises(ValueError, match="no nn.SEBlock"):
        train.excitations_per_class(models.get("resnet20"), loader)


def test_a_new_run_never_overwrites_an_existing_run_folder(tiny_data, tmp_path):
    out = tmp_path / "run"
    train.train(TrainConfig(out=str(out), **{**FAST, "epochs": 1}))
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(TrainConfig(out=str(out), **FAST))


def test_resume_refuses_to_change_settings_that_change_the_numbers(tiny_data, tmp_path):
    out = tmp_path / "run"
    train.train(TrainConfig(out=str(out), **{**FAST, "epochs": 1}))
    with pytest.raises(ValueError, match="cannot change lr"):
        Trainer.from_checkpoint(out, lr=0.5)
    with pytest.raises(ValueError, match="onecycle learning-rate schedule was planned for 1 epoch,"):
        Trainer.from_checkpoint(out, epochs=3)
    assert Trainer.from_checkpoint(out, device="cpu", grad_health=5).config.grad_health == 5


def test_a_run_without_a_schedule_can_be_extended_on_resume(tiny_data, tmp_path):
    out = tmp_path / "run"
    train.train(TrainConfig(out=str(out), schedule="none", **{**FAST, "epochs": 1}))
    longer = train.resume(out, epochs=2)
    assert longer.epochs_completed == 2 and [m["epoch"] for m in longer.metrics] == [1, 2]


def test_load_model_rebuilds_the_checkpoint_model_in_eval_mode(tiny_data, tmp_path):
    result = train.train(TrainConfig(out=str(tmp_path / "run"), **{**FAST, "epochs": 1}))
    model, state = train.load_model(result.run_dir / "best.ckpt")
    assert not model.training and state["epoch"] == 1 and state["classes"] == tiny_data[True].classes
    _assert_same_weights(_weights(model), _weights(result.model))


def test_checkpoints_hold_every_documented_field(tiny_data, tmp_path):
    result = train.train(TrainConfig(out=str(tmp_path / "run"), **{**FAST, "epochs": 1}))
    state = ms.load(str(result.run_dir / "last.ckpt"))
    for key in ("model", "optimizer", "scheduler", "epoch", "global_step", "best_acc", "best_epoch", "rng",
                "config", "metrics", "classes", "normalize"):
        assert key in state, key
    assert state["rng"]["minise"] == backend.get_rng_state()
    assert state["config"]["model"] == "se_resnet20" and state["metrics"] == result.metrics


@pytest.mark.parametrize("warmup, says", [(1, "schedule cosine (warmup 1 epoch)"), (2, "(warmup 2 epochs)"),
                                          (0.5, "(warmup 0.5 epochs)")])
def test_the_run_header_counts_warmup_epochs_in_english(warmup, says, tiny_data, tmp_path, capsys):
    config = TrainConfig(out=str(tmp_path / "run"), **{**FAST, "epochs": 3}, schedule="cosine", warmup_epochs=warmup)
    Trainer(config)._print_header()
    assert says in capsys.readouterr().out


def test_the_confusion_table_keeps_its_accuracy_column_aligned_at_100_percent():
    from minise.training.evaluate import format_confusion

    matrix = np.array([[5, 0, 0], [1, 3, 1], [0, 0, 4]])
    lines = format_confusion(matrix, ["cat", "dog", "bird"]).splitlines()[2:]
    assert [line[-7:] for line in lines] == [" 100.0%", "  60.0%", " 100.0%"]
    assert len({len(line) for line in lines}) == 1
