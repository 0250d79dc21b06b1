"""Safe file writing: atomic replacement, no silent overwrite, no special files replaced.

Every output nnlearn writes goes through :func:`atomic_write`: the content is written to
a temporary file beside the target and put in place in one step, so a reader never sees
a half-written file and an interrupted write leaves any existing file untouched. A new
file is created without overwriting atomically (a hard link of the finished temporary
file), so of two writers racing for one name exactly one wins. Temporary files carry
their writer's process id and host, so that the leftovers of a killed writer can be told
from a live writer's and removed (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import socket
import stat
import tempfile
import zipfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, BinaryIO

import numpy as np

from .errors import NNLearnError

__all__ = [
    "OutputExistsError",
    "SpecialFileError",
    "atomic_write",
    "write_new",
    "check_replaceable",
    "probe_directory",
    "remove_stale_temporaries",
    "temporary_prefix",
    "regular_file",
    "open_regular",
    "read_npz",
    "default_max_bytes",
    "physical_memory",
    "first_line",
]


class OutputExistsError(NNLearnError, FileExistsError):
    """The output file exists and overwriting was not asked for."""


class SpecialFileError(NNLearnError, ValueError):
    """An output path names a directory, device, FIFO or socket: never replaced, even when
    overwriting is allowed (``/dev/null`` replaced by a regular file breaks a system)."""


# Hard links are missing on some file systems (FAT, some network and FUSE mounts); there
# a new file is claimed with O_EXCL instead (see _publish).
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK, errno.EXDEV}
_TEMP_SUFFIX = ".nnlearn-tmp"
# .STEM.PID-HOST.RANDOM.nnlearn-tmp, RANDOM from tempfile.mkstemp.
_TEMP_NAME = re.compile(r"^\..*\.(?P<pid>\d+)-(?P<host>[A-Za-z0-9_]*)\.[A-Za-z0-9_]+" + re.escape(_TEMP_SUFFIX) + "$")
# A target's name is kept whole in its temporary files' names up to this many bytes; a
# longer one is shortened, so that the temporary name fits where the target's does.
_STEM_BYTES = 100


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host():
    # Only the characters the pattern above accepts; a process id means something only
    # on its own host (a directory may be shared over the network).
    return re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:32]


def temporary_prefix(path: str | os.PathLike) -> str:
    """The prefix of the temporary files this process writes for ``path``: ``.NAME.PID-HOST.``.

    The process id and host let :func:`remove_stale_temporaries` tell a killed writer's
    leftovers from a live writer's files.
    """
    name = Path(path).name
    raw = os.fsencode(name)
    if len(raw) > _STEM_BYTES:
        digest = hashlib.sha256(raw).hexdigest()[:8]
        name = raw[: _STEM_BYTES // 2].decode("utf-8", "ignore") + "~" + digest
    return f".{name}.{os.getpid()}-{_host()}."


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: a process of another user has it
        return True
    return True


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that writers killed during a save left in ``directory``.

    Only files named as :func:`atomic_write` names them, by a writer on this host whose
    process no longer exists, are removed: never a live writer's, never another host's
    (whose process ids mean nothing here), never a file of any other name.

    Returns
    -------
    list of Path
        The files removed.
    """
    if os.name != "posix":  # process ids cannot be checked the same way elsewhere
        return []
    host, removed = _host(), []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        match = _TEMP_NAME.match(name)
        if match is None or match["host"] != host or _alive(int(match["pid"])):
            continue
        path = Path(directory) / name
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.unlink(path)
                removed.append(path)
    return removed


