"""The ``minise`` command line: ``minise info | train | eval | plot | bench | summary | export``.

One module per command, each with ``add(sub)`` (its argparse arguments) and
``run(args)`` (parse, call the library, print; returns the exit code).
``common.py`` holds the one-line error, the exit codes, and the guard that
turns every expected failure of a command into one line and its exit code.
"""

import argparse
import sys

from ..version import __version__
from . import bench, eval, export, info, plot, summary, train
from .common import error, guarded

COMMANDS = [info, train, eval, plot, bench, summary, export]


def _refuse(prog, message):
    """Exit 2 with one line like every other minise error, pointing to ``prog``'s help:
    ``minise train: error: argument --model: invalid choice: ...; see minise train --help``."""
    sys.exit(error(prog.removeprefix("minise").strip(), f"{message}; see {prog} --help"))


class _Parser(argparse.ArgumentParser):
    """argparse, its errors through :func:`_refuse` (argparse's own ``error`` prints the whole
    usage block before its line). Sub-commands get this class too.

    A missing sub-command (``minise``, ``minise bench``: their sub-parsers are ``required``) is
    argparse's "the following arguments are required: BENCHMARK"; the line adds the choices.
    """

    def error(self, message):
        for action in self._actions:
            if action.nargs == argparse.PARSER and message.endswith(f"are required: {action.metavar}"):
                message += f" (choose from {', '.join(map(repr, action.choices))})"
        _refuse(self.prog, message)


def build_parser():
    parser = _Parser(
        prog="minise",
        description="Squeeze-and-Excitation networks from scratch on NumPy/CuPy.",
    )
    parser.add_argument("--version", action="version", version=f"minise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:     # argparse would blame the top-level parser: name the sub-command the flags were given to
        words = [w for w in (getattr(args, "command", None), getattr(args, "benchmark", None)) if w]
        _refuse(" ".join(["minise", *words]), f"unrecognized arguments: {' '.join(extra)}")
    return guarded(args.command, args.run, args) or 0
