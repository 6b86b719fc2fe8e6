"""The ``minise`` command line: ``minise info | train | eval | bench | summary | plot``.

Each subcommand is registered by one small ``_add_<name>`` function below,
which declares its arguments and the function that runs it. The heavy
modules (training, plotting, benchmarks) are imported only when their
command runs, so ``minise --help`` stays instant.
"""

import argparse
import platform
import sys

from . import __version__, backend


def _info(args):
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
    if backend.gpu_available():
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        print(f"gpu         usable: {cupy.cuda.runtime.getDeviceCount()} device(s), cuda:0 = {name}")
    else:
        print("gpu         not usable (device='cpu' only)")
    return 0


def _add_info(sub):
    p = sub.add_parser("info", help="versions, backends and whether a GPU is usable")
    p.set_defaults(run=_info)


def _add_bench(sub):
    from . import bench  # light: numpy and minise only; torch is imported when a benchmark runs

    p = sub.add_parser("bench", help="time minise against PyTorch on the CPU: `minise bench ops`",
                       description="Benchmarks, each a sub-command: `ops` times forward+backward of every op "
                                   "at SE-ResNet-20 shapes next to PyTorch with the same thread count.")
    bench.add_subcommands(p)


COMMANDS = [_add_info, _add_bench]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minise",
        description="Squeeze-and-Excitation networks from scratch on NumPy/CuPy.",
    )
    parser.add_argument("--version", action="version", version=f"minise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    return args.run(args) or 0


if __name__ == "__main__":
    raise SystemExit(main())
