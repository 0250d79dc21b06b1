"""Safe file reading: regular files only, and ``.npz`` archives read within a bound.

A path an input names must be a regular file (a FIFO would hang a reader, a device
would never end), opened so that it cannot be swapped for another between the check and
the read (:func:`open_regular`). An ``.npz`` archive's members are read from their
``.npy`` headers first, and refused before anything is inflated when their shapes, kinds
or total size pass the caller's bound (:func:`read_npz`), so a file of a few megabytes of
deflated zeros cannot take the machine's memory.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import IO, BinaryIO

import numpy as np

from ..errors import first_line

__all__ = ["regular_file", "open_regular", "read_npz", "default_max_bytes", "physical_memory"]


def regular_file(
    path: str | os.PathLike, error: type[Exception], what: str = "file", max_bytes: int | None = None
) -> Path:
    """``path`` if it is a regular file of at most ``max_bytes``; else ``error`` naming it.

    Checked before anything reads it: a FIFO would hang a reader, ``/dev/zero`` or
    ``/dev/urandom`` would fill the memory, and a directory or device is not what any
    nnlearn input is. ``max_bytes`` bounds a file by what it claims to be.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO, device or other special file"
        raise error(f"{path}: is {kind}, not a regular {what}; refused")
    if max_bytes is not None and info.st_size > max_bytes:
        raise error(
            f"{path}: {info.st_size:,} bytes is more than a {what} can hold ({max_bytes:,} bytes at most); refused"
        )
    return path


def open_regular(
    path: str | os.PathLike, error: type[Exception], what: str = "file", max_bytes: int | None = None
) -> BinaryIO:
    """``path`` opened for reading in binary, once :func:`regular_file` allows it.

    The file opened is checked again (its ``fstat``), so that a FIFO or device put in the
    file's place between the check and the open is refused all the same; it is opened
    without blocking, so that a FIFO's open cannot hang waiting for a writer.
    """
    regular_file(path, error, what, max_bytes)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (max_bytes is not None and info.st_size > max_bytes):
            raise error(f"{path}: changed into something other than a regular {what} while opened; refused")
        # O_NONBLOCK means nothing to a regular file's reads; it is left as it is.
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def physical_memory() -> int | None:
    """The machine's physical memory in bytes, or None where the system does not say."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX, or not a name this system knows
        return None
    return pages * size if pages > 0 and size > 0 else None


def default_max_bytes() -> int:
    """How much a ``.npz`` may inflate to when its reader gives no bound: a quarter of the
    physical memory (4 GiB where the system does not say), so that one file cannot take
    the machine's memory however well it compresses."""
    memory = physical_memory()
    return memory // 4 if memory else 4 * 2**30


# A member's .npy header: shape, Fortran order, dtype, and its length in bytes.
_Header = tuple[tuple[int, ...], bool, np.dtype, int]
# Read in pieces of this size into the array itself: no second copy of a large array.
_CHUNK = 16 * 2**20


class _Refused(Exception):
    """Why read_npz refuses a file; read_npz raises its caller's error type with it."""


class _Counted:
    """A stream that counts what is read from it: the length of a .npy header."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.count = stream, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        return data


def _npy_header(stream: IO[bytes], name: str) -> _Header:
    """Shape, Fortran order, dtype and header length of the .npy array ``stream`` begins
    with, read from its header alone: nothing of the data is read, so nothing inflated."""
    counted = _Counted(stream)
    try:
        version = np.lib.format.read_magic(counted)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(counted)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(counted)
        else:  # 3.0 exists only for field names beyond Latin-1: nothing nnlearn reads has any
            raise _Refused(
                f"array {name!r} is in .npy format {version[0]}.{version[1]}, which nnlearn does not read; refused"
            )
    except ValueError as exc:
        raise _Refused(f"array {name!r} is not a NumPy .npy array ({first_line(exc)}); refused") from None
    if dtype.hasobject:
        raise _Refused("holds object arrays that would need unpickling; refused")
    if any(size < 0 for size in shape):
        raise _Refused(f"array {name!r} claims a negative shape {shape}; refused")
    if dtype.itemsize == 0:  # its bytes say nothing of its length: an array of 0 bytes could claim any
        raise _Refused(f"array {name!r} is of an empty type {dtype}, which np.save never writes; refused")
    return tuple(shape), bool(fortran), dtype, counted.count


def _count(shape: tuple[int, ...]) -> int:
    """How many elements an array of ``shape`` has, in Python's unbounded integers."""
    count = 1
    for size in shape:
        count *= size
    return count


