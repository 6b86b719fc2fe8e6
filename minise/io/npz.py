"""``load_npz``: read a NumPy ``.npz`` file (as ``np.savez`` writes it) with ``ms.load``'s budgets.

``np.load`` trusts a file: a member compressed a thousandfold, or an ``.npy`` header that
declares a huge shape, makes it allocate far more memory than the file holds. minise writes
small ``.npz`` files of its own (``excitations.npz``) that a user may be sent by someone else,
so it reads them the way ``ms.load`` reads a checkpoint (see ``minise.io.serialization``).
"""

import os
import struct
import zipfile
import zlib

from .serialization import SerializationError, _file_size, _from_content, _Reader, _Refused, open_regular

__all__ = ["load_npz"]


def load_npz(path):
    """Every array of the ``.npz`` file ``path``: a dict, member name (without ``.npy``) -> NumPy array.

    Before reading a member it checks that it is an ``.npy`` file stored uncompressed (as
    ``np.savez`` stores it), not encrypted, inside the file, holding no pickled objects, and
    that its declared shape x itemsize is exactly the bytes it holds: the arrays never take
    more memory than the file. Raises :class:`SerializationError` (a ValueError) naming the
    file and the member for anything wrong with the content, or when ``path`` is not a regular
    file (a device such as ``/dev/zero``, a pipe); OSError when it cannot be opened or read at all.
    ``np.savez_compressed`` files are refused (deflated members).
    """
    name = os.fspath(path)
    with open_regular(path, "load_npz") as file:
        try:
            zf = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OverflowError, OSError) as exc:
            if isinstance(exc, OSError) and not _from_content(exc):
                raise
            raise SerializationError(f"{name} is not an .npz file (not a zip: {exc})") from None
        reader = _Reader(zf, name, _file_size(file))
        with zf:
            try:
                arrays = {}
                for member in zf.namelist():
                    if not member.endswith(".npy") or member[:-4] in arrays:
                        raise _Refused(f"member {member!r} is not an .npy array of its own")
                    arrays[member[:-4]] = reader.read_npy(member)
                return arrays
            except _Refused as exc:
                raise SerializationError(f"{name} is damaged or not an .npz file: {exc}") from None
            except OSError as exc:
                if not _from_content(exc):
                    raise
                raise SerializationError(f"{name} is damaged (member {reader.member}): {exc}") from None
            except (zipfile.BadZipFile, ValueError, EOFError, OverflowError, NotImplementedError, MemoryError,
                    zlib.error, struct.error) as exc:
                raise SerializationError(f"{name} is damaged (member {reader.member}): "
                                         f"{type(exc).__name__}: {exc}") from None
