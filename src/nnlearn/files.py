"""Safe file writing: atomic replacement, and no silent overwrite."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import NNLearnError


class OutputExistsError(NNLearnError, FileExistsError):
    """The output file exists and overwriting was not asked for."""


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], overwrite: bool = False) -> Path:
    """Write a file through ``write(fileobj)`` into a temporary file, then rename it.

    A reader never sees a half-written file, and an interrupted write leaves any
    existing file untouched.

    Parameters
    ----------
    path : str or Path
    write : callable
        Receives a binary file object open for writing.
    overwrite : bool
        Replace an existing file; otherwise raise :class:`OutputExistsError`.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: file exists; choose another name or allow overwriting")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the permissions open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def read_npz(path: str | os.PathLike, error: type[Exception], kind: str = ".npz file") -> dict[str, np.ndarray]:
    """All arrays of a NumPy ``.npz`` archive, read without ever unpickling.

    Parameters
    ----------
    path : str or Path
    error : type
        The exception raised, with a one-line message naming ``path``, when the file is
        missing, not an ``.npz`` archive, damaged, or holds object arrays.
    kind : str
        What the file was expected to be, for the message.

    Returns
    -------
    dict of str to ndarray
    """
    if not Path(path).is_file():
        raise error(f"{path}: no such file")
    # np.load would try unpickling any file that is neither a zip nor a .npy: refuse
    # those before it looks, so the message says what the file really is.
    if not zipfile.is_zipfile(path):
        raise error(f"{path}: not a readable {kind} (not a NumPy .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise error(f"{path}: holds object arrays that would need unpickling; refused") from None
        raise error(f"{path}: not a readable {kind} ({first_line(exc)})") from None
    except Exception as exc:  # zipfile, zlib and numpy's format checks raise assorted types
        raise error(f"{path}: not a readable {kind} ({first_line(exc)})") from None


def first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
