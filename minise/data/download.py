"""Downloading dataset files safely: resumable, checksummed, never half-written.

``download_url(url, dest, md5)`` is the one function every dataset uses:

1. If ``dest`` already exists and its MD5 matches, nothing is fetched. A file
   with the wrong MD5 (a truncated copy, a corrupted disk) is fetched again.
2. Bytes stream into ``dest + ".part"`` with a progress bar. If a ``.part``
   file is already there (a download that was interrupted), the request asks
   only for the missing bytes with an HTTP ``Range`` header; a server that
   ignores it (answers 200 instead of 206) makes us start again from zero.
3. Only when the whole file is there and its MD5 matches is ``.part`` renamed
   to ``dest`` (``os.replace``, atomic), so ``dest`` is either absent or right.
4. When the server cannot be reached, :class:`DownloadError` says which file
   to get, from where, and the exact path to put it, for machines without
   internet.
5. A server is not trusted with the size: the transfer stops as soon as it
   passes the known size, the ``Content-Length`` (a non-numeric one counts as
   absent) or, when neither is known, :data:`MAX_DOWNLOAD_BYTES`; a
   ``Content-Length`` or ``Content-Range`` that contradicts the known size is
   refused before a byte is written; and the whole download has a deadline
   (``deadline`` seconds), so a server that trickles a byte at a time cannot
   hold it forever.

Files live in a cache folder: ``~/.cache/minise`` by default, ``$MINISE_DATA``
when that is set, or the ``root`` a dataset is given (``--data-dir``).
"""

import hashlib
import os
import re
import sys
import time
from pathlib import Path

__all__ = ["default_data_dir", "md5sum", "download_url", "DownloadError", "ChecksumError"]

CHUNK = 1 << 20  # bytes read and written per step
MAX_DOWNLOAD_BYTES = 4 << 30  # the most a download of unknown size may bring (tests lower it)
DEADLINE = 6 * 3600.0  # seconds one download_url call may take, all retries included (170 MB at 8 kB/s)


class DownloadError(OSError):
    """A file could not be downloaded (no network, server error, interrupted transfer)."""


class ChecksumError(ValueError):
    """A file's MD5 is not the one expected: it is corrupt or was tampered with."""


def default_data_dir():
    """The folder datasets are cached in: ``$MINISE_DATA`` if set, else ``~/.cache/minise``."""
    env = os.environ.get("MINISE_DATA")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/minise").expanduser()


def md5sum(path, chunk=CHUNK):
    """Hex MD5 digest of a file, read in chunks (a 170 MB archive never sits in memory)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _by_hand(url, dest, md5, size):
    size_text = f", {size:,} bytes" if size else ""
    return (
        f"To install it by hand, download {url} on a machine with internet and put it at "
        f"{dest} (MD5 {md5}{size_text})."
    )


def download_url(url, dest, md5, size=None, progress=True, retries=2, timeout=30.0, deadline=None):
    """Download ``url`` to ``dest`` and check its MD5; return ``dest`` as a Path.

    url: http(s) address.  dest: the final file path (its folder is created).
    md5: the expected hex digest; the file is renamed into place only if it
    matches.  size: the expected size in bytes, if known (for the progress bar
    and to spot an over-long ``.part``).  progress: show a tqdm bar.
    retries: how many times an interrupted transfer is resumed before giving
    up (the ``.part`` file is kept, so calling again resumes too).
    timeout: seconds one read may wait.  deadline: seconds the whole call may
    take (default :data:`DEADLINE`); past it the ``.part`` is kept to resume.

    Raises :class:`DownloadError` when the server cannot be reached, the
    transfer keeps failing, the deadline passes, or the server sends more than
    the file's size (that ``.part`` is deleted); :class:`ChecksumError` when
    the complete file has the wrong MD5 (the bad ``.part`` is deleted, so the
    next call starts clean); an OSError naming ``.part`` when the disk refuses
    to write (full, read-only).
    """
    dest = Path(dest)
    md5 = md5.lower()
    if dest.exists():
        if md5sum(dest) == md5:
            return dest
        print(f"{dest} is corrupt (MD5 mismatch): downloading it again", file=sys.stderr)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = Path(str(dest) + ".part")
    stop_at = time.monotonic() + (DEADLINE if deadline is None else deadline)

    for attempt in range(retries + 1):
        try:
            _fetch_into(url, part, size, progress, timeout, stop_at)
            break
        except _WriteFailed as exc:  # the local disk, not the network: full, read-only, no permission
            raise exc.error from None
        except _Refused as exc:
            part.unlink(missing_ok=True)
            raise DownloadError(f"refused the download of {dest.name} from {url}: {exc}; nothing was kept. "
                                + _by_hand(url, dest, md5, size)) from None
        except _TooSlow as exc:
            raise DownloadError(
                f"download of {url} took longer than its deadline ({exc}); the partial file {part} is kept, "
                "run again to resume. " + _by_hand(url, dest, md5, size)) from None
        except _Interrupted as exc:
            if attempt == retries:
                raise DownloadError(
                    f"download of {url} was interrupted ({exc}) after {part.stat().st_size:,} bytes; "
                    f"the partial file {part} is kept, run again to resume. " + _by_hand(url, dest, md5, size)
                ) from exc
        except OSError as exc:  # URLError, refused connection, timeout, HTTP error
            raise DownloadError(
                f"could not download {dest.name} from {url}: {exc}. " + _by_hand(url, dest, md5, size)
            ) from exc

    got = md5sum(part)
    if got != md5:
        part.unlink()
        raise ChecksumError(
            f"downloaded {dest.name} from {url} but its MD5 is {got}, expected {md5}; "
            f"the bad file was deleted, try again. " + _by_hand(url, dest, md5, size)
        )
    os.replace(part, dest)
    return dest


class _Interrupted(Exception):
    """The connection dropped before the whole file arrived (resumable)."""


class _TooSlow(Exception):
    """The download's deadline passed (resumable later)."""


