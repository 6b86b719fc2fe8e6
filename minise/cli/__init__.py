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
    usage block before its line). Sub-commands get this class too."""

    def error(self, message):
        _refuse(self.prog, message)


def _refuse_missing_subcommand(parser, args):
    """``minise`` or ``minise bench`` without its COMMAND or BENCHMARK: refused as a missing required
    argument, in argparse's words plus the choices (``minise bench: error: the following arguments are
    required: BENCHMARK (choose from 'ops', 'train'); see minise bench --help``), exit 2. Checked after
    the unrecognized flags (``minise bench --bogus`` names ``--bogus``), hence not ``required=True``."""
    while True:
        action = next(a for a in parser._actions if a.nargs == argparse.PARSER)
        chosen = getattr(args, action.dest, None)
        if chosen is None:
            _refuse(parser.prog, f"the following arguments are required: {action.metavar} "
                                 f"(choose from {', '.join(map(repr, action.choices))})")
        parser = action.choices[chosen]


class _VersionAsked(Exception):
    """Raised by ``--version`` the moment argparse reads it; :func:`main` answers it."""


class _Version(argparse.Action):
    """``--version``: argparse's own version action prints and exits at once, ignoring the rest of the
    line (``minise --version extra`` printed the version, exit 0); this one leaves the answer to
    :func:`main`, which refuses anything else on the line."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=None, help="print minise's version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        raise _VersionAsked


def build_parser():
    parser = _Parser(
        prog="minise",
        description="Squeeze-and-Excitation networks from scratch on NumPy/CuPy.",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add(sub)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except _VersionAsked:     # it stands alone, or the rest is refused as argparse refuses what it cannot use
        rest = list(argv)
        del rest[next(i for i, word in enumerate(rest) if len(word) > 2 and "--version".startswith(word))]
        if rest:
            _refuse("minise", f"unrecognized arguments: {' '.join(rest)} (--version takes none)")
        print(f"minise {__version__}")
        return 0
    if extra:     # argparse would blame the top-level parser: name the sub-command the flags were given to
        words = [w for w in (getattr(args, "command", None), getattr(args, "benchmark", None)) if w]
        _refuse(" ".join(["minise", *words]), f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "run", None):      # only a command's (or a benchmark's) parser sets run
        _refuse_missing_subcommand(parser, args)
    return guarded(args.command, args.run, args) or 0
