"""`minise bench ops`: the table has every op, with times, and the timer takes medians."""

import re
import sys

import pytest

from minise import cli
from minise.bench import ops as bench_ops
from minise.bench import timing as bench_timing


def test_bench_ops_prints_a_row_with_times_for_every_op(capsys):
    assert cli.main(["bench", "ops", "--batch-size", "2", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    rows = bench_ops.ops_rows(2)
    assert len(rows) == 16
    try:
        import torch  # noqa: F401
        has_torch = True
    except ImportError:
        has_torch = False
    number = r"\s+(\d+\.\d\d)"
    for row in rows:
        line = re.search(re.escape(row["name"]) + r"\s+" + re.escape(row["shape"]) + r"\s.*", out)
        assert line, f"no row for {row['name']} {row['shape']} in:\n{out}"
        times = re.findall(number, line.group(0))
        assert len(times) == (3 if has_torch else 1), line.group(0)   # minise ms [, torch ms, ratio]
        if has_torch:
            minise_ms, torch_ms, ratio = map(float, times)
            # every printed number is rounded to 0.01: the ratio lies within what that allows
            low = (minise_ms - 0.005) / (torch_ms + 0.005) - 0.005
            high = (minise_ms + 0.005) / max(torch_ms - 0.005, 1e-9) + 0.005
            assert low <= ratio <= high, line.group(0)
    assert "ratio = minise ms / torch ms" in out


def test_bench_ops_without_torch_prints_only_the_minise_column(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)       # `import torch` raises ImportError
    assert cli.main(["bench", "ops", "--batch-size", "2", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "torch not installed: no comparison" in out
    header = f"{'op':<22} {'shape':<30} {'minise ms':>10}"
    assert f"\n{header}\n{'-' * len(header)}\n" in out, out          # no "torch ms" and "ratio" columns
    rows = out.split("-" * len(header) + "\n")[1].splitlines()
    assert len(rows) == 16 and "ratio" not in out
    for row, line in zip(bench_ops.ops_rows(2), rows):
        assert re.fullmatch(f"{re.escape(row['name'])} +{re.escape(row['shape'])} +\\d+\\.\\d\\d", line), line


@pytest.mark.parametrize("argv, prog, metavar, choices", [
    (["bench"], "minise bench", "BENCHMARK", "'ops', 'train'"),
    ([], "minise", "COMMAND", "'info', 'train', 'eval', 'plot', 'bench', 'summary', 'export'"),
])
def test_a_missing_benchmark_or_command_is_one_line_naming_the_choices_and_exit_2(argv, prog, metavar, choices,
                                                                                    capsys):
    # like any missing required argument (argparse's words, through cli._Parser): not the help and exit 0
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"{prog}: error: the following arguments are required: {metavar} (choose from {choices}); "
                   f"see {prog} --help\n")


def test_time_ms_reports_the_median_of_the_timed_runs_after_the_warmup(monkeypatch):
    clock = iter([0.0, 1.0,    # run 1: 1 s
                  1.0, 6.0,    # run 2: 5 s
                  6.0, 9.0])   # run 3: 3 s
    monkeypatch.setattr(bench_timing.time, "perf_counter", lambda: next(clock))
    calls = []
    assert bench_timing.time_ms(lambda: calls.append(1), repeat=3, warmup=2) == pytest.approx(3000.0)
    assert len(calls) == 5
