"""The backward tracer, the forward tracer, the step debugger, anomaly detection, gradient health.

Oracles: gradients derived by hand for a small graph, the gradients ``backward()``
itself leaves in ``.grad``, and closed-form statistics of known arrays.
"""

import math
import sys

import numpy as np
import pytest
from helpers import TinySENet

import minise as ms
import minise.functional as F
from minise import autograd, nn
from minise.debug import (
    GRAD_HEALTH_COLUMNS,
    GradHealthRecord,
    GradientMonitor,
    anomaly,
    read_grad_health_csv,
    write_grad_health_csv,
)

XV = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, -6.0]], dtype=np.float32)
WV = np.array([1.0, 0.5, -2.0], dtype=np.float32)


def small_graph(device="cpu"):
    """loss = sum((x * w) ** 2): backward visits Sum, Pow, Mul, in that order."""
    x = ms.tensor(XV, requires_grad=True, device=device)
    w = ms.tensor(WV, requires_grad=True, device=device)
    return x, w, ((x * w) ** 2).sum()


def tiny_se_net_loss(seed=0, device="cpu"):
    ms.manual_seed(seed)
    net = TinySENet().to(device)
    x = ms.tensor(np.random.default_rng(seed).standard_normal((2, 4, 3, 3)).astype(np.float32), device=device)
    return net, (net(x) ** 2).mean()


# --- trace_backward -------------------------------------------------------------
def test_trace_backward_records_ops_in_backward_order_with_hand_computed_gradients(device):
    x, w, loss = small_graph(device)
    with ms.trace_backward(keep_arrays=True) as tr:
        loss.backward()
    assert [r.op for r in tr.records] == ["Sum", "Pow", "Mul"]
    assert [r.step for r in tr.records] == [0, 1, 2]
    assert [r.input_shapes for r in tr.records] == [((2, 3),), ((2, 3), ()), ((2, 3), (3,))]
    assert [r.output_shape for r in tr.records] == [(), (2, 3), (2, 3)]
    assert all(r.module == "" for r in tr.records)

    y = XV * WV
    # Sum: gy = 1; it sends ones to y ** 2.
    sum_rec, pow_rec, mul_rec = tr.records
    assert (sum_rec.grad_output_norm, sum_rec.grad_output_mean, sum_rec.grad_output_absmax) == (1.0, 1.0, 1.0)
    assert sum_rec.grad_inputs[0].norm == pytest.approx(math.sqrt(6))
    # Pow: gy = ones(2, 3); d(y^2)/dy = 2y; the exponent is a constant and gets nothing.
    assert pow_rec.grad_output_norm == pytest.approx(math.sqrt(6))
    np.testing.assert_allclose(ms.backend.to_numpy(pow_rec.gxs[0]), 2 * y, rtol=1e-6)
    assert pow_rec.gxs[1] is None and pow_rec.grad_inputs[1].norm is None
    # Mul: gy = 2y; to x: 2y * w; to w (broadcast over rows): sum over rows of 2y * x.
    gy = 2 * y
    assert mul_rec.grad_output_norm == pytest.approx(np.linalg.norm(gy), rel=1e-6)
    assert mul_rec.grad_output_mean == pytest.approx(gy.mean(), rel=1e-6)
    assert mul_rec.grad_output_absmax == pytest.approx(np.abs(gy).max(), rel=1e-6)
    np.testing.assert_allclose(ms.backend.to_numpy(mul_rec.gxs[0]), gy * WV, rtol=1e-6)
    np.testing.assert_allclose(ms.backend.to_numpy(mul_rec.gxs[1]), (gy * XV).sum(0), rtol=1e-6)
    assert mul_rec.grad_inputs[0].norm == pytest.approx(np.linalg.norm(gy * WV), rel=1e-6)
    assert mul_rec.grad_inputs[1].norm == pytest.approx(np.linalg.norm((gy * XV).sum(0)), rel=1e-6)
    assert [g.shape for g in mul_rec.grad_inputs] == [(2, 3), (3,)]
    # ... and the tracer only watched: the leaves hold the same gradients.
    np.testing.assert_allclose(x.grad.numpy(), gy * WV, rtol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), (gy * XV).sum(0), rtol=1e-6)


