"""What every command shares: the one-line error, the exit codes, and the guard that maps failures to them.

Exit codes (docs/files.md lists them with examples; docs/training.md links there):

====  ==========================================================================
code  meaning
====  ==========================================================================
0     done
1     training diverged: the loss, a parameter or a buffer became NaN or infinite
2     bad input: a flag or value, a file or folder that does not exist, missing data
3     a bad file: a checkpoint or data file that is damaged, not minise's, fails
      its checksum or its schema, or would not fit the run it claims to continue
4     the file system refused: disk full (ENOSPC, EDQUOT), read-only (EROFS),
      permission denied (EACCES, EPERM), an I/O error of the disk
5     a download failed: no network, a server error, a misbehaving server,
      an interrupted transfer (the partial file is kept to resume)
130   interrupted with Ctrl-C (what was saved is said above)
====  ==========================================================================

Each expected failure prints exactly one line, ``minise <command>: error: ...``,
to stderr. Anything else propagates as a traceback: a traceback means a bug in
minise, not in the user's input.
"""

import errno
import math
import os
import pickle
import sys
import tempfile
from pathlib import Path

from .. import backend
from ..data import ChecksumError, DownloadError
from ..io import CheckpointError, SerializationError, printable, refuse_non_regular
from ..training import NonFiniteLossError, find_checkpoint

EXIT_OK, EXIT_NON_FINITE, EXIT_USAGE, EXIT_BAD_FILE, EXIT_IO, EXIT_DOWNLOAD = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_NON_FINITE: "training diverged: the loss, a parameter or a buffer became NaN or infinite",
    EXIT_USAGE: "bad input: a flag or value, a file or folder that does not exist, missing data",
    EXIT_BAD_FILE: "a bad file: damaged, not minise's, wrong checksum or schema, or not fitting its run",
    EXIT_IO: "the file system refused: disk full, read-only, permission denied, disk I/O error",
    EXIT_DOWNLOAD: "a download failed: no network, server error or misbehaviour, interrupted transfer",
    EXIT_INTERRUPTED: "interrupted with Ctrl-C",
}

# errno -> what the user should hear; the file system refused to do something
_FS_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "input/output error of the disk",
}


def error(command, message, code=EXIT_USAGE):
    """Print ``minise <command>: error: <message>`` (one line, control characters escaped) to stderr;
    ``minise: error: ...`` for an empty command (the top-level parser).

    Returns ``code`` (default 2, bad input), so ``return error(...)`` ends a command.
    """
    print(f"{' '.join(['minise', command]).strip()}: error: {printable(message)}", file=sys.stderr)
    return code


def bad_number_flag(args, at_least_1=(), at_least_0=()):
    """The one check of numeric flags for every command: the message for the first flag (an
    argparse dest) in ``at_least_1`` that is not an integer of 1 or more, or in ``at_least_0``
    that is not an integer (or, for a float flag, a finite number) of 0 or more (nan and inf
    refused); None when all are fine or not given.
    Use as ``if (message := bad_number_flag(...)): return error(command, message)``.
    """
    for dests, least in ((at_least_1, 1), (at_least_0, 0)):
        for dest in dests:
            value = getattr(args, dest, None)
            if value is not None and not (math.isfinite(value) and value >= least):
                what = ("a positive integer" if least else "an integer, 0 or more" if isinstance(value, int)
                        else "a finite number, 0 or more")     # a count (--subset) or a number (--pause)
                return f"--{dest.replace('_', '-')} must be {what}, got {value}"
    return None


def plot_text(text):
    """A string from a file, safe as a Matplotlib label: control characters escaped, ``$`` kept literal."""
    return printable(text).replace("$", r"\$")


def describe_os_error(exc):
    """One readable sentence for an OSError: what failed, on which file, and what to do."""
    where = f" {exc.filename}" if exc.filename else ""
    reason = _FS_ERRORS.get(exc.errno) or exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"cannot write{where}: {reason}. Files already there are unchanged (every write is atomic); "
                "free some space and run the command again")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot access{where}: {reason}. Choose a folder you can write to (--out)"
    if exc.errno == errno.EIO:
        return f"cannot read or write{where}: {reason}"
    if exc.errno == errno.ENAMETOOLONG:
        return (f"cannot use{where}: the name is too long for the file system (most take 255 bytes a file "
                "name, 4096 a path); choose a shorter one")
    if exc.filename is not None and exc.strerror:   # "x: Is a directory", not "[Errno 21] Is a directory: 'x'"
        return f"{exc.filename}{f' -> {exc.filename2}' if exc.filename2 else ''}: {exc.strerror}"
    return exc.strerror if exc.strerror else str(exc)


def exit_code_for(exc):
    """The exit code of an expected failure, or None when ``exc`` is a bug (and should be a traceback)."""
    if isinstance(exc, NonFiniteLossError):
        return EXIT_NON_FINITE
    if isinstance(exc, (SerializationError, CheckpointError, ChecksumError, pickle.UnpicklingError)):
        return EXIT_BAD_FILE
    if isinstance(exc, DownloadError):
        return EXIT_DOWNLOAD
    if isinstance(exc, (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError)):
        return EXIT_USAGE
    if isinstance(exc, OSError):
        return EXIT_IO
    if isinstance(exc, (ValueError, backend.DeviceError)):
        return EXIT_USAGE
    return None


