"""ms.summary and `minise summary`: totals against closed forms counted here by hand
from the architecture (He et al.'s CIFAR ResNet, the SE paper's eq. 5).
"""

import numpy as np
import pytest

import minise as ms
from minise import models, nn
from minise.cli import main


def _resnet_macs(n, size=32, in_channels=3, num_classes=10, se_r=None):
    """Conv MACs = H_out * W_out * C_out * C_in * 3 * 3 per conv, plus the classifier (and SE's two FCs)."""
    total = size * size * 16 * in_channels * 9
    in_planes = 16
    for stage, planes in enumerate((16, 32, 64)):
        for j in range(n):
            if stage > 0 and j == 0:
                size //= 2
            hw = size * size
            total += hw * planes * in_planes * 9 + hw * planes * planes * 9
            if se_r is not None:
                total += 2 * planes * max(1, planes // se_r)
            in_planes = planes
    return total + 64 * num_classes


def test_resnet20_totals_match_the_closed_form_about_40_5_million_macs():
    s = ms.summary(models.resnet20())
    assert s.total_params == 269_722 == s.trainable_params
    assert s.total_macs == _resnet_macs(3) == 40_551_040
    assert s.output_shape == (1, 10)
    assert s.se is None


def test_se_resnet20_adds_2373_parameters_and_the_papers_formula_agrees():
    s = ms.summary(models.se_resnet20())
    assert s.total_params == 272_095
    assert s.total_macs == _resnet_macs(3, se_r=16)
    se = s.se
    assert se["params"] == 272_095 - 269_722 == 2_373
    assert se["formula_weights"] == 2 / 16 * 3 * (16 ** 2 + 32 ** 2 + 64 ** 2) == 2_016
    assert se["formula_params"] == 2_373 and se["agrees"]
    assert "agrees with the blocks' count" in str(s)


def test_the_formula_and_the_count_disagree_when_r_does_not_divide_the_channels():
    s = ms.summary(models.se_resnet20(reduction=32)).se  # C=16, r=32: the bottleneck rounds up to 1 unit
    assert s["params"] == 3 * (2 * 16 * 1 + 1 + 16) + 3 * (2 * 32 + 1 + 32) + 3 * (2 * 64 * 2 + 2 + 64)
    assert s["formula_params"] != s["params"] and not s["agrees"]


def test_macs_scale_with_the_batch_and_the_image_size():
    s = ms.summary(models.resnet20(in_channels=1), input_shape=(2, 1, 28, 28))
    assert s.total_macs == 2 * _resnet_macs(3, size=28, in_channels=1)
    assert s.macs_per_sample == _resnet_macs(3, size=28, in_channels=1)


def test_rows_give_each_modules_path_output_shape_params_and_macs():
    s = ms.summary(models.se_resnet20())
    rows = {r["name"]: r for r in s.rows}
    fc2 = rows["layer2.1.se.fc2"]
    assert (fc2["type"], fc2["output_shape"], fc2["params"], fc2["macs"]) == ("Linear", (1, 32), 2 * 32 + 32, 64)
    conv = rows["layer3.0.conv1"]
    assert conv["output_shape"] == (1, 64, 8, 8) and conv["macs"] == 64 * 32 * 9 * 64
    block = rows["layer3.0"]  # a container sums what is inside it
    assert block["params"] == sum(r["params"] for k, r in rows.items() if k.startswith("layer3.0.") and
                                  k.count(".") == 2)
    assert block["macs"] == sum(r["macs"] for k, r in rows.items() if k.startswith("layer3.0.") and k.count(".") == 2)
    table = str(s)
    assert "layer2.1.se.fc2" in table and "272,095" in table and "40,553,056" in table


def test_max_depth_hides_deeper_rows():
    s = ms.summary(models.resnet20(), max_depth=1)
    lines = str(s).splitlines()
    assert any(line.startswith("layer1 ") for line in lines)
    assert not any("layer1.0" in line for line in lines)


def test_summary_leaves_modes_and_running_statistics_as_they_were():
    model = models.se_resnet20()
    model.layer1.train(False)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    ms.summary(model)
    assert [m.training for m in model.modules()] == modes
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    assert all(not m._forward_hooks for m in model.modules())


def test_se_inception_overhead_matches_the_formula():
    s = ms.summary(models.se_inception_small())
    plain = models.inception_small().num_parameters()
    assert s.se["params"] == s.total_params - plain
    assert s.se["agrees"]
    assert s.se["formula_weights"] == 2 / 16 * (64 ** 2 + 128 ** 2 + 192 ** 2)


def test_bad_input_shapes_are_rejected():
    with pytest.raises(ValueError, match="summary: input_shape must be positive sizes"):
        ms.summary(nn.Linear(2, 2), input_shape=(0, 2))


def test_cli_summary_prints_the_table_and_the_se_check(capsys):
    assert main(["summary", "se_resnet20"]) == 0
    out = capsys.readouterr().out
    assert "layer3.2.se.fc1" in out and "272,095" in out and "2,373" in out and "agrees" in out


def test_cli_summary_takes_the_input_shape_and_reduction(capsys):
    assert main(["summary", "se_resnet20", "--input-shape", "1,1,28,28", "--reduction", "8", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    expected = models.se_resnet20(reduction=8, in_channels=1).num_parameters()
    assert f"{expected:,}" in out and "r=8" in out and "layer1.0" not in out
    assert f"{_resnet_macs(3, size=28, in_channels=1, se_r=8):,}" in out


def test_cli_summary_rejects_unknown_models_and_bad_shapes(capsys):
    assert main(["summary", "resnet21"]) == 2
    assert "unknown model 'resnet21'" in capsys.readouterr().err
    assert main(["summary", "resnet20", "--input-shape", "1,3,32"]) == 2
    assert "N,C,H,W" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["summary", "resnet21"], "minise summary: error: unknown model 'resnet21'"),
    (["summary", "resnet20", "--input", "nan"], "minise summary: error: --input must be CxHxW like 3x224x224"),
    (["summary", "resnet20", "--depth", "-1"], "minise summary: error: --depth must be an integer, 0 or more"),
    (["summary", "resnet20", "--num-classes", "0"], "minise summary: error: --num-classes must be a positive integer"),
])
def test_cli_summary_errors_are_one_line_like_every_command(capsys, argv, message):
    # they lacked "error:" and --depth -1 printed nothing with exit 0
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


@pytest.mark.parametrize("argv, line", [
    (["--reduction", "-1"], "--reduction must be a positive integer, got -1"),
    (["--reduction", "0"], "--reduction must be a positive integer, got 0"),
    (["--input-shape", "1,3,0,32"], "--input-shape must be N,C,H,W of positive sizes, got '1,3,0,32'"),
    (["--input-shape", "1,-3,32,32"], "--input-shape must be N,C,H,W of positive sizes, got '1,-3,32,32'"),
    (["--input", "0x32x32"], "--input must be CxHxW of positive sizes, got '0x32x32'"),
])
def test_cli_summary_names_the_flag_not_the_python_parameter(capsys, argv, line):
    # they said "se_resnet: reduction must be a positive int, got -1", "summary: input_shape must be ..."
    # and "ResNet: in_channels must be a positive int, got -3"
    assert main(["summary", "se_resnet20", *argv]) == 2
    assert capsys.readouterr() == ("", f"minise summary: error: {line}\n")
