"""`minise bench train`: every row printed with numbers, the profiler's bookkeeping, the memory probe.

Oracles: the printed ratio against the printed times, a fake clock for the profiler's
exclusive times, a known allocation for the memory probe, parameter counts of the twins.
"""

import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from helpers import torch_or_skip

import minise as ms
import minise.functional as F
from minise import cli, models, parallel
from minise.bench import profile as bench_profile
from minise.bench import train as bench_train
from minise.functional import conv

# --malloc default: "keep" would change the allocator of the whole pytest process (tested in a subprocess)
SMALL = ["bench", "train", "--batch-size", "4", "--steps", "1", "--warmup", "0", "--threads", "1", "--pause", "0",
         "--malloc", "default"]
ROWS = ["train step", "eval forward (no_grad)", "train images/s", "eval images/s", "data pipeline per batch",
        "peak resident MiB (process)", "peak MiB the step allocated"]


def _numbers(line):
    return [float(v) for v in re.findall(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])", line)]


def _line(out, name):
    match = re.search("^" + re.escape(name) + r"\s.*$", out, re.MULTILINE)
    assert match, f"no row {name!r} in:\n{out}"
    return match.group(0)


def test_bench_train_prints_every_row_with_a_positive_time(capsys):
    assert cli.main(SMALL) == 0
    out = capsys.readouterr().out
    assert "se_resnet20, batch 4, cpu, median of 1 step after 0 warm-up, float32" in out   # "1 step", not "1 steps"
    for name in ROWS:
        values = _numbers(_line(out, name))
        assert values and values[0] > 0, _line(out, name)
    step_ms = _numbers(_line(out, "train step"))[0]
    assert _numbers(_line(out, "train images/s"))[0] == pytest.approx(4 / step_ms * 1e3, abs=1)


@pytest.mark.parametrize("flags", [[], ["--compare", "torch"]], ids=["no --compare", "torch not installed"])
def test_bench_train_without_torch_prints_only_the_minise_column(flags, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)       # `import torch` raises ImportError
    assert cli.main(SMALL + ["--model", "resnet20"] + flags) == 0
    out = capsys.readouterr().out
    assert ("note: torch is not installed: no comparison" in out) == bool(flags)
    header = f"{'':<28} {'minise ms':>10}"
    assert f"\n{header}\n{'-' * len(header)}\n" in out, out        # no "torch ms" and "ratio" columns
    for name in ("train step", "eval forward (no_grad)"):
        assert re.fullmatch(re.escape(name) + r" +\d+\.\d", _line(out, name)), _line(out, name)
    for name in ("train images/s", "eval images/s"):
        assert re.fullmatch(re.escape(name) + r" +\d+", _line(out, name)), _line(out, name)
    assert re.fullmatch(r"data pipeline per batch +\d+\.\d   \(\d+\.\d% of a minise train step\)",
                        _line(out, "data pipeline per batch"))
    assert "-" not in out.split("-" * len(header))[1] and "ratio" not in out


def test_bench_train_against_torch_prints_a_ratio_that_matches_the_two_times(capsys):
    torch_or_skip()
    assert cli.main(SMALL + ["--model", "resnet20", "--compare", "torch"]) == 0
    out = capsys.readouterr().out
    header = f"{'':<28} {'minise ms':>10} {'torch ms':>10} {'ratio':>7}"     # the columns docs and scripts read
    assert f"\n{header}\n{'-' * len(header)}\n" in out, out
    assert re.fullmatch(r"data pipeline per batch +\d+\.\d +- +-   \(\d+\.\d% of a minise train step\)",
                        _line(out, "data pipeline per batch"))
    for name in ("train step", "eval forward (no_grad)"):
        minise_ms, torch_ms, ratio = _numbers(_line(out, name))[:3]
        low = (minise_ms - 0.05) / (torch_ms + 0.05) - 0.005   # each time is printed to 0.1 ms
        high = (minise_ms + 0.05) / max(torch_ms - 0.05, 1e-9) + 0.005
        assert low <= ratio <= high, _line(out, name)
    assert re.search(r"BLAS threads: 1; torch \S+ threads: 1;", out), out
    assert "ratio = minise ms / torch ms" in out