def guarded(command, body, *args):
    """Run ``body(*args)`` (a command's ``run``); turn each expected failure into one line and its exit code.

    Unexpected exceptions propagate unchanged: a traceback means a bug in minise.
    """
    try:
        return body(*args)
    except KeyboardInterrupt:
        print(f"\nminise {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read the output stopped reading (``minise eval RUN | head -1``): end quietly, as Unix
        # tools do. stdout now goes to /dev/null, so that Python's flush at exit does not fail again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 -- re-raised below unless it is an expected failure
        code = exit_code_for(exc)
        if code is None:
            raise
        if isinstance(exc, backend.DeviceError):
            return error(command, device_message(exc, getattr(args[0], "device", None) if args else None), code)
        if isinstance(exc, OSError) and not isinstance(exc, DownloadError):
            return error(command, describe_os_error(exc), code)
        return error(command, exc, code)


def device_message(exc, typed):
    """A DeviceError in the command line's words: it names ``--device`` and what was typed there, and its
    remedy is the flag (``--device cpu``), not the Python argument (``device='cpu'``)."""
    text = str(exc).replace("device='cpu'", "--device cpu")
    return f"--device {typed}: {text}" if typed is not None else f"--device: {text}"


def unwritable(command, what, folder):
    """None when a file can be created in ``folder`` (:func:`check_writable`); otherwise print one line
    naming ``what`` the user typed (``--out runs/x.png``) and return the exit code."""
    try:
        check_writable(folder)
    except OSError as exc:
        return error(command, f"{what}: {describe_os_error(exc)}", exit_code_for(exc))
    return None


def checkpoint_at(typed, which="best"):
    """The checkpoint that ``CKPT`` as typed names (:func:`minise.training.find_checkpoint`: a .ckpt file, or
    a run folder's best.ckpt, else its last.ckpt), after refusing what is there but is no checkpoint file:
    a device (a link to /dev/zero, which could be read forever), a pipe, a socket, or a folder named
    ``*.ckpt`` that holds no checkpoint raise CheckpointError (a bad file, exit 3) saying what it is; a
    broken link raises FileNotFoundError (exit 2). The messages name ``typed``."""
    path = Path(typed)
    refuse_non_regular(typed, "(its best.ckpt, else its last.ckpt)")   # named as typed
    try:
        return find_checkpoint(path, which)
    except FileNotFoundError:
        if path.is_dir() and path.suffix == ".ckpt":   # x.ckpt/ with no best.ckpt or last.ckpt in it
            raise CheckpointError(f"{typed} is a folder, not a checkpoint file, and holds no best.ckpt or "
                                  "last.ckpt: pass a .ckpt file minise wrote, or a run folder") from None
        raise


def not_a_folder(path):
    """Why ``path`` cannot be a folder, or None when it is one or can be made: ``"x is a file, not a
    folder"`` where ``x`` is ``path`` or its nearest existing parent (as typed, ``~`` expanded) and is a
    file ("is not a folder" for a device, a pipe or a broken link)."""
    probe = Path(path).expanduser()
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if probe.is_dir():
        return None
    return f"{probe} is a file, not a folder" if probe.is_file() else f"{probe} is not a folder"


def bad_data_dir(args):
    """The message when the data folder, ``--data-dir`` or else ``$MINISE_DATA``, is a file (or lies under
    one): it could be neither read nor made. None when it is fine or not given."""
    name, typed = "--data-dir", getattr(args, "data_dir", None)
    if typed is None:
        name, typed = "$MINISE_DATA", os.environ.get("MINISE_DATA") or None
    problem = typed is not None and not_a_folder(typed)
    return f"{name} {typed}: {problem}" if problem else None


def check_writable(folder):
    """Raise OSError (EROFS, EACCES, ENOSPC...) unless a file can be created in ``folder``.

    A folder that does not exist yet is checked through its nearest existing
    parent, and nothing is created: the check leaves the disk as it was. Run it
    before building a dataset and a model, so an unwritable --out fails in a second.
    A file where the folder (or a parent) should be: NotADirectoryError, its message
    :func:`not_a_folder`'s (``runs is a file, not a folder``).
    """
    problem = not_a_folder(folder)
    if problem:
        raise NotADirectoryError(errno.ENOTDIR, problem)
    folder = Path(folder).absolute()
    probe_in = folder
    while not probe_in.exists() and probe_in != probe_in.parent:
        probe_in = probe_in.parent
    try:
        fd, name = tempfile.mkstemp(prefix=".minise-write-check-", suffix=".tmp", dir=probe_in)
    except OSError as exc:
        if exc.errno in _FS_ERRORS:     # described by describe_os_error, with the folder asked for
            raise OSError(exc.errno, exc.strerror, str(folder)) from None
        # e.g. /proc, which exists but answers ENOENT: say what failed, not only the errno's words
        raise OSError(exc.errno, f"cannot create a file in {probe_in} ({exc.strerror})") from None
    os.close(fd)
    os.unlink(name)
