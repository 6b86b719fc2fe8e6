"""Strings read from files, made safe to print: control characters escaped; and ``open_log``,
which opens a run folder's CSV log only when it is a regular file of a sane size.

A class name in a checkpoint, a model name in a config, a member name in a zip
can hold an escape sequence that rewrites the terminal (``"\\x1b[2J"`` clears
it), a carriage return that overwrites the line it is on, or a right-to-left
override that makes text read backwards. :func:`printable` is what minise
prints instead of such a string.
"""

import csv
import os
import unicodedata
from pathlib import Path

__all__ = ["printable", "open_log", "read_log_rows", "describe_damage", "MAX_LOG_BYTES"]

_ESCAPED = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}  # control, format (bidi), separators, surrogates, unassigned


def printable(text):
    """``text`` (any object: ``str()`` of it) with every control or invisible format character escaped.

    Letters of every script, digits, punctuation and spaces stay as they are;
    ``"\\n"`` becomes ``\\n``, ESC ``\\x1b``, U+202E ``\\u202e``, so the result is one line.

    >>> printable("cat\\x1b[2J")
    'cat\\\\x1b[2J'
    """
    text = str(text)
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == " " or unicodedata.category(ch) not in _ESCAPED:
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


# The most a CSV log of a run folder may hold. minise's largest is grad_health.csv with --grad-health 1:
# about 6 KB a step for a ResNet-20, so 30,000 steps in 256 MiB; metrics.csv and lr.csv are far smaller.
MAX_LOG_BYTES = 256 << 20


def open_log(path):
    """Open a run folder's CSV log for reading, as ``open(path, newline="")``, after checking that it
    is a regular file (a device such as /dev/zero, a pipe or a folder could be read forever, or
    block) of at most :data:`MAX_LOG_BYTES` (its rows become Python dicts, about 10x the bytes).
    Raises ValueError naming the file otherwise; FileNotFoundError when it is absent."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} is not a regular file")
    f = open(path, newline="")
    size = os.fstat(f.fileno()).st_size
    if size > MAX_LOG_BYTES:
        f.close()
        raise ValueError(f"{path} holds {size:,} bytes, over the {MAX_LOG_BYTES:,}-byte limit for a run's log")
    return f


def read_log_rows(path, types, rest=None):
    """The rows of a run's CSV log, each a dict of its values converted: ``types`` ({column: int,
    float or str}) names the columns the header must have; every other column of the header is
    converted with ``rest`` (``float``, ``str``...), or left out when ``rest`` is None.

    Opens ``path`` with :func:`open_log` (a regular file of a sane size). Raises ValueError naming
    the file and, for a row, its line: an empty file (no header), a column missing from the header,
    a row with more or fewer values than the header, a value that is no number of its column's
    type. (``int("2.5")`` and ``float("")`` would say only "invalid literal" or name a NoneType.)
    """
    with open_log(path) as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames
        if not header:
            raise ValueError(f"{path} is damaged: it is empty (no header line)")
        missing = [c for c in types if c not in header]
        if missing:
            raise ValueError(f"{path} is damaged: its header has no column {missing[0]!r} (it has "
                             f"{','.join(header)})")
        kinds = dict(types) if rest is None else {c: types.get(c, rest) for c in header}
        rows = []
        for row in reader:
            if None in row or None in row.values():      # more values than the header / fewer
                count = len(header) + len(row.get(None, ())) - sum(v is None for v in row.values())
                raise ValueError(f"{path} is damaged: line {reader.line_num} has {count} values where the "
                                 f"header has {len(header)}")
            values = {}
            for column, kind in kinds.items():
                try:
                    values[column] = kind(row[column])
                except ValueError:
                    what = "an integer" if kind is int else "a number"
                    raise ValueError(f"{path} is damaged: on line {reader.line_num}, {column} is "
                                     f"{row[column]!r}, not {what}") from None
            rows.append(values)
    return rows


def describe_damage(path, exc):
    """What went wrong reading ``path``, for a one-line error: ``exc``'s own words when they begin with
    the file's name (:func:`read_log_rows`, :func:`open_log`: "x.csv is damaged: ...", "x.csv is not a
    regular file"), else ``"<path> is damaged (<exc>)"``."""
    text = str(exc)
    return text if text.startswith(str(path)) else f"{path} is damaged ({text})"