def _scan(
    archive: zipfile.ZipFile, kind: str, max_bytes: int, member_limits: dict[str, int]
) -> list[tuple[str, zipfile.ZipInfo, _Header]]:
    """Every member's array name, entry and header, all checked before any data is read:
    each an .npy array of no objects, whose size the zip directory states as its header
    does, within its own limit if ``member_limits`` names it, and all the others together
    within ``max_bytes``."""
    members: list[tuple[str, zipfile.ZipInfo, _Header]] = []
    names: set[str] = set()
    total = 0
    for info in archive.infolist():
        if not info.filename.endswith(".npy") or info.is_dir():
            raise _Refused(f"holds {info.filename!r}, which is not a NumPy array; refused")
        name = info.filename[: -len(".npy")]
        if name in names:
            raise _Refused(f"holds two arrays named {name!r}; refused")
        names.add(name)
        with archive.open(info) as stream:
            header = _npy_header(stream, name)
        shape, _, dtype, header_length = header
        claimed = _count(shape) * dtype.itemsize
        # The zip's own uncompressed size bounds what inflating the member can give; a
        # member whose header claims more (or far less) than that is no array np.save wrote.
        if abs(info.file_size - (header_length + claimed)) > header_length:
            raise _Refused(
                f"array {name!r} is {info.file_size:,} bytes in the archive's directory but its header claims "
                f"{claimed:,} bytes of data (shape {shape}, {dtype}); the file is damaged or crafted; refused"
            )
        limit = member_limits.get(name)
        if limit is not None and claimed > limit:
            raise _Refused(
                f"array {name!r} holds {claimed:,} bytes, more than a {kind} holds ({limit:,} at most); refused"
            )
        if limit is None:  # one bounded by its name is not counted with the others
            total += claimed
            if total > max_bytes:
                raise _Refused(
                    f"its arrays claim {total:,} bytes or more (array {name!r}: {claimed:,}), more than a {kind} "
                    f"is read with ({max_bytes:,} at most); refused"
                )
        members.append((name, info, header))
    return members


def _read_member(archive: zipfile.ZipFile, name: str, info: zipfile.ZipInfo, header: _Header) -> np.ndarray:
    """The array of one member, read as its scanned ``header`` says, and no more."""
    with archive.open(info) as stream:
        if _npy_header(stream, name) != header:
            raise _Refused(f"array {name!r} changed while it was read; refused")
        shape, fortran, dtype, header_length = header
        count = _count(shape)
        nbytes = count * dtype.itemsize
        # Not zeroed: its memory is taken as the data fill it, so a member that ends early
        # (its directory entry lied too) costs what it held, not what it claimed.
        flat = np.empty(count, dtype=dtype)
        if nbytes:
            raw, done = flat.view(np.uint8), 0
            while done < nbytes:
                piece = stream.read(min(_CHUNK, nbytes - done))
                if not piece:
                    raise _Refused(f"array {name!r} ends before its data does; refused")
                raw[done : done + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
                done += len(piece)
        # To the end of the member (at most a header's length, as scanned), where the zip
        # checks its CRC: a damaged member is refused, not read as other numbers.
        stream.read(header_length + 1)
    return flat.reshape(shape[::-1]).transpose() if fortran else flat.reshape(shape)


def read_npz(
    path: str | os.PathLike,
    error: type[Exception],
    kind: str = ".npz file",
    max_bytes: int | None = None,
    member_limits: dict[str, int] | None = None,
    names: Collection[str] | None = None,
) -> dict[str, np.ndarray]:
    """All arrays of a NumPy ``.npz`` archive, read without ever unpickling and within bounds.

    Before anything is inflated, every member's .npy header is read (a few hundred bytes)
    and the file is refused unless each is an array of no objects whose stated size agrees
    with the zip's, and all of them together hold at most ``max_bytes``: a few megabytes
    that claim gigabytes of zeros are refused at once, not after filling the memory.

    Parameters
    ----------
    path : str or Path
    error : type
        The exception raised, with a one-line message naming ``path``, when the file is
        missing, not a regular file, not an ``.npz`` archive, damaged, holds object arrays
        or more than the bounds allow.
    kind : str
        What the file was expected to be, for the message.
    max_bytes : int, optional
        The most bytes its arrays may hold together (those named in ``member_limits``
        aside); by default :func:`default_max_bytes` (a quarter of the physical memory).
        The file itself may be at most this, those limits, 1% and a megabyte long.
    member_limits : dict of str to int, optional
        The most bytes an array of a given name may hold (an archive's ``meta``).
    names : collection of str, optional
        Read only these arrays (those there: a missing one is no error). The others'
        headers are checked all the same, so the bounds hold for the file as a whole, but
        their data are neither read nor inflated.

    Returns
    -------
    dict of str to ndarray
    """
    limit = default_max_bytes() if max_bytes is None else max_bytes
    member_limits = member_limits or {}
    # The file itself: its arrays, deflate's worst case (a fraction of a percent more) and
    # the zip's and the headers' few bytes per member.
    arrays = limit + sum(member_limits.values())
    with open_regular(path, error, kind, max_bytes=arrays + arrays // 100 + 2**20) as file:
        try:
            # np.load would try unpickling any file that is neither a zip nor a .npy: such
            # files are refused before anything looks, so the message says what they are.
            if not zipfile.is_zipfile(file):
                raise _Refused(f"not a readable {kind} (not a NumPy .npz archive)")
            with zipfile.ZipFile(file) as archive:
                members = _scan(archive, kind, limit, member_limits)
                return {
                    name: _read_member(archive, name, info, header)
                    for name, info, header in members
                    if names is None or name in names
                }
        except _Refused as exc:
            raise error(f"{path}: {exc}") from None
        except MemoryError:
            raise error(f"{path}: its arrays do not fit in the memory") from None
        except Exception as exc:  # zipfile, zlib and numpy's format checks raise assorted types
            raise error(f"{path}: not a readable {kind} ({first_line(exc)})") from None
