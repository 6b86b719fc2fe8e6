"""Array backends: NumPy on the CPU, CuPy on an NVIDIA GPU.

This is the only module in minise that knows CuPy exists. Every op asks
``get_array_module(*arrays)`` for the module (``xp``) that owns its inputs and
calls ``xp.exp``, ``xp.matmul``... so the same code runs on either device.

CuPy is imported lazily, the first time a GPU is asked for or a CuPy array is
seen, so ``import minise`` never fails or slows down on a machine without one.

Device strings follow PyTorch: ``"cpu"``, ``"cuda"`` (the current GPU) and
``"cuda:N"``.
"""

import sys
from typing import NamedTuple

import numpy as np

__all__ = [
    "get_array_module",
    "cupy_available",
    "gpu_available",
    "cuda_status",
    "CudaStatus",
    "parse_device",
    "device_of",
    "to_device",
    "to_numpy",
    "is_array",
    "manual_seed",
    "rng",
    "random_uniform",
    "DeviceError",
    "blas_threads",
    "set_blas_threads",
    "cpu_name",
    "cpu_isa",
]

_cupy = None            # the cupy module once imported successfully
_cupy_error = None      # why importing it failed, for the error message


class DeviceError(RuntimeError):
    """Raised when a device is asked for that this machine cannot provide."""


def _import_cupy():
    """Import cupy once; return it, or None (and remember why) if it is missing."""
    global _cupy, _cupy_error
    if _cupy is None and _cupy_error is None:
        try:
            import cupy

            _cupy = cupy
            if _seed is not None:  # a seed set before the first GPU use still applies
                _seed_cupy(_seed)
        except Exception as exc:  # ImportError, or a CUDA library that fails to load
            _cupy_error = exc
    return _cupy


def cupy_available():
    """True when the cupy package can be imported (it may still find no GPU)."""
    return _import_cupy() is not None


def gpu_available():
    """True when CuPy is installed and at least one CUDA device answers."""
    cupy = _import_cupy()
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


class CudaStatus(NamedTuple):
    """Whether ``device="cuda"`` can work here, and why: ``usable, reason = cuda_status()``."""

    usable: bool
    reason: str


def _cuda_version(v):
    """CUDA's integer version (12090) as text ("12.9")."""
    return f"{v // 1000}.{v % 1000 // 10}"


def cuda_status(probe=True):
    """Say whether CUDA is usable through CuPy here, and if not, which link is missing.

    Checks, in order, each with its own answer: CuPy is importable (not installed /
    installed but failed to load); the NVIDIA driver is there (``driverGetVersion``
    is 0 without one); the driver's CUDA major version is at least that of CuPy's
    runtime (CUDA's minor-version compatibility covers the rest); a device
    answers (``getDeviceCount``). With ``probe`` (the default) it then runs one tiny
    elementwise kernel on ``cuda:0``, which needs NVRTC and a working context, so
    "usable" means a kernel really ran. Usable: the reason names the device count,
    ``cuda:0``'s name, its memory and the CUDA driver / runtime versions.

    Returns a :class:`CudaStatus` (a named tuple ``(usable: bool, reason: str)``);
    never raises. Used by ``minise info``.
    """
    cupy = _import_cupy()
    if cupy is None:
        if isinstance(_cupy_error, ImportError) and getattr(_cupy_error, "name", None) == "cupy":
            return CudaStatus(False, "CuPy is not installed: pip install 'minise[gpu]' (cupy-cuda12x), "
                                     "or the cupy-cudaNNx wheel that matches your driver")
        return CudaStatus(False, f"CuPy is installed but failed to import: {type(_cupy_error).__name__}: "
                                 f"{_cupy_error}")
    runtime = cupy.cuda.runtime
    try:
        driver = runtime.driverGetVersion()
    except Exception as exc:  # the driver library is missing or broken
        return CudaStatus(False, f"CuPy {cupy.__version__} is installed but no CUDA driver answers ({exc})")
    try:
        runtime_version = runtime.runtimeGetVersion()
    except Exception as exc:  # CuPy's CUDA runtime library failed to load
        return CudaStatus(False, f"CuPy {cupy.__version__} is installed but its CUDA runtime failed to load ({exc})")
    versions = f"CUDA driver {_cuda_version(driver)}, runtime {_cuda_version(runtime_version)}"
    if driver == 0:
        return CudaStatus(False, f"CuPy {cupy.__version__} (CUDA runtime {_cuda_version(runtime_version)}) is "
                                 "installed but no NVIDIA driver was found: this machine has no usable GPU "
                                 "(check `nvidia-smi`)")
    if driver // 1000 < runtime_version // 1000:  # minor versions are compatible, major ones are not
        return CudaStatus(False, f"the NVIDIA driver supports CUDA up to {_cuda_version(driver)} but CuPy "
                                 f"{cupy.__version__} was built for CUDA {_cuda_version(runtime_version)}: "
                                 f"update the driver or install cupy-cuda{driver // 1000}x")
    try:
        count = runtime.getDeviceCount()
    except Exception as exc:  # cudaErrorNoDevice, or a driver/device fault
        return CudaStatus(False, f"CuPy {cupy.__version__} and the NVIDIA driver are installed ({versions}) "
                                 f"but no CUDA device answers: {exc}")
    if count < 1:
        return CudaStatus(False, f"CuPy {cupy.__version__} and the NVIDIA driver are installed ({versions}) "
                                 "but no CUDA device was found")
    try:
        props = runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        total_gib = props["totalGlobalMem"] / 2**30
    except Exception as exc:
        return CudaStatus(False, f"{count} CUDA device(s) found ({versions}) but cuda:0 cannot be queried: {exc}")
    where = f"{count} device(s), cuda:0 = {name}, {total_gib:.1f} GiB; {versions}; CuPy {cupy.__version__}"
    if probe:
        try:
            with cupy.cuda.Device(0):
                value = float((cupy.arange(4, dtype=cupy.float32) * 2).sum())
        except Exception as exc:  # no NVRTC, out of memory, a device in a bad state...
            return CudaStatus(False, f"{where}; but a test kernel failed: {type(exc).__name__}: {exc}")
        if value != 12.0:
            return CudaStatus(False, f"{where}; but a test kernel computed {value} instead of 12.0")
    return CudaStatus(True, where)


