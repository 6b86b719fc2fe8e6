"""backend.cuda_status: one answer per missing link between this machine and a usable GPU.

The branches that need a GPU, a driver or CuPy this machine lacks are driven through a fake
``cupy`` module whose runtime answers as the real one does in that situation (a driver version
of 0 without a driver, cudaErrorNoDevice from getDeviceCount without a device...).
"""

import types

import numpy as np
import pytest

from minise import backend


def _fake_cupy(driver=12090, runtime=12090, count=1, count_error=None, kernel_error=None,
               name=b"NVIDIA H200", total=143771 * 2**20):
    def get_device_count():
        if count_error is not None:
            raise count_error
        return count

    def arange(n, dtype=None):
        if kernel_error is not None:
            raise kernel_error
        return np.arange(n, dtype=dtype)

    class Device:
        def __init__(self, index):
            self.index = index

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    runtime_api = types.SimpleNamespace(
        driverGetVersion=lambda: driver,
        runtimeGetVersion=lambda: runtime,
        getDeviceCount=get_device_count,
        getDeviceProperties=lambda i: {"name": name, "totalGlobalMem": total},
    )
    return types.SimpleNamespace(__version__="14.2.0", float32=np.float32, arange=arange,
                                 cuda=types.SimpleNamespace(runtime=runtime_api, Device=Device))


@pytest.fixture
def use_cupy(monkeypatch):
    """Make backend see ``cupy`` (a module, or None with the import error it raised)."""

    def use(cupy, error=None):
        monkeypatch.setattr(backend, "_cupy", cupy)
        monkeypatch.setattr(backend, "_cupy_error", error)

    return use


def test_cuda_status_says_cupy_is_not_installed(use_cupy):
    use_cupy(None, ModuleNotFoundError("No module named 'cupy'", name="cupy"))
    usable, reason = backend.cuda_status()
    assert usable is False
    assert reason.startswith("CuPy is not installed")
    assert "pip install 'minise[gpu]'" in reason


def test_cuda_status_says_cupy_failed_to_import_and_why(use_cupy):
    use_cupy(None, ImportError("CuPy is not correctly installed: libcudart.so.12: cannot open shared object file"))
    usable, reason = backend.cuda_status()
    assert usable is False
    assert reason.startswith("CuPy is installed but failed to import: ImportError:")
    assert "libcudart.so.12" in reason


def test_cuda_status_says_there_is_no_driver(use_cupy):
    use_cupy(_fake_cupy(driver=0))   # what cudaDriverGetVersion reports where libcuda is missing
    usable, reason = backend.cuda_status()
    assert usable is False
    assert reason == ("CuPy 14.2.0 (CUDA runtime 12.9) is installed but no NVIDIA driver was found: "
                      "this machine has no usable GPU (check `nvidia-smi`)")


def test_cuda_status_names_the_wheel_for_a_driver_of_an_older_cuda_major(use_cupy):
    use_cupy(_fake_cupy(driver=11080, runtime=12090))
    usable, reason = backend.cuda_status()
    assert usable is False
    assert "supports CUDA up to 11.8" in reason
    assert "built for CUDA 12.9" in reason
    assert "cupy-cuda11x" in reason


def test_cuda_status_accepts_an_older_minor_version_of_the_same_major(use_cupy):
    use_cupy(_fake_cupy(driver=12020, runtime=12090))
    usable, reason = backend.cuda_status()
    assert usable is True
    assert "CUDA driver 12.2, runtime 12.9" in reason


def test_cuda_status_says_no_device_answers(use_cupy):
    error = RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
    use_cupy(_fake_cupy(count_error=error))
    usable, reason = backend.cuda_status()
    assert usable is False
    assert "NVIDIA driver are installed (CUDA driver 12.9, runtime 12.9)" in reason
    assert reason.endswith("no CUDA device answers: cudaErrorNoDevice: no CUDA-capable device is detected")


def test_cuda_status_says_no_device_was_found_for_a_count_of_zero(use_cupy):
    use_cupy(_fake_cupy(count=0))
    usable, reason = backend.cuda_status()
    assert usable is False
    assert reason.endswith("but no CUDA device was found")


def test_cuda_status_names_the_device_and_its_memory_when_usable(use_cupy):
    use_cupy(_fake_cupy(count=2))
    usable, reason = backend.cuda_status()
    assert usable is True
    # 143771 MiB = 140.4 GiB
    assert reason == ("2 device(s), cuda:0 = NVIDIA H200, 140.4 GiB; CUDA driver 12.9, runtime 12.9; "
                      "CuPy 14.2.0")


def test_cuda_status_reports_a_test_kernel_that_fails(use_cupy):
    use_cupy(_fake_cupy(kernel_error=RuntimeError("nvrtc: libnvrtc.so.12 not found")))
    usable, reason = backend.cuda_status()
    assert usable is False
    assert reason.endswith("but a test kernel failed: RuntimeError: nvrtc: libnvrtc.so.12 not found")
    assert backend.cuda_status(probe=False).usable is True   # without the probe, the device looks fine


def test_cuda_status_agrees_with_gpu_available_on_this_machine():
    usable, reason = backend.cuda_status()
    assert usable == backend.gpu_available()
    assert reason


def test_to_device_moves_an_array_from_one_gpu_to_another():
    """cupy.asarray returns a CuPy array unchanged whatever the current device: the move must copy."""
    if not backend.gpu_available():
        pytest.skip(f"cuda: {backend.cuda_status(probe=False).reason}")
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("cuda: needs two GPUs")
    a = backend.to_device(np.arange(6, dtype=np.float32), "cuda:0")
    b = backend.to_device(a, "cuda:1")
    assert (a.device.id, b.device.id) == (0, 1)
    np.testing.assert_array_equal(backend.to_numpy(b), np.arange(6, dtype=np.float32))
