"""What every command shares: the one-line error and the exit codes.

Exit codes (docs/training.md lists them too): 0 done; 1 the training loss became
NaN or infinite; 2 bad input (a flag, a file, missing data); 130 interrupted (Ctrl-C).
"""

import sys

EXIT_OK, EXIT_NON_FINITE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def error(command, message):
    """Print ``minise <command>: error: <message>`` to stderr; returns the usage exit code 2."""
    print(f"minise {command}: error: {message}", file=sys.stderr)
    return EXIT_USAGE