def test_trace_backward_keeps_no_arrays_unless_asked():
    _, _, loss = small_graph()
    with ms.trace_backward() as tr:
        loss.backward()
    assert all(r.grad_output is None and all(a is None for a in r.gxs) for r in tr.records)
    assert all(r.function is None for r in tr.records)
    assert tr.records[2].grad_inputs[0].norm is not None  # the statistics are still there


def test_trace_backward_stops_listening_after_the_block():
    _, _, loss = small_graph()
    with ms.trace_backward() as tr:
        pass
    loss.backward()
    assert tr.records == [] and autograd._backward_observers == []


def test_trace_backward_names_parameters_from_their_modules_without_params():
    net, loss = tiny_se_net_loss()
    with ms.trace_backward() as tr:
        loss.backward()
    (fc1,) = tr.filter(module="layer2.0.se.fc1")
    assert [g.name for g in fc1.grad_inputs] == ["", "layer2.0.se.fc1.weight", "layer2.0.se.fc1.bias"]


def test_trace_backward_names_inputs_from_params_and_tensor_names():
    x, w, loss = small_graph()
    x.name = "x"
    with ms.trace_backward(params={"weight": w}) as tr:
        loss.backward()
    assert [g.name for g in tr.records[2].grad_inputs] == ["x", "weight"]
    assert "weight (3,)" in str(tr)


def test_trace_backward_records_the_module_path_of_every_op():
    net, loss = tiny_se_net_loss()
    with ms.trace_backward(params=dict(net.named_parameters())) as tr:
        loss.backward()
    fc2 = tr.filter(module="layer2.1.se.fc2")
    assert [r.op for r in fc2] == ["Linear"]
    assert fc2[0].input_shapes == ((2, 2), (4, 2), (4,)) and fc2[0].output_shape == (2, 4)
    assert [g.name for g in fc2[0].grad_inputs] == ["", "layer2.1.se.fc2.weight", "layer2.1.se.fc2.bias"]
    # the leaf gradient of fc2.weight is exactly what that op sent to it (it is used once)
    np.testing.assert_allclose(fc2[0].grad_inputs[1].norm,
                               np.linalg.norm(net.layer2[1].se.fc2.weight.grad.numpy()), rtol=1e-6)
    modules = {r.module for r in tr.records}
    assert {"", "fc", "layer2.0", "layer2.0.se", "layer2.0.se.fc1", "layer2.1.se.fc2"} <= modules
    # backward meets layer2.1 (the later block) before layer2.0
    first = [r.module for r in tr.records]
    assert first.index("layer2.1.se.fc2") < first.index("layer2.0.se.fc2")


def test_printed_backward_trace_is_an_aligned_table_of_every_record():
    _, loss = tiny_se_net_loss()
    with ms.trace_backward() as tr:
        loss.backward()
    lines = str(tr).splitlines()
    assert lines[0].split()[:5] == ["step", "op", "module", "output", "shape"]
    assert len(lines) == 2 + len(tr.records)
    op_col = lines[0].index("op")
    module_col = lines[0].index("module")
    for line, rec in zip(lines[2:], tr.records):
        assert line[op_col:].startswith(rec.op)
        assert line[module_col:].startswith(rec.module or "-")
        assert f"{rec.grad_output_norm:.3e}" in line


# --- trace_forward --------------------------------------------------------------
def test_trace_forward_records_activation_statistics(device):
    x = ms.tensor([[-1.0, 0.0, 2.0, 3.0]], requires_grad=True, device=device)
    with ms.trace_forward() as tf:
        y = F.relu(x) * 2.0
    assert [r.op for r in tf.records] == ["ReLU", "Mul"]
    relu = tf.records[0]
    expected = np.array([0.0, 0.0, 2.0, 3.0])
    assert relu.output_shape == (1, 4) and relu.input_shapes == ((1, 4),)
    assert relu.mean == pytest.approx(expected.mean())
    assert relu.std == pytest.approx(expected.std())
    assert (relu.min, relu.max, relu.frac_zero) == (0.0, 3.0, 0.5)
    assert tf.records[1].max == pytest.approx(6.0)
    assert y.shape == (1, 4)
    assert "ReLU" in str(tf) and "50.0%" in str(tf)


