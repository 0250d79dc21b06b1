"""IDX, MNIST's file format: a reader for IDX files of unsigned bytes, checking each header.

:func:`read_idx` reads an images file (``*-idx3-ubyte``, gzipped or not) with its labels
(``*-idx1-ubyte``, found beside it by MNIST's naming), checking each header against the
data before the data are used, and bounding what a header may claim
(:data:`MAX_IDX_BYTES`) before anything is decompressed. Images are unrolled
column-major, as every nnlearn dataset: ``x.reshape(rows, cols, order="F")`` shows one
upright. :mod:`nnlearn.datasets._mnist` reads its downloads with it, and
:func:`nnlearn.datasets._builtin.load_data` a user's IDX files.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal, overload

import numpy as np

from ..errors import DataError, first_line
from ..persist._reading import regular_file

__all__ = ["read_idx", "is_idx_path", "read_idx_pair", "unroll_images", "MAX_IDX_BYTES"]

#: The most pixels (bytes) an IDX file may hold; its float64 array takes 8 times as much.
#: A header is checked against it before anything is decompressed.
MAX_IDX_BYTES = 2**30

# IDX: two zero bytes, the type (0x08: unsigned byte), the number of dimensions; then
# each dimension as a big-endian 32-bit integer, then the values.
_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801
_KINDS = {_IMAGES_MAGIC: "images", _LABELS_MAGIC: "labels"}
_IDX_NAME = re.compile(r"^(?P<stem>.*)(?P<sep>[-.])idx(?P<ndim>[13])-ubyte(?P<gz>\.gz)?$", re.IGNORECASE)
_GZIP_MAGIC = b"\x1f\x8b"


def is_idx_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named as an IDX file of unsigned bytes (``*-idx3-ubyte``, ``*.idx1-ubyte.gz``, ...)."""
    return _IDX_NAME.match(Path(path).name) is not None


def _labels_beside(images_path: Path) -> list[Path]:
    """The names the labels file of an IDX images file has in MNIST's naming, likeliest first.

    ``train-images-idx3-ubyte.gz`` goes with ``train-labels-idx1-ubyte.gz`` (or the same
    uncompressed); Kaggle's copies use a dot: ``train-images.idx3-ubyte``.
    """
    match = _IDX_NAME.match(images_path.name)
    if match is None or match["ndim"] != "3":
        return []
    stem = match["stem"]
    at = stem.lower().rfind("images")
    if at >= 0:
        stem = stem[:at] + "labels" + stem[at + len("images") :]
    name = f"{stem}{match['sep']}idx1-ubyte"
    gz = match["gz"] or ""
    other = "" if gz else ".gz"
    return [images_path.with_name(name + gz), images_path.with_name(name + other)]


#: The most bytes :func:`_read_into` asks a stream for at once: a stream without a
#: readinto of its own (a zip member) reads into a temporary of that size first.
_READ_PIECE = 1 << 18


def _read_into(f: IO[bytes] | io.BufferedIOBase, buffer: np.ndarray) -> int:
    """Fill ``buffer`` (bytes) from ``f`` until it is full or the file ends; the count read."""
    view, filled = buffer.data.cast("B"), 0
    while filled < len(view):
        count = f.readinto(view[filled : filled + _READ_PIECE])  # type: ignore[union-attr]
        if not count:
            break
        filled += count
    return filled


@contextlib.contextmanager
def idx_stream(path: str | os.PathLike, kind: str) -> Iterator[tuple[Any, bool, Any]]:
    """An IDX file open for reading, decompressed when gzipped (told by its first bytes,
    whatever its name): ``(stream, compressed, raw file)``. A file or gzip stream that
    cannot be read through becomes one :class:`DataError` naming it."""
    compressed = False
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) if compressed else contextlib.nullcontext(raw) as f:
                yield f, compressed, raw
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        damaged = "truncated or damaged gzip data: " if compressed else ""
        raise DataError(f"{path}: not a readable IDX {kind} file ({damaged}{first_line(exc)})") from None


