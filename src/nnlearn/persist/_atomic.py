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
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..errors import NNLearnError

__all__ = [
    "OutputExistsError",
    "SpecialFileError",
    "atomic_write",
    "write_new",
    "check_replaceable",
    "probe_directory",
    "remove_stale_temporaries",
    "temporary_prefix",
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