def test_trace_forward_records_module_paths_and_keeps_arrays_on_request():
    net = TinySENet()
    x = ms.tensor(np.ones((1, 4, 2, 2), dtype=np.float32))
    with ms.trace_forward(keep_arrays=True) as tf:
        net(x)
    sig = tf.filter(module="layer2.0.se", op="Sigmoid")
    assert len(sig) == 1
    np.testing.assert_allclose(sig[0].array, net.layer2[0].se.last_excitation)
    assert 0.0 < sig[0].min <= sig[0].max < 1.0


# --- step_backward --------------------------------------------------------------
def test_step_backward_gives_leaves_exactly_the_gradients_of_backward(device):
    net_a, loss_a = tiny_se_net_loss(device=device)
    net_b, loss_b = tiny_se_net_loss(device=device)
    with ms.trace_backward(keep_arrays=True) as tr:
        loss_a.backward()
    records = list(ms.step_backward(loss_b))
    assert [(r.op, r.module) for r in records] == [(r.op, r.module) for r in tr.records]
    for traced, stepped in zip(tr.records, records):
        np.testing.assert_array_equal(ms.backend.to_numpy(stepped.gy), ms.backend.to_numpy(traced.gy))
        for ga, gb in zip(traced.gxs, stepped.gxs):
            assert (ga is None) == (gb is None)
            if ga is not None:
                np.testing.assert_array_equal(ms.backend.to_numpy(gb), ms.backend.to_numpy(ga))
    for (name, pa), (_, pb) in zip(net_a.named_parameters(), net_b.named_parameters()):
        np.testing.assert_array_equal(pb.grad.numpy(), pa.grad.numpy(), err_msg=name)


def test_step_backward_pauses_with_the_op_saved_buffers_still_there():
    x, w, loss = small_graph()
    steps = ms.step_backward(loss)
    assert x.grad is None  # nothing runs before the first record is asked for
    sum_rec = next(steps)
    pow_rec = next(steps)
    assert pow_rec.op == "Pow" and pow_rec.function.saved is not None
    assert sum_rec.function.saved is None  # released once the walk moved on
    mul_rec = next(steps)
    assert mul_rec.inputs[0] is x and mul_rec.inputs[1] is w and mul_rec.output.shape == (2, 3)
    assert x.grad is None  # leaves are filled after the last op that feeds them
    with pytest.raises(StopIteration):
        next(steps)
    np.testing.assert_allclose(x.grad.numpy(), 2 * XV * WV * WV, rtol=1e-6)


def test_step_backward_breakpoint_on_a_module_yields_only_its_ops_but_runs_them_all():
    net_a, loss_a = tiny_se_net_loss()
    net_b, loss_b = tiny_se_net_loss()
    loss_a.backward()
    with ms.trace_backward() as tr:
        se_records = list(ms.step_backward(loss_b, breakpoint_on="se"))
    expected = [(r.step, r.op, r.module) for r in tr.records if "se" in r.module]
    assert [(r.step, r.op, r.module) for r in se_records] == expected
    assert {r.module for r in se_records} == {"layer2.0.se", "layer2.0.se.fc1", "layer2.0.se.fc2",
                                              "layer2.1.se", "layer2.1.se.fc1", "layer2.1.se.fc2"}
    for (name, pa), (_, pb) in zip(net_a.named_parameters(), net_b.named_parameters()):
        np.testing.assert_array_equal(pb.grad.numpy(), pa.grad.numpy(), err_msg=name)


def test_step_backward_breakpoint_on_a_predicate():
    _, loss = tiny_se_net_loss()
    records = list(ms.step_backward(loss, breakpoint_on=lambda r: r.op == "Sigmoid"))
    assert [r.module for r in records] == ["layer2.1.se", "layer2.0.se"]
    assert all(r.gy.shape == (2, 4) for r in records)


