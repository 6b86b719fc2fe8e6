"""Atomic file writes: a crash, a full disk or a Ctrl-C leaves the old file or the new one, never half.

Every file minise writes goes through :func:`atomic_path`: the content is
written to a temporary file in the same folder, then ``os.replace`` renames it
over the old one. A rename within one folder is atomic.
"""

import contextlib
import os
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text"]


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    If the body raises (or is interrupted), the temporary file is removed and
    ``path`` is untouched::

        with atomic_path("run/curves.png") as tmp:
            fig.savefig(tmp, format="png")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically (temp file, flush, fsync, rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