def _is_cupy_array(a):
    return type(a).__module__.split(".")[0] == "cupy"


def is_array(a):
    """True for a numpy.ndarray or a cupy.ndarray."""
    return isinstance(a, np.ndarray) or _is_cupy_array(a)


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``.

    Non-array arguments (Python numbers, None) are ignored, so ops can pass
    everything they got.
    """
    for a in arrays:
        if _is_cupy_array(a):
            return _import_cupy()
    return np


def memory_order(a):
    """The axes of ``a`` from outermost to innermost in memory (by stride): (0, 1, 2, 3) for a
    C-contiguous (N, C, H, W) array, (1, 0, 2, 3) for a channel-major one (conv2d's outputs).
    Axes of length 1 or 0 keep their place (their stride says nothing about the layout)."""
    movable = [i for i in range(a.ndim) if a.shape[i] > 1]
    ranked = iter(sorted(movable, key=lambda i: -abs(a.strides[i])))
    return tuple(next(ranked) if a.shape[i] > 1 else i for i in range(a.ndim))


def empty_in_order(shape, order, dtype, xp=np):
    """An uninitialised array of ``shape`` laid out in memory with its axes in ``order``
    (outermost first, as :func:`memory_order` gives): an empty_like for an array no longer kept."""
    buffer = xp.empty(tuple(shape[i] for i in order), dtype=dtype)
    return buffer.transpose(tuple(int(i) for i in np.argsort(order)))


def is_broadcast(a):
    """True when an axis of ``a`` longer than 1 has stride 0: a broadcast view (``broadcast_to``, what
    sum's backward hands on), whose elements repeat in memory, so that its strides set no layout."""
    return any(n > 1 and not step for n, step in zip(a.shape, a.strides))


def parse_device(device):
    """Normalise a device string: ``"cpu"`` -> ``("cpu", None)``, ``"cuda:1"`` -> ``("cuda", 1)``."""
    if device is None:
        return "cpu", None
    if not isinstance(device, str):
        device = str(device)
    name, _, index = device.partition(":")
    if name == "cpu" and not index:
        return "cpu", None
    if name == "cuda":
        if not index:
            return "cuda", None
        if index.isdigit():
            return "cuda", int(index)
    raise DeviceError(
        f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N' (N a GPU index)"
    )


_CUDA_DRIVER = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")


def _cuda_driver_found():
    """Whether the NVIDIA driver's CUDA library loads: what a GPU needs besides CuPy (macOS has none)."""
    import ctypes

    for name in _CUDA_DRIVER:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def _require_gpu(device):
    cupy = _import_cupy()
    if cupy is None:
        if not _cuda_driver_found():  # installing CuPy would not help: say that first
            raise DeviceError(
                f"device {device!r} needs an NVIDIA GPU with its CUDA driver, and this machine has none "
                f"(no CUDA driver library {_CUDA_DRIVER[0]} could be loaded; CuPy is not usable either: "
                f"{_cupy_error}). Use device='cpu'."
            )
        raise DeviceError(
            f"device {device!r}: this machine has a CUDA driver, but CuPy could not be imported "
            f"({_cupy_error}). Install it with: pip install 'minise[gpu]'  (cupy-cuda12x), or use device='cpu'."
        )
    if not gpu_available():  # cuda_status names the missing link: the driver, a device, a version
        raise DeviceError(
            f"device {device!r} was asked for, but CUDA is not usable here: {cuda_status(probe=False).reason}. "
            "Use device='cpu'."
        )
    return cupy


def device_of(array):
    """The device string of an array: ``"cpu"`` or ``"cuda:N"``."""
    if _is_cupy_array(array):
        return f"cuda:{array.device.id}"
    return "cpu"


def to_device(array, device):
    """Return ``array`` on ``device``: a no-op when it is already there, else one copy."""
    kind, index = parse_device(device)
    if kind == "cpu":
        return to_numpy(array)
    cupy = _require_gpu(device)
    if index is None:
        index = cupy.cuda.runtime.getDevice()
    if _is_cupy_array(array) and array.device.id == index:
        return array
    with cupy.cuda.Device(index):
        if _is_cupy_array(array):   # on another GPU: cupy.asarray would hand it back unmoved
            return array.copy()     # CuPy copies onto the current device
        return cupy.asarray(array)


def to_numpy(array):
    """A NumPy array with the same values (copies from the GPU; no copy on the CPU)."""
    if _is_cupy_array(array):
        return array.get()
    return np.asarray(array)


# --- random numbers ---------------------------------------------------------
# One seeded NumPy generator drives initialisation, dropout and shuffling
# defaults; manual_seed also seeds CuPy's generator when CuPy is in use.
_rng = np.random.default_rng(0)
_seed = None  # the last manual_seed, applied to CuPy when it is first imported


def _seed_cupy(seed):
    try:
        _cupy.random.seed(seed)
    except Exception:  # CuPy installed but no GPU: nothing to seed
        pass


def manual_seed(seed):
    """Seed minise's random numbers (NumPy, and CuPy now or when it loads), like ``torch.manual_seed``."""
    global _rng, _seed
    _rng = np.random.default_rng(seed)
    _seed = seed
    if _cupy is not None:
        _seed_cupy(seed)
    return _rng


def rng():
    """The global NumPy ``Generator`` that ``manual_seed`` resets."""
    return _rng


def random_uniform(shape, like):
    """Uniform samples in [0, 1) of ``shape``, on ``like``'s device and in its float dtype.

    On the CPU they come from the global generator :func:`rng` (so
    ``manual_seed`` makes them reproducible); on a GPU from CuPy's generator,
    which ``manual_seed`` seeds too. Used by dropout.
    """
    dtype = like.dtype if like.dtype in (np.float32, np.float64) else np.float64
    if _is_cupy_array(like):
        with like.device:
            return _cupy.random.random(shape, dtype=dtype).astype(like.dtype, copy=False)
    return _rng.random(shape, dtype=dtype).astype(like.dtype, copy=False)


def get_rng_state():
    """The global generator's state as a plain dict (for checkpoints)."""
    return _rng.bit_generator.state


def set_rng_state(state):
    """Restore a state returned by :func:`get_rng_state`."""
    _rng.bit_generator.state = state


# --- the allocator ------------------------------------------------------------
def keep_freed_memory():
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS.

    A training step allocates and frees the same large buffers (im2col
    matrices, activations) every step. By default glibc serves blocks over
    128 KiB with fresh ``mmap`` pages and hands them back on ``free``, so each
    step page-faults its buffers in again; keeping them in the heap made an
    SE-ResNet-20 step about 1.3x faster here (docs/benchmarks.md). Affects the
    whole process; used by ``minise train`` and ``minise bench train``.
    Returns False (and changes nothing) where the C library is not glibc.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**30))


