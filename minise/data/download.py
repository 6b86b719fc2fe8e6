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

Files live in a cache folder: ``~/.cache/minise`` by default, ``$MINISE_DATA``
when that is set, or the ``root`` a dataset is given (``--data-dir``).
"""

import hashlib
import os
import re
import sys
from pathlib import Path

__all__ = ["default_data_dir", "md5sum", "download_url", "DownloadError", "ChecksumError"]

CHUNK = 1 << 20  # bytes read and written per step


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


def download_url(url, dest, md5, size=None, progress=True, retries=2, timeout=30.0):
    """Download ``url`` to ``dest`` and check its MD5; return ``dest`` as a Path.

    url: http(s) address.  dest: the final file path (its folder is created).
    md5: the expected hex digest; the file is renamed into place only if it
    matches.  size: the expected size in bytes, if known (for the progress bar
    and to spot an over-long ``.part``).  progress: show a tqdm bar.
    retries: how many times an interrupted transfer is resumed before giving
    up (the ``.part`` file is kept, so calling again resumes too).

    Raises :class:`DownloadError` when the server cannot be reached or the
    transfer keeps failing, and :class:`ChecksumError` when the complete file
    has the wrong MD5 (the bad ``.part`` is deleted, so the next call starts
    clean).
    """
    dest = Path(dest)
    md5 = md5.lower()
    if dest.exists():
        if md5sum(dest) == md5:
            return dest
        print(f"{dest} is corrupt (MD5 mismatch): downloading it again", file=sys.stderr)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = Path(str(dest) + ".part")

    for attempt in range(retries + 1):
        try:
            _fetch_into(url, part, size, progress, timeout)
            break
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


def _fetch_into(url, part, size, progress, timeout):
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
            if _range_start(response) != have:
                part.unlink()
                raise _Interrupted(f"asked for bytes {have}- but the server sent another range")
            start = have
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else size
        bar = _progress_bar(part.name[: -len(".part")], total, start, progress)
        received = start
        try:
            with open(part, "ab" if start else "wb") as f:
                while True:
                    try:
                        block = response.read(CHUNK)
                    except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
                        raise _Interrupted(str(exc) or type(exc).__name__) from exc
                    if not block:
                        break
                    f.write(block)
                    received += len(block)
                    if bar is not None:
                        bar.update(len(block))
                f.flush()
                os.fsync(f.fileno())
        finally:
            if bar is not None:
                bar.close()
    if total is not None and received < total:
        raise _Interrupted(f"got {received:,} of {total:,} bytes")


def _range_start(response):
    """First byte of a 206 answer, from ``Content-Range: bytes START-END/TOTAL`` (None if absent)."""
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _progress_bar(name, total, initial, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name)