class _Refused(Exception):
    """The server's answer contradicts what we know of the file (too long, wrong size): not resumable."""


class _WriteFailed(Exception):
    """Writing ``.part`` failed (disk full, read-only...); ``error`` is the OSError, naming the file."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def _content_length(response):
    """The Content-Length as an int, or None when absent, not a number, or negative."""
    value = response.headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _fetch_into(url, part, size, progress, timeout, stop_at):
    """Append the missing bytes of ``url`` to ``part`` (resuming with Range when it exists)."""
    import http.client
    import urllib.error
    import urllib.request

    have = part.stat().st_size if part.exists() else 0
    if size is not None and have >= size:
        if have == size:
            return  # complete already: the caller checks its MD5
        have = 0  # longer than the real file: start again
    request = urllib.request.Request(url, headers={"User-Agent": "minise"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # "range not satisfiable": .part is complete (or wrong)
            exc.close()
            return
        raise
    with response:
        start = 0  # a 200 answer (Range ignored): the whole file comes again
        if response.status == 206:
            first, whole = _content_range(response)
            if first != have:
                part.unlink()
                raise _Interrupted(f"asked for bytes {have}- but the server sent another range")
            if size is not None and whole is not None and whole != size:
                raise _Refused(f"the server says the file has {whole:,} bytes, it has {size:,}")
            start = have
        length = _content_length(response)
        total = start + length if length is not None else size
        if size is not None and total is not None and total != size:
            raise _Refused(f"the server announces {total:,} bytes, the file has {size:,}")
        limit = total if total is not None else MAX_DOWNLOAD_BYTES
        bar = _progress_bar(part.name[: -len(".part")], total, start, progress)
        received = start
        try:
            f = open(part, "ab" if start else "wb")
        except OSError as exc:
            raise _WriteFailed(exc) from None
        try:
            with f:
                while True:
                    if time.monotonic() > stop_at:
                        raise _TooSlow(f"{received:,} bytes received")
                    try:
                        block = response.read1(CHUNK)
                    except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
                        raise _Interrupted(str(exc) or type(exc).__name__) from exc
                    if not block:
                        break
                    if received + len(block) > limit:
                        raise _Refused(f"the server sent more than the {limit:,} bytes expected")
                    _write(f, block, part)
                    received += len(block)
                    if bar is not None:
                        bar.update(len(block))
                _sync(f, part)
        finally:
            if bar is not None:
                bar.close()
    if total is not None and received < total:
        raise _Interrupted(f"got {received:,} of {total:,} bytes")


def _write(f, block, part):
    try:
        f.write(block)
    except OSError as exc:
        raise _WriteFailed(OSError(exc.errno, exc.strerror, str(part))) from None


def _sync(f, part):
    try:
        f.flush()
        os.fsync(f.fileno())
    except OSError as exc:
        raise _WriteFailed(OSError(exc.errno, exc.strerror, str(part))) from None


def _content_range(response):
    """(first byte, total size) of a 206 answer, from ``Content-Range: bytes START-END/TOTAL``.

    Either is None when absent or unreadable (TOTAL may be ``*``).
    """
    match = re.match(r"bytes (\d+)-\d*/(\d+|\*)", response.headers.get("Content-Range", "").strip())
    if not match:
        return None, None
    whole = match.group(2)
    return int(match.group(1)), (int(whole) if whole != "*" else None)


def _progress_bar(name, total, initial, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name)