def test_step_backward_with_pdb_calls_breakpoint_at_each_matching_op(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(sys, "breakpointhook", lambda *a, **k: calls.append(sys._getframe(1).f_locals["record"]))
    _, loss = tiny_se_net_loss()
    records = list(ms.step_backward(loss, breakpoint_on="fc1", pdb=True))
    assert len(calls) == 2 and [c.module for c in calls] == ["layer2.1.se.fc1", "layer2.0.se.fc1"]
    assert calls == records
    assert "paused at step" in capsys.readouterr().out


def test_step_backward_with_retain_graph_allows_a_second_backward():
    x, w, loss = small_graph()
    list(ms.step_backward(loss, retain_graph=True))
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (2 * XV * WV * WV), rtol=1e-6)


def test_step_backward_rejects_a_bad_breakpoint_and_a_non_tensor():
    _, _, loss = small_graph()
    with pytest.raises(TypeError, match="breakpoint_on"):
        ms.step_backward(loss, breakpoint_on=3)
    with pytest.raises(TypeError, match="step_backward"):
        ms.step_backward(np.ones(3))


# --- detect_anomaly -------------------------------------------------------------
class LogModule(nn.Module):
    def forward(self, x):
        return (x * 2.0).log().sum()


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(3, 3), LogModule())


class NaNBackward(ms.Function):
    """y = x, but the backward returns NaN: an injected bug."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy * np.nan


def negative_encoder():
    """Outer().encoder with weights chosen so the Linear's output is -3: its log is NaN."""
    model = Outer()
    model.encoder[0].weight.data[...] = 1.0
    model.encoder[0].bias.data[...] = 0.0
    return model


def test_detect_anomaly_names_the_op_and_module_of_a_nan_in_forward():
    model = negative_encoder()
    x = ms.tensor(-np.ones((2, 3), dtype=np.float32))
    with np.errstate(invalid="ignore"), ms.detect_anomaly():
        with pytest.raises(ms.AnomalyError) as info:
            model.encoder(x)
    message = str(info.value)
    assert "Log in module 1 produced non-finite values in forward" in message
    assert "6 NaN, 0 Inf, shape (2, 3)" in message


def test_detect_anomaly_reports_the_full_module_path_and_the_first_bad_op():
    model = negative_encoder()
    with np.errstate(invalid="ignore", divide="ignore"):
        with ms.detect_anomaly():
            autograd._module_stack.append(model)  # as if model.forward called self.encoder
            try:
                with pytest.raises(ms.AnomalyError, match=r"Log in module encoder\.1 produced"):
                    model.encoder(ms.tensor(-np.ones((2, 3), dtype=np.float32)))
            finally:
                autograd._module_stack.pop()


def test_without_detect_anomaly_the_nan_passes_silently():
    with np.errstate(invalid="ignore"):
        y = negative_encoder().encoder(ms.tensor(-np.ones((2, 3), dtype=np.float32)))
    assert np.isnan(y.item())


def test_detect_anomaly_names_the_op_whose_backward_returned_nan():
    lin = nn.Linear(3, 2)
    x = ms.tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = lin

        def forward(self, x):
            return NaNBackward()(self.head(x)).sum()

    loss = Wrapper()(x)
    with ms.detect_anomaly():
        with pytest.raises(ms.AnomalyError) as info:
            loss.backward()
    message = str(info.value)
    assert "NaNBackward in module (the top-level Wrapper)" in message
    assert "backward" in message and "backward" in message and "the gradient for input 0" in message
    assert lin.weight.grad is None  # stopped before the NaN reached the parameters


def test_detect_anomaly_backward_error_names_a_module_path():
    class Sub(nn.Module):
        def forward(self, x):
            return NaNBackward()(x)

    class Top(nn.Module):
        def __init__(self):
            super().__init__()
            self.stage = nn.Sequential(Sub())

        def forward(self, x):
            return self.stage(x).sum()

    x = ms.tensor([1.0, 2.0], requires_grad=True)
    loss = Top()(x)
    with ms.detect_anomaly(), pytest.raises(ms.AnomalyError, match=r"NaNBackward in module stage\.0 produced "
                                                                    r"non-finite values in backward"):
        loss.backward()


