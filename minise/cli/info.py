"""``minise info``: versions, the array backends, and whether a GPU is usable."""

import platform
import sys

from .. import backend
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
    backends = ["numpy (cpu)"] + (["cupy (cuda)"] if backend.cupy_available() else [])
    print(f"backends    {', '.join(backends)}")
    usable, reason = backend.cuda_status()
    print(f"gpu         {'usable' if usable else 'not usable'}: {reason}")
    return 0


def add(sub):
    p = sub.add_parser("info", help="versions, backends and whether a GPU is usable")
    p.set_defaults(run=run)
