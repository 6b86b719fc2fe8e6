"""``minise info``: versions, the processor and threads, the array backends, and whether a GPU is usable."""

import os
import platform
import sys

from .. import backend, parallel
from ..version import __version__


def run(args):
    """Print versions, the array backends available and whether a GPU is usable."""
    import numpy as np

    print(f"minise      {__version__}")
    print(f"python      {platform.python_version()} ({sys.executable})")
    print(f"numpy       {np.__version__}")
    if backend.cupy_available():
        import cupy

        print(f"cupy        {cupy.__version__}")
    else:
        print("cupy        not installed (pip install 'minise[gpu]' for GPU support)")
    try:
        import torch

        print(f"torch       {torch.__version__} (used only by the parity tests and `bench --compare torch`)")
    except ImportError:
        print("torch       not installed (optional: parity tests and benchmarks against PyTorch)")
    print(f"cpu         {backend.cpu_name()} ({backend.cpu_isa()}), {os.cpu_count()} cores; threads: "
          f"{parallel.get_num_threads()} (ms.set_num_threads), NumPy's BLAS {backend.blas_threads() or 'unknown'}")
    backends = ["numpy (cpu)"] + (["cupy (cuda)"] if backend.cupy_available() else [])
    print(f"backends    {', '.join(backends)}")
    usable, reason = backend.cuda_status()
    print(f"gpu         {'usable' if usable else 'not usable'}: {reason}")
    return 0


def add(sub):
    p = sub.add_parser("info", help="versions, backends and whether a GPU is usable",
                       description="Print minise's and its libraries' versions, the processor, its vector ISA and "
                                   "the thread count, and whether CuPy and a GPU are usable (and if not, why).")
    p.set_defaults(run=run)