def test_detect_anomaly_restores_the_previous_setting_and_nests():
    assert anomaly._active is False
    with ms.detect_anomaly():
        assert anomaly._active is True
        with ms.detect_anomaly(enabled=False):
            assert anomaly._active is False
        assert anomaly._active is True
    assert anomaly._active is False
    with pytest.raises(ZeroDivisionError):
        with ms.detect_anomaly():
            1 / 0  # noqa: B018 (raise ZeroDivisionError on purpose)
    assert anomaly._active is False


def test_detect_anomaly_works_as_a_decorator():
    @ms.detect_anomaly()
    def make_nan():
        with np.errstate(divide="ignore"):
            return ms.tensor([0.0]).log()

    with pytest.raises(ms.AnomalyError, match="Log"):
        make_nan()
    assert anomaly._active is False


# --- gradient health ------------------------------------------------------------
def test_gradient_monitor_measures_grad_norm_and_update_ratio_of_an_sgd_step():
    w = ms.tensor([3.0, 4.0], requires_grad=True)
    b = ms.tensor([0.0], requires_grad=True)
    unused = ms.tensor([1.0], requires_grad=True)
    ((w * ms.tensor([1.0, 2.0])).sum() + b.sum() * 3.0).backward()
    monitor = GradientMonitor({"w": w, "b": b, "unused": unused})
    monitor.before_step()
    lr = 0.1
    for p in (w, b):
        p.data = p.data - lr * p.grad.data
    rows = monitor.after_step(epoch=2, step=17)
    assert [r.param for r in rows] == ["w", "b"]  # no gradient, no row
    assert rows[0].epoch == 2 and rows[0].step == 17
    assert rows[0].grad_norm == pytest.approx(math.sqrt(5))
    assert rows[0].update_ratio == pytest.approx(lr * math.sqrt(5) / 5.0)  # ||w|| = 5
    assert rows[1].grad_norm == pytest.approx(3.0)
    assert math.isnan(rows[1].update_ratio)  # a zero weight has no ratio
    assert monitor.records == rows


def test_gradient_monitor_needs_before_step():
    w = ms.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="before_step"):
        GradientMonitor([("w", w)]).after_step(0, 0)


def test_grad_health_csv_round_trips_with_the_documented_header(tmp_path):
    rows = [GradHealthRecord(0, 1, "fc.weight", 0.5, 1e-3), GradHealthRecord(0, 1, "fc.bias", 0.25, math.nan)]
    path = write_grad_health_csv(rows, tmp_path / "grad_health.csv")
    assert open(path).readline().strip() == ",".join(GRAD_HEALTH_COLUMNS) == "epoch,step,param,grad_norm,update_ratio"
    back = read_grad_health_csv(path)
    assert back[0] == rows[0] and back[1].param == "fc.bias" and math.isnan(back[1].update_ratio)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grad_health.csv"]  # no temporary file left


def test_read_grad_health_csv_rejects_other_columns(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(ValueError, match=r"other\.csv is damaged: its header has no column 'step' \(it has epoch,"):
        read_grad_health_csv(path)


def test_gradient_monitor_follows_a_real_model_and_optimizer(tmp_path):
    optim = pytest.importorskip("minise.optim")
    net, loss = tiny_se_net_loss()
    opt = optim.SGD(net.parameters(), lr=0.5)
    monitor = GradientMonitor(net)
    loss.backward()
    before = {n: p.numpy().copy() for n, p in net.named_parameters()}
    grads = {n: p.grad.numpy().copy() for n, p in net.named_parameters()}
    monitor.before_step()
    opt.step()
    rows = {r.param: r for r in monitor.after_step(0, 0)}
    assert set(rows) == set(before)
    for name, p in net.named_parameters():
        assert rows[name].grad_norm == pytest.approx(np.linalg.norm(grads[name]), rel=1e-5)
        expected = np.linalg.norm(p.numpy() - before[name]) / np.linalg.norm(before[name])
        assert rows[name].update_ratio == pytest.approx(expected, rel=1e-4)
    monitor.to_csv(tmp_path / "grad_health.csv")
    assert len(read_grad_health_csv(tmp_path / "grad_health.csv")) == len(rows)
