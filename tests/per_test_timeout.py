"""A per-test time limit from the environment: ``MINISE_TEST_TIMEOUT=<seconds> pytest ...``.

Needs nothing beyond the standard library, so it works where the pytest-timeout plugin is
missing (tools/gpu_check.sh relies on it on the GPU machine). Unset or 0: no limit, no cost.

Two stages, for each of a test's setup, call and teardown:

1. after ``MINISE_TEST_TIMEOUT`` seconds, SIGALRM fails the test with a message naming the
   limit; the run goes on with the next test. This interrupts Python code only: a C call
   that never returns (a GPU kernel that hangs inside a synchronisation) holds it off.
2. for that case, 15 seconds later ``faulthandler`` prints every thread's stack and ends the
   process. Under pytest-xdist the worker is replaced and the test reported as crashed;
   without it, the run ends there, with the stack that hung.

Unix only (SIGALRM); elsewhere the variable is ignored.
"""

import contextlib
import faulthandler
import os
import signal
import sys

import pytest

HARD_EXTRA_S = 15
_real_stderr_fd = None   # a copy of the terminal's stderr: pytest captures fd 2 while a test runs


def limit_seconds():
    """The limit from MINISE_TEST_TIMEOUT, in seconds (0: none). A bad value is an error."""
    text = os.environ.get("MINISE_TEST_TIMEOUT", "").strip()
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise pytest.UsageError(f"MINISE_TEST_TIMEOUT must be a number of seconds, got {text!r}") from None
    if value < 0:
        raise pytest.UsageError(f"MINISE_TEST_TIMEOUT must be >= 0, got {value}")
    return value


def pytest_configure(config):
    """Check the variable once (a bad value stops the run), and keep a handle on the real stderr."""
    global _real_stderr_fd
    if not limit_seconds() or _real_stderr_fd is not None:
        return
    capman = config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        _real_stderr_fd = os.dup(sys.stderr.fileno())


def pytest_unconfigure(config):
    global _real_stderr_fd
    if _real_stderr_fd is not None:
        os.close(_real_stderr_fd)
        _real_stderr_fd = None


@contextlib.contextmanager
def _time_limit(item, phase):
    seconds = limit_seconds()
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def on_alarm(signum, frame):
        pytest.fail(f"{item.nodeid}: {phase} ran over the {seconds:g} s limit (MINISE_TEST_TIMEOUT)",
                    pytrace=False)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(seconds + HARD_EXTRA_S, exit=True,
                                      file=_real_stderr_fd if _real_stderr_fd is not None else sys.stderr)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    with _time_limit(item, "setup"):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with _time_limit(item, "the test"):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    with _time_limit(item, "teardown"):
        yield
