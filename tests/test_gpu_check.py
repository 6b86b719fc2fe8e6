"""tools/gpu_check.sh, the one-command GPU check, as far as a machine without a GPU can test it.

Without a usable GPU the script must stop after its preflight, say why in one line (the reason
backend.cuda_status() gives), write info.log and summary.txt under $OUT, and exit 2, quickly.
On a GPU machine the whole check takes minutes and is run by hand (docs/gpu.md), not here.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minise import backend

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "gpu_check.sh"


def test_the_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_finds_no_warning():
    result = subprocess.run(["shellcheck", "-S", "warning", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.slow
def test_without_a_gpu_it_stops_after_the_preflight_with_the_reason_and_exit_2(tmp_path):
    usable, reason = backend.cuda_status()
    if usable:
        pytest.skip("this machine has a usable GPU: the whole check runs for minutes (see docs/gpu.md)")
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable)
    start = time.perf_counter()
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=300,
                            cwd=tmp_path)
    seconds = time.perf_counter() - start
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"gpu_check: no usable GPU here: {reason}\n" in result.stderr
    assert "nothing else was run (exit 2)" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["info.log", "summary.txt"]
    info = (out / "info.log").read_text()
    assert f"cuda_status: NOT usable: {reason}" in info
    assert "--- nvidia-smi" in info and "--- versions" in info and "--- minise info" in info
    summary = (out / "summary.txt").read_text()
    assert f"preflight      no usable GPU: {reason}" in summary
    assert summary.rstrip().endswith("exit status: 2")
    assert seconds < 150          # a preflight: imports and one status query, no test, no training


@pytest.mark.slow
def test_a_rehearsal_on_the_cpu_runs_every_step_and_writes_the_summary(tmp_path):
    """GPU_CHECK_REHEARSAL=1: every step after the GPU gate, with --device cpu on a subset.

    The GPU is not what this checks: the script is (each step's command line, the limits, the
    accuracy comparison, the summary), so that the few minutes of a GPU are not spent on a typo.
    """
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, GPU_CHECK_REHEARSAL="1", GPU_CHECK_WORKERS="0")
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=600,
                            cwd=tmp_path)
    summary = (out / "summary.txt").read_text()
    assert result.returncode == 0, summary
    assert sorted(p.name for p in out.iterdir()) == ["bench_8.log", "info.log", "pytest.log", "summary.txt",
                                                     "train_cpu.log", "train_cuda.log"]
    assert "REHEARSAL on the CPU" in summary
    steps = summary.split("== steps\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in steps] == ["preflight", "pytest", "train", "train", "bench"]
    assert all(" ok " in line for line in steps), steps
    # the same seed and device twice: the two epochs agree exactly
    gpu = re.search(r"gpu \(this machine\): +([0-9.]+)%", summary).group(1)
    cpu = re.search(r"cpu \(this machine\): +([0-9.]+)%", summary).group(1)
    assert gpu == cpu
    assert f"accuracy: ok: the GPU epoch is within 5 points of the CPU's ({gpu}% vs {cpu}%)" in summary
    assert "train step" in summary and "ratio = minise ms / torch ms" in summary   # the bench table
    assert summary.rstrip().endswith("exit status: 0")
