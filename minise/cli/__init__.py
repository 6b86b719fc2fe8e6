"""The ``minise`` command line: ``minise info | train | eval | plot | bench | summary | export``.

One module per command, each with ``add(sub)`` (its argparse arguments) and
``run(args)`` (parse, call the library, print; returns the exit code).
``common.py`` holds the one-line error, the exit codes, and the guard that
turns every expected failure of a command into one line and its exit code.
"""

import argparse

from ..version import __version__
from . import bench, eval, export, info, plot, summary, train
from .common import guarded

COMMANDS = [info, train, eval, plot, bench, summary, export]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minise",
        description="Squeeze-and-Excitation networks from scratch on NumPy/CuPy.",
    )
    parser.add_argument("--version", action="version", version=f"minise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    return guarded(args.command, args.run, args) or 0
