"""Shared fixtures: every device-dependent test takes ``device`` and runs once per backend.

The "cuda" cases skip (with the reason) when CuPy or a GPU is missing, and run
when one is present: one test suite for every device.
``MINISE_TEST_TIMEOUT=<seconds>`` puts a time limit on every test (per_test_timeout.py).
"""

import numpy as np
import pytest
from per_test_timeout import (  # noqa: F401  (hooks: pytest finds them by name)
    pytest_configure,
    pytest_runtest_call,
    pytest_runtest_setup,
    pytest_runtest_teardown,
    pytest_unconfigure,
)

import minise as ms
from minise import backend

DEVICES = ["cpu", "cuda"]


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "cuda" and not backend.gpu_available():
        pytest.skip(f"cuda: {backend.cuda_status(probe=False).reason}")   # which link is missing
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    ms.manual_seed(0)
    np.random.seed(0)
    yield