def check_replaceable(path: str | os.PathLike, overwrite: bool) -> None:
    """Raise unless writing ``path`` is allowed: it does not exist, or it is a regular file
    (or a link to one) and ``overwrite`` is true.

    Raises
    ------
    SpecialFileError
        ``path`` is a directory, FIFO, device or socket (whatever ``overwrite`` says).
    OutputExistsError
        ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path) and not overwrite:  # a dangling link is a name in use
            raise OutputExistsError(
                f"{path}: exists (a symbolic link); choose another name or allow overwriting"
            ) from None
        return
    except OSError:  # e.g. a name too long: the write itself will say so
        return
    if stat.S_ISDIR(info.st_mode):
        raise SpecialFileError(f"{path}: is a directory; give a file name")
    if not stat.S_ISREG(info.st_mode):
        raise SpecialFileError(
            f"{path}: is a FIFO, device or other special file; nnlearn replaces regular files only, "
            "even when told to overwrite"
        )
    if not overwrite:
        raise OutputExistsError(f"{path}: file exists; choose another name or allow overwriting")


def _publish(tmp: str, path: Path, overwrite: bool) -> None:
    """Put the finished temporary file ``tmp`` in place at ``path``, in one step.

    Replacing: a rename, after checking again that ``path`` is still a regular file.
    Creating: a hard link, which fails if the name exists however many writers race for
    it (a check followed by a rename would let all of them "succeed"); where the file
    system has no hard links, the name is claimed with O_EXCL and then renamed over.
    """
    if overwrite:
        check_replaceable(path, overwrite=True)
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(f"{path}: file exists; choose another name or allow overwriting") from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise OutputExistsError(f"{path}: file exists; choose another name or allow overwriting") from None
        os.replace(tmp, path)  # over the empty file this writer just claimed
        return
    os.unlink(tmp)


def _sync_directory(directory):
    # The rename or link is durable only once the directory is on disk; not every system
    # lets a directory be opened, and losing this only risks a crash, not a wrong file.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temporary(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path), suffix=_TEMP_SUFFIX)
    # mkstemp makes the file private (0600); give it the permissions open() would.
    os.chmod(tmp, 0o666 & ~_umask())
    return fd, tmp


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], overwrite: bool = False) -> Path:
    """Write a file through ``write(fileobj)`` into a temporary file, then put it in place.

    A reader never sees a half-written file; an interrupted or failed write leaves any
    existing file untouched and removes its temporary file.

    Parameters
    ----------
    path : str or Path
    write : callable
        Receives a binary file object open for writing.
    overwrite : bool
        Replace an existing regular file; otherwise raise :class:`OutputExistsError`,
        also when another writer creates ``path`` first while this one writes.

    Returns
    -------
    Path

    Raises
    ------
    OutputExistsError
        ``path`` exists (or appeared meanwhile) and ``overwrite`` is false.
    SpecialFileError
        ``path`` is a directory, device, FIFO or socket: never replaced.
    OSError
        The write itself failed (no space, read-only, name too long, ...).
    """

    def save(temporary: Path) -> None:
        with open(temporary, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())

    return write_new(path, save, overwrite)


def write_new(path: str | os.PathLike, save: Callable[[Path], object], overwrite: bool = False) -> Path:
    """Like :func:`atomic_write`, for writers that take a path: ``save(temporary_path)``.

    The temporary path is named as :func:`atomic_write` names its files, so a killed
    writer's leftover is removed like theirs; ``save`` may replace it.
    """
    path = Path(path)
    check_replaceable(path, overwrite)
    fd, tmp = _temporary(path)
    os.close(fd)
    try:
        save(Path(tmp))
        _publish(tmp, path, overwrite)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _sync_directory(path.parent)
    return path


def probe_directory(path: str | os.PathLike) -> None:
    """Check, before any long work, that a file ``path`` could be written where it is named.

    A temporary file is created in its directory and removed at once (missing directories
    are made for the probe and removed again), and the name's length is checked against
    the file system's limit. Catches a read-only or missing-permission directory, a path
    through a file, and a name too long; a disk that fills up later cannot be foreseen.

    Raises
    ------
    OSError
        Naming ``path`` (``filename``) and why (``strerror``).
    """
    path = Path(path)
    directory = path.parent
    missing = []
    while not directory.exists() and not directory.is_symlink() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    created = []
    try:
        for folder in reversed(missing):
            os.mkdir(folder)
            created.append(folder)
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path), suffix=_TEMP_SUFFIX)
        except OSError as exc:
            exc.filename = str(path.parent)  # not the temporary name, which means nothing to the user
            raise
        os.close(fd)
        os.unlink(tmp)
    finally:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
    limit = None
    with contextlib.suppress(OSError, ValueError):  # pathconf is not known everywhere
        limit = os.pathconf(path.parent if path.parent.exists() else directory, "PC_NAME_MAX")
    if limit is not None and len(os.fsencode(path.name)) > limit:
        raise OSError(errno.ENAMETOOLONG, f"{os.strerror(errno.ENAMETOOLONG)} (at most {limit} bytes)", str(path))


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


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