def test_bench_train_keeps_freed_memory_when_asked_in_its_own_process():
    result = subprocess.run([sys.executable, "-m", "minise", *SMALL[:-1], "keep", "--model", "resnet20"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "malloc: keep" in result.stdout and "note:" not in result.stdout
    assert _numbers(_line(result.stdout, "train step"))[0] > 0


def test_bench_train_profile_lists_the_kinds_of_work_and_their_shares_add_up(capsys):
    assert cli.main(SMALL + ["--profile"]) == 0
    out = capsys.readouterr().out.split("profile:")[1]
    rows = {}
    for kind in ("conv forward (tiles)", "conv backward (tiles)", "batch norm",
                 "elementwise & other ops", "optimiser", "autograd engine & Python"):
        ms_, share = _numbers(_line(out, kind))[:2]
        rows[kind] = share
        assert ms_ > 0, kind
    # data is timed on its own loader, outside the step: no share of it (the shares add up to 100%)
    assert re.search(r"^data \(per batch\) +\d+\.\d +- +\(outside the step", out, re.MULTILINE), out
    lines = out.split("data (per batch)")[0].splitlines()[2:]
    shares = [_numbers(line)[1] for line in lines if line]
    assert sum(shares) == pytest.approx(100, abs=0.1 * len(shares))
    busy = [_numbers(line)[2] for line in lines if line]
    assert all(0 <= b <= 4 for b in busy), out          # --threads 1: about one core (a GEMM may spin up more)
    assert re.search(r"^cores busy over the step: \d+\.\d\d of 1$", out, re.MULTILINE), out
    split = re.search(r"^conv2d's CPU time \((\d+) ms, all threads\): im2col (\d+)%, col2im (\d+)%, "
                      r"GEMMs and the rest (-?\d+)%$", out, re.MULTILINE)
    assert split, out
    assert int(split[1]) > 0 and int(split[2]) > 0 and abs(sum(map(int, split.groups()[1:])) - 100) <= 2


def test_profiler_cores_busy_is_cpu_time_over_wall_time(monkeypatch):
    wall = iter([0.0, 4.0])
    cpu = iter([1.0, 7.0])      # 6 CPU seconds in 4 wall seconds: 1.5 cores
    monkeypatch.setattr(bench_profile.time, "perf_counter", lambda: next(wall))
    monkeypatch.setattr(bench_profile.time, "thread_time", lambda: next(cpu))
    monkeypatch.setattr(bench_profile.time, "process_time", lambda: 0.0)
    profiler = bench_profile.OpProfiler()
    profiler.time("batch norm", lambda: None)
    assert profiler.totals["batch norm"] == 4.0 and profiler.cpu["batch norm"] == 6.0
    assert profiler.cores_busy("batch norm") == 1.5


def test_profiler_counts_a_convs_cpu_on_the_process_clock_less_its_inner_calls(monkeypatch):
    # conv backward from t=0 to 10 with an inner op from 2 to 5: the conv's own work is 7 s of wall
    # time; the process burnt 20 CPU s over the whole call and 3 of them in the inner op -> 17 / 7 cores.
    wall, process = iter([0.0, 2.0, 5.0, 10.0]), iter([0.0, 4.0, 7.0, 20.0])
    monkeypatch.setattr(bench_profile.time, "perf_counter", lambda: next(wall))
    monkeypatch.setattr(bench_profile.time, "process_time", lambda: next(process))
    monkeypatch.setattr(bench_profile.time, "thread_time", lambda: 0.0)
    profiler = bench_profile.OpProfiler()
    inner = profiler._wrap("batch norm", lambda: None)
    profiler.time("conv backward (tiles)", inner)
    assert profiler.totals == {"conv backward (tiles)": 7.0, "batch norm": 3.0}
    assert profiler.cpu["conv backward (tiles)"] == 17.0


def test_profiler_counts_exclusive_time_and_restores_the_ops(monkeypatch):
    clock = iter([0.0, 2.0, 5.0, 10.0])   # outer starts, inner starts, inner ends, outer ends
    monkeypatch.setattr(bench_profile.time, "perf_counter", lambda: next(clock))
    profiler = bench_profile.OpProfiler()
    inner = profiler._wrap("inner", lambda: None)
    profiler.time("outer", inner)
    assert profiler.totals == {"outer": 7.0, "inner": 3.0}

    originals = (conv.Conv2d.forward, conv._im2col)
    with bench_profile.OpProfiler() as profiler:
        assert conv.Conv2d.forward is not originals[0]
    assert (conv.Conv2d.forward, conv._im2col) == originals


@pytest.mark.parametrize("threads", [1, 2])
def test_profiler_times_a_real_convolution_and_counts_im2col_on_every_thread_of_its_tiles(threads, monkeypatch):
    monkeypatch.setattr(parallel, "TILE_BYTES", 8 * 3 * 9 * 64)      # one image a tile: 4 tiles
    parallel.set_num_threads(threads)
    x = ms.tensor(np.ones((4, 8, 8, 8), np.float32), requires_grad=True)
    w = ms.tensor(np.ones((3, 8, 3, 3), np.float32), requires_grad=True)
    tiles_run = []
    original = conv._tile_columns
    monkeypatch.setattr(conv, "_tile_columns", lambda *a: tiles_run.append(threading.get_ident()) or original(*a))
    try:
        with bench_profile.OpProfiler() as profiler:
            F.conv2d(x, w, padding=1).sum().backward()
    finally:
        parallel.set_num_threads(1)
    for kind in ("conv forward (tiles)", "conv backward (tiles)"):
        assert profiler.totals[kind] > 0 and profiler.cpu[kind] > 0, kind
    assert profiler.tile_cpu["im2col"] > 0
    assert len(tiles_run) == 4 * 3                      # forward: x's columns; backward: x's and gy's
    np.testing.assert_allclose(x.grad.numpy()[0, 0, 1:-1, 1:-1], 3 * 9)   # interior pixel: 3 filters x 9 taps


def test_peak_memory_sees_an_allocation_made_inside_the_step():
    def allocate():
        a = np.ones(50 * 2**20 // 8)   # 50 MiB of float64, touched
        return float(a[-1])

    process, step = bench_train.peak_memory(allocate)
    assert 50 <= step < 55
    assert process >= 50


@pytest.mark.parametrize("name", ["resnet20", "se_resnet20"])
def test_torch_twin_has_as_many_parameters_as_the_minise_model(name):
    torch_or_skip()
    twin = bench_train.twin_of(name)
    assert sum(p.numel() for p in twin.parameters()) == models.get(name).num_parameters()


def test_a_training_step_stays_in_float32_in_every_op_forward_and_backward():
    from minise import autograd, optim

    model = models.se_resnet20()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    x, y = ms.tensor(rng.standard_normal((2, 3, 8, 8), dtype=np.float32)), ms.tensor(rng.integers(0, 10, 2))
    seen = []

    def forward(fn, inputs, out):
        seen.append((fn.name, "forward", out.dtype))

    def backward(record):
        seen.extend((record["function"].name, "backward", g.dtype) for g in record["grad_inputs"] if g is not None)

    autograd._forward_observers.append(forward)
    autograd._backward_observers.append(backward)
    try:
        for _ in range(2):   # the second step also uses the momentum buffers
            bench_train.train_step(model, optimizer, x, y)
    finally:
        autograd._forward_observers.remove(forward)
        autograd._backward_observers.remove(backward)
    assert {"Conv2d", "BatchNorm", "Sigmoid"} <= {name for name, _, _ in seen}
    assert [s for s in seen if s[2] != np.float32] == []
    assert {p.data.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    assert {s["momentum_buffer"].dtype for s in optimizer.state.values()} == {np.dtype(np.float32)}


@pytest.mark.parametrize("argv, message", [
    (["bench", "train", "--batch-size", "0"],
     "minise bench train: error: --batch-size must be a positive integer, got 0"),
    (["bench", "train", "--steps", "0"], "minise bench train: error: --steps must be a positive integer, got 0"),
    (["bench", "train", "--threads", "0"], "minise bench train: error: --threads must be a positive integer, got 0"),
    (["bench", "train", "--warmup", "-1"],
     "minise bench train: error: --warmup must be an integer, 0 or more, got -1"),
    (["bench", "train", "--pause", "-0.5"],
     "minise bench train: error: --pause must be a finite number, 0 or more, got -0.5"),
    (["bench", "train", "--pause", "nan"],
     "minise bench train: error: --pause must be a finite number, 0 or more, got nan"),
    (["bench", "train", "--pause", "inf"],
     "minise bench train: error: --pause must be a finite number, 0 or more, got inf"),
    (["bench", "ops", "--repeat", "0"], "minise bench ops: error: --repeat must be a positive integer, got 0"),
    (["bench", "ops", "--threads", "-2"], "minise bench ops: error: --threads must be a positive integer, got -2"),
])
def test_bench_names_the_flag_of_a_number_out_of_range(capsys, argv, message):
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == message


@pytest.mark.parametrize("argv, start, end", [
    (["bench", "train", "--threads", "x"],
     "minise bench train: error: argument --threads: invalid int value: 'x'", "see minise bench train --help"),
    (["bench", "ops", "--repeat", "1.5"],
     "minise bench ops: error: argument --repeat: invalid int value: '1.5'", "see minise bench ops --help"),
    (["bench", "train", "--malloc", "never"],        # (the choices' quotes depend on the Python version)
     "minise bench train: error: argument --malloc: invalid choice: 'never' (choose from ",
     "see minise bench train --help"),
    (["bench", "tran"], "minise bench: error: argument BENCHMARK: invalid choice: 'tran'", "see minise bench --help"),
    (["--bogus"], "minise: error: unrecognized arguments: --bogus", "see minise --help"),
    (["bench", "--bogus"], "minise bench: error: unrecognized arguments: --bogus", "see minise bench --help"),
    (["train", "--bogus"], "minise train: error: unrecognized arguments: --bogus", "see minise train --help"),
    (["bench", "ops", "--bogus", "1"], "minise bench ops: error: unrecognized arguments: --bogus 1",
     "see minise bench ops --help"),
])
def test_a_flag_argparse_refuses_is_one_line_and_exit_2_without_the_usage_block(capsys, argv, start, end):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(start) and err.strip().endswith("; " + end), err


@pytest.mark.parametrize("device, message", [
    ("tpu", "minise bench train: error: --device tpu: unknown device 'tpu': expected 'cpu', 'cuda' or 'cuda:N'"),
    ("cuda:x", "minise bench train: error: --device cuda:x: unknown device 'cuda:x'"),
])
def test_bench_train_names_the_device_flag_of_a_device_it_cannot_use(capsys, device, message):
    assert cli.main(["bench", "train", "--device", device]) == 2
    assert capsys.readouterr().err.startswith(message)


@pytest.mark.parametrize("blas_after, note", [
    (None, "note: could not set NumPy's BLAS threads to 3 (not OpenBLAS); using its default"),
    (2, "note: NumPy's OpenBLAS runs at most 2 threads (its build's limit), not 3; minise's own pool uses 3"),
    (3, None),
])
def test_use_threads_says_why_blas_runs_another_thread_count(monkeypatch, capsys, blas_after, note):
    from minise.bench import timing
    before = parallel.get_num_threads()
    monkeypatch.setattr(timing, "blas_threads", lambda: blas_after)
    try:
        assert timing.use_threads(3) == 3
    finally:
        ms.set_num_threads(before)
    out = capsys.readouterr().out.strip()
    assert out == (note or "")


@pytest.mark.parametrize("argv, message", [
    (["eval", "nowhere.ckpt", "--batch-size", "0"], "minise eval: error: --batch-size must be a positive integer, "
                                                    "got 0"),
    (["train", "--threads", "-3", "--epochs", "1"], "minise train: error: --threads must be a positive integer, "
                                                    "got -3"),
    (["bench", "train", "--warmup", "-2"], "minise bench train: error: --warmup must be an integer, 0 or more, "
                                           "got -2"),
    (["plot", "run", "--excitations", "--subset", "-1"], "minise plot: error: --subset must be an integer, "
                                                         "0 or more, got -1"),   # wrote all-zero excitations
    (["eval", "run", "--subset", "-1"], "minise eval: error: --subset must be an integer, 0 or more, got -1"),
])
def test_every_command_checks_its_numeric_flags_the_same_way_before_doing_anything(capsys, argv, message, tmp_path,
                                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)          # nothing is read or written: the flag is refused first
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == message
    assert list(tmp_path.iterdir()) == []