# --- the CPU: NumPy's BLAS threads, the processor's name and vector ISA --------
_openblas_functions = {}   # names -> the function found (looked up once: reading /proc/self/maps takes 0.6 ms)


def _openblas_function(names):
    """A function of the OpenBLAS library NumPy loaded (Linux only), or None.

    NumPy's wheels ship OpenBLAS under prefixed names (``scipy_openblas_...64_``);
    threadpoolctl does this lookup more generally when it is installed.
    """
    names = tuple(names)
    if names not in _openblas_functions:
        _openblas_functions[names] = _find_openblas_function(names)
    return _openblas_functions[names]


def _find_openblas_function(names):
    import ctypes

    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        for name in names:
            if hasattr(lib, name):
                return getattr(lib, name)
    return None


def blas_threads():
    """How many threads NumPy's BLAS (the GEMMs of conv2d and linear) uses, or None if unknown."""
    get = _openblas_function(["scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                              "openblas_get_num_threads"])
    return int(get()) if get is not None else None


def set_blas_threads(n):
    """Ask NumPy's BLAS to use ``n`` threads; returns False when this BLAS can't be told.

    Use ``minise.set_num_threads``, which sets this and minise's own thread pool together.
    """
    import ctypes

    set_ = _openblas_function(["scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                               "openblas_set_num_threads"])
    if set_ is None:
        return False
    set_(ctypes.c_int(n))
    return True


def _cpuinfo():
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def cpu_name():
    """The processor's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or "unknown"


def cpu_isa():
    """The widest x86 vector extension the processor offers: ``"AVX-512"``, ``"AVX2"``, ``"AVX"``,
    ``"SSE"``, or ``"unknown"`` (no ``/proc/cpuinfo``, or not x86). The speed of BLAS, and so of
    every benchmark ratio, depends on it."""
    flags = set()
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse2", "SSE")):
        if flag in flags:
            return name
    return "unknown"
