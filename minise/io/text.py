"""Strings read from files, made safe to print: control characters escaped.

A class name in a checkpoint, a model name in a config, a member name in a zip
can hold an escape sequence that rewrites the terminal (``"\\x1b[2J"`` clears
it), a carriage return that overwrites the line it is on, or a right-to-left
override that makes text read backwards. :func:`printable` is what minise
prints instead of such a string.
"""

import unicodedata

__all__ = ["printable"]

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
