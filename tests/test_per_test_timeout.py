"""per_test_timeout.py: MINISE_TEST_TIMEOUT fails a test that runs too long and lets the run go on."""

import os
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).parent

SLOW_TESTS = """
import signal, time

def test_sleeps_past_the_limit():
    time.sleep(20)

def test_after_it_still_runs():
    assert 1 + 1 == 2
"""

STUCK_TEST = """
import signal, time

def test_stuck_where_no_signal_gets_through():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})   # as a C call that never returns
    time.sleep(20)
"""


def _pytest(tmp_path, source, timeout, conftest=""):
    (tmp_path / "test_subject.py").write_text(source)
    (tmp_path / "conftest.py").write_text(conftest)
    env = dict(os.environ, MINISE_TEST_TIMEOUT=timeout,
               PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "per_test_timeout", "-p", "no:cacheprovider",
                             "-q", "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
                            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    return result, time.perf_counter() - start


def test_a_test_over_the_limit_fails_with_the_limit_named_and_the_next_test_runs(tmp_path):
    result, seconds = _pytest(tmp_path, SLOW_TESTS, "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "test_sleeps_past_the_limit: the test ran over the 1 s limit (MINISE_TEST_TIMEOUT)" in result.stdout
    assert "1 failed, 1 passed" in result.stdout
    assert seconds < 15          # the 20 s sleep was cut short


def test_a_test_stuck_in_a_call_no_signal_interrupts_ends_the_process_with_its_stack(tmp_path):
    conftest = "import per_test_timeout\nper_test_timeout.HARD_EXTRA_S = 1\n"
    result, seconds = _pytest(tmp_path, STUCK_TEST, "1", conftest)
    assert result.returncode != 0
    assert "Timeout (0:00:02)!" in result.stderr            # faulthandler's header, after 1 + 1 s
    assert "test_stuck_where_no_signal_gets_through" in result.stderr
    assert seconds < 15


def test_a_bad_limit_is_a_usage_error(tmp_path):
    result, _ = _pytest(tmp_path, SLOW_TESTS, "soon")
    assert result.returncode == 4     # pytest's "usage error"
    assert "MINISE_TEST_TIMEOUT must be a number of seconds, got 'soon'" in result.stderr
