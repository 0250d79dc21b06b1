"""Safe file writing: atomic replacement, and no silent overwrite."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import NNLearnError


class OutputExistsError(NNLearnError, FileExistsError):
    """The output file exists and overwriting was not asked for."""


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write, overwrite=False):
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
