"""Atomic file writes: a crash, a full disk or a Ctrl-C leaves the old file or the new one, never half.

Every file minise writes goes through :func:`atomic_path`: the content is
written to a temporary file in the same folder, flushed to disk (``os.fsync``),
given the mode a plain ``open(path, "w")`` would leave ``path`` with (a new file:
0o666 minus the umask, 0644 under umask 022; a file written over: its own mode),
whoever created the temporary file and with what mode (safetensors' writer makes
its files 0600), then ``os.replace`` renames it
over the old one (a rename within one folder is atomic) and the folder itself
is synced, so the rename survives a power cut.

Temporary files are named ``.<name>.<pid>.<8 hex>.tmp`` (``<name>`` cut short where the
whole would pass the file system's 255 bytes). A process killed with
SIGKILL (or a power cut) mid-write cannot remove its own; the next atomic write
into the same folder removes every such file whose process is gone
(:func:`remove_stale_temps`), so none accumulate.
"""

import codecs
import contextlib
import os
import re
import secrets
import stat
import sys
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "remove_stale_temps", "fsync_folder",
           "current_umask", "TEMP_PATTERN"]

# .<name>.<pid>.<hex>.tmp, and the two older spellings: .<name>.<hex>.tmp (ms.save) and .<name>.tmp-<pid>
TEMP_PATTERN = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[0-9a-f]{8}\.tmp$"
                          r"|^\.(?P<old>.+)\.tmp-(?P<oldpid>\d+)$")


# The longest file name most file systems take (ext4, XFS, btrfs, APFS, NTFS: 255 bytes or UTF-16 units).
NAME_MAX = 255


def _temp_name(path):
    """``.<name>.<pid>.<8 hex>.tmp`` next to ``path``; ``<name>`` cut short (at a character boundary)
    where the whole would pass ``NAME_MAX`` bytes, so that any name the file system takes for ``path``
    also gets a temporary file (a 240-byte name failed with "File name too long")."""
    tail = f".{os.getpid()}.{secrets.token_hex(4)}.tmp"
    room = NAME_MAX - 1 - len(tail)
    name, raw = path.name, os.fsencode(path.name)
    if len(raw) > room:
        # an incremental decoder keeps back a character the cut splits; bytes that are no UTF-8 (a Latin-1
        # name on Linux) stay as they are: dropped, b"\xff" left "..<pid>.<hex>.tmp", which TEMP_PATTERN
        # reads as an old temporary file without a process id, removed by the next write into the folder
        decoder = codecs.getincrementaldecoder(sys.getfilesystemencoding())(sys.getfilesystemencodeerrors())
        name = decoder.decode(raw[:room], final=False)
    return path.with_name(f".{name}{tail}")


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists but belongs to someone else, or cannot tell
        return True
    return True


def remove_stale_temps(folder):
    """Remove the temporary files of interrupted atomic writes in ``folder``; returns their paths.

    A temporary file is stale when the process that wrote it no longer runs
    (files of the older name without a process id are always stale). Files of
    other names are never touched, nor temporary files of a live process.
    """
    folder = Path(folder)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = TEMP_PATTERN.match(name)
        if match is None:
            continue
        pid = match.group("pid") or match.group("oldpid")
        if pid is not None and _alive(int(pid)):
            continue
        try:
            os.unlink(folder / name)
            removed.append(folder / name)
        except OSError:  # gone already, or not ours to remove
            pass
    return removed


def fsync_folder(folder):
    """Make a rename in ``folder`` durable (POSIX); not possible (nor needed) on every platform."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def current_umask():
    """The process's umask, read without changing it where the system allows.

    Linux (4.7+) states it in ``/proc/self/status`` (``Umask:\t0022``); elsewhere it is read
    with ``os.umask(0)`` and set back at once, which another thread creating a file in
    between would see (POSIX offers no other way).
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mode_for(path):
    """The mode ``open(path, "w")`` leaves ``path`` with: an existing regular file keeps its own (a
    checkpoint made private with ``chmod 600`` stays private when it is saved again); a new file
    gets 0o666 minus the umask."""
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        return stat.S_IMODE(st.st_mode)
    return 0o666 & ~current_umask()


def _sync_and_set_mode(tmp, path):
    """Give the finished temporary file ``tmp`` the mode ``open(path, "w")`` would leave ``path`` with
    (:func:`_mode_for`), then fsync it: its bytes are on the disk before the rename makes it the file."""
    fd = os.open(tmp, (os.O_RDWR if os.name == "nt" else os.O_RDONLY) | getattr(os, "O_BINARY", 0))
    try:
        mode = _mode_for(path)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        else:                      # Windows: only the read-only flag exists
            os.chmod(tmp, mode)
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path, make_parents=True):
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    After the body, the temporary file is given the mode a plain ``open(path, "w")`` would leave
    ``path`` with (a new file: 0o666 minus the umask; one written over: its own mode; whatever
    mode the writer chose) and fsynced, then renamed
    onto ``path``; the folder is synced after. If the body raises (or is interrupted), the
    temporary file is removed and ``path`` is untouched::

        with atomic_path("run/curves.png") as tmp:
            fig.savefig(tmp, format="png")

    make_parents: create ``path``'s folder when missing (else FileNotFoundError).
    An OSError without a file name (ENOSPC from a write, say) or naming the
    temporary file (``os.replace`` onto a folder) is raised again with ``path``
    as its only ``filename``, so the message says which file failed.
    """
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    remove_stale_temps(path.parent)
    tmp = _temp_name(path)
    try:
        yield tmp
        _sync_and_set_mode(tmp, path)
        os.replace(tmp, path)
    except OSError as exc:
        # no file name (ENOSPC from a write), or the temporary file's, which means nothing to the caller
        # (os.replace onto a folder: "Is a directory: '.x.123.ab12cd34.tmp' -> 'x'"): name ``path``
        if exc.errno is not None and (exc.filename is None or str(exc.filename) == str(tmp)):
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc
        raise
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    fsync_folder(path.parent)


def atomic_write_bytes(path, write, make_parents=True):
    """Write ``path`` atomically: ``write(f)`` fills the open binary temporary file, then flush, fsync, rename.

    The temporary file is created with O_EXCL (never writing into someone else's
    file) and mode 0o666 minus the umask, like ``open``; :func:`atomic_path`
    fsyncs it before the rename.
    """
    with atomic_path(path, make_parents=make_parents) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            write(f)


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically (temp file, flush, fsync, rename), UTF-8."""
    atomic_write_bytes(path, lambda f: f.write(text.encode("utf-8")))