def _read_idx_file(path: str | os.PathLike, magic: int) -> np.ndarray:
    """The array of unsigned bytes an IDX file holds, in its header's shape.

    The header is checked against the data: a file with fewer or more bytes than its
    dimensions call for is a :class:`DataError`, as is a damaged gzip stream. A gzipped
    file (recognised by its first bytes, whatever its name) is decompressed no further
    than the header's size and one byte, and that size is bounded (:data:`MAX_IDX_BYTES`)
    before anything is read: a few compressed bytes cannot fill the memory.
    """
    kind = _KINDS[magic]
    path = regular_file(path, DataError, f"IDX {kind} file", MAX_IDX_BYTES)
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    with idx_stream(path, kind) as (f, compressed, raw):
        header = f.read(header_size)
        found = int.from_bytes(header[:4], "big") if len(header) >= 4 else None
        if found != magic:
            raise DataError(_wrong_magic(path, magic, found))
        if len(header) < header_size:
            raise DataError(f"{path}: truncated IDX {kind} file (its header ends after {len(header)} bytes)")
        shape = tuple(int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
        count = math.prod(shape)
        if count > MAX_IDX_BYTES:
            raise DataError(
                f"{path}: the header claims {' x '.join(map(str, shape))} = {count:,} bytes of {kind}, more "
                f"than an IDX file may hold ({MAX_IDX_BYTES:,}); refused"
            )
        if not compressed:
            # Checked before reading: a file of the wrong size is never loaded.
            size = os.fstat(raw.fileno()).st_size
            if size != header_size + count:
                raise DataError(_wrong_size(path, kind, shape, header_size + count, f"the file has {size:,}"))
        # One byte more than the header calls for, to notice data after the end.
        values = np.empty(count + 1, dtype=np.uint8)
        filled = _read_into(f, values)
    if filled != count:
        told = "more" if filled > count else f"{header_size + filled:,}"
        raise DataError(_wrong_size(path, kind, shape, header_size + count, f"it decompresses to {told}"))
    return values[:count].reshape(shape)


def _wrong_magic(path, magic, found):
    kind = _KINDS[magic]
    if found in _KINDS:
        other = _KINDS[found]
        hint = "; give the images file (*-idx3-ubyte), its labels are read from beside it" if other == "labels" else ""
        return f"{path}: an IDX {other} file, not {kind}{hint}"
    what = "too short for an IDX header" if found is None else f"magic number 0x{found:08x}"
    return f"{path}: not an IDX {kind} file of unsigned bytes ({what}; expected 0x{magic:08x})"


def _wrong_size(path, kind, shape, expected, actual):
    return (
        f"{path}: truncated or malformed IDX {kind} file: its header says {' x '.join(map(str, shape))} "
        f"({expected:,} bytes with the header) but {actual} bytes"
    )


def read_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike | None, labels: bool | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Upright images (m, rows, cols) of unsigned bytes and int64 labels (or None); see :func:`read_idx`."""
    images = _read_idx_file(images_path, _IMAGES_MAGIC)
    if images.shape[0] == 0 or min(images.shape[1:]) == 0:
        raise DataError(f"{images_path}: no images, or images of no pixels (shape {images.shape})")
    if labels is False:
        return images, None
    if labels_path is None:
        candidates = _labels_beside(Path(images_path))
        labels_path = next((path for path in candidates if os.path.lexists(path)), None)
        if labels_path is None:
            if labels is None:
                return images, None
            expected = f"{candidates[0].name} or {candidates[1].name}" if candidates else "a *-labels-idx1-ubyte file"
            raise DataError(f"{images_path}: no labels file beside it ({expected})")
    y = _read_idx_file(labels_path, _LABELS_MAGIC)
    if len(y) != len(images):
        raise DataError(f"{images_path}: {len(images):,} images but {labels_path} has {len(y):,} labels")
    return images, y.astype(np.int64)


def unroll_images(images: np.ndarray) -> np.ndarray:
    """Images (m, rows, cols) of bytes as rows of [0, 1] floats, column-major (nnlearn's layout)."""
    m, rows, cols = images.shape
    return images.transpose(0, 2, 1).reshape(m, rows * cols) / 255.0


@overload
def read_idx(
    images_path: str | os.PathLike, labels_path: str | os.PathLike | None = ..., *, labels: Literal[True] = ...
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def read_idx(
    images_path: str | os.PathLike, labels_path: str | os.PathLike | None = ..., *, labels: bool | None
) -> tuple[np.ndarray, np.ndarray | None]: ...
def read_idx(
    images_path: str | os.PathLike, labels_path: str | os.PathLike | None = None, *, labels: bool | None = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an IDX images file (MNIST's format) and its labels.

    Only IDX files of unsigned bytes are read: images with magic number 0x00000803 (three
    dimensions: count, rows, columns), labels with 0x00000801. Either may be gzipped. Each
    header is checked against its file (a file shorter or longer than its dimensions call
    for is refused), and the two counts against each other.

    Parameters
    ----------
    images_path : str or Path
        A ``*-idx3-ubyte`` file, or ``*-idx3-ubyte.gz``.
    labels_path : str or Path, optional
        Its labels. By default the file beside it named as MNIST names them:
        ``train-images-idx3-ubyte[.gz]`` goes with ``train-labels-idx1-ubyte[.gz]``.
    labels : bool or None
        True: the labels must be there. None: read when the file is there, else None.
        False: not read (None).

    Returns
    -------
    X : ndarray, shape (m, rows * cols), float64
        Pixel values scaled to [0, 1], each image unrolled column-major:
        ``X[i].reshape(rows, cols, order="F")`` is upright.
    y : ndarray, shape (m,), int64, or None

    Raises
    ------
    DataError
        A file is missing, not a regular file, not IDX of the right kind, truncated,
        longer than its header says, or the counts differ.
    """
    images, y = read_idx_pair(images_path, labels_path, labels)
    return unroll_images(images), y
