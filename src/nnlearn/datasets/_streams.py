"""A data file read block by block, so that ``nnlearn shard`` lays out data larger than the memory.

:func:`read_blocks` reads a data file as ``(X_block, y_block)`` row blocks, with the checks
and messages of :func:`nnlearn.datasets.load_data`: an ``.npz`` file's ``X`` from its zip
member (its ``.npy`` header, then rows), a CSV file a block of lines at a time, an IDX
images file block by block after its header, a shard directory shard by shard.
:func:`nnlearn.datasets._shards.write_blocks` writes each block as one shard as it comes,
so the memory a layout takes is bounded by a few shards (one block, its checks'
temporaries and the labels, which are read whole), whatever the data's size; a ``.mat``
file is loaded whole (SciPy reads no part of one), as are the built-in datasets and an
``.npz`` file's ``X`` saved in Fortran order (column after column: no row is whole before
the last column). The loaders' size limits (``MAX_DATA_BYTES`` and the like) bound what
is held in memory and do not apply here; a compressed input may still claim no more than
compression can give.

Each block keeps the input's dtype (float32 stays float32, an IDX file's bytes stay bytes,
a CSV file gives float64); :class:`Blocks` carries the ``X_divisor`` that the shards'
manifest records (IDX pixels: 255, as :func:`nnlearn.datasets.read_idx` divides them).
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import DataError, first_line
from ..persist._reading import _npy_header, _read_member, _Refused, _scan, open_regular, regular_file
from ._check import check_labels
from ._files import MAX_INFLATION, _cells, _is_number, _line_problem, _rows, _shown, load_mat
from ._idx import (
    _IMAGES_MAGIC,
    _LABELS_MAGIC,
    _labels_beside,
    _read_idx_file,
    _read_into,
    _wrong_magic,
    _wrong_size,
    idx_stream,
    is_idx_path,
)
from ._shards import MANIFEST, checked_rows, read_manifest, read_shard, row_blocks

__all__ = ["read_blocks", "Blocks", "IDX_DIVISOR"]

#: What read_idx divides an IDX file's bytes by.
IDX_DIVISOR = 255.0
# Deflate gives at most about 1032 bytes for one: a gzip header claiming more lies.
_DEFLATE_RATIO = 1032
# Compressed data are read in pieces of this size into the block itself.


class Blocks(NamedTuple):
    """A dataset as row blocks, one shard each, and the ``X_divisor`` its manifest records."""

    blocks: Iterator[tuple[np.ndarray, np.ndarray]]
    X_divisor: float | None = None


# ---------------------------------------------------------------------- reading data files in blocks


def read_blocks(source: str | os.PathLike, rows_per_shard: int) -> Blocks | None:
    """A data file (or shard directory), as :func:`load_data` reads it, in row blocks of ``rows_per_shard``.

    The input's checks up to its first block are done here, before anything is written;
    those of the rest as it is read. None for anything else (a dataset's name, a file of
    another kind): :func:`load_data` reads those, or says why not.

    Returns
    -------
    Blocks or None
        X blocks in the file's dtype (an IDX file's bytes unrolled column-major, with
        ``X_divisor`` 255; a CSV file's numbers as float64), labels as :func:`load_data`
        gives them.
    """
    rows = checked_rows(rows_per_shard)
    source = str(source)
    if is_idx_path(source):
        return Blocks(_primed(_idx_blocks(source, rows)), IDX_DIVISOR)
    if (Path(source) / MANIFEST).is_file():
        return _shard_blocks(Path(source), rows)
    suffix = Path(source).suffix.lower()
    if suffix == ".csv":
        return Blocks(_primed(_csv_blocks(source, rows)))
    if suffix == ".npz":
        return Blocks(_primed(_npz_blocks(source, rows)))
    if suffix == ".mat":
        return Blocks(_mat_blocks(source, rows))
    return None


def _primed(blocks: Iterator[Any]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A reader started: it yields None once its input's first checks are done."""
    next(blocks)
    return blocks


def _check_finite(source: str, X: np.ndarray, where: Any) -> None:
    """DataError naming the first example of ``X`` with NaN or infinite values; ``where(i)`` names row i."""
    if X.dtype.kind == "f" and not np.all(np.isfinite(X)):
        i = int(np.flatnonzero(~np.all(np.isfinite(X), axis=1))[0])
        raise DataError(f"{source}: X contains NaN or infinite values ({where(i)})")


def _check_X_header(source: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if dtype.kind not in "fiub":
        raise DataError(f"{source}: X is not numeric")
    if len(shape) != 2:
        raise DataError(f"{source}: X must be 2-D (examples x features), got shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise DataError(f"{source}: no examples or no features (X has shape {shape})")


def _npz_blocks(path: str, rows: int) -> Iterator[Any]:
    """An .npz file's X and y as load_npz checks them, X read from its member a block at a time."""
    size = regular_file(path, DataError, ".npz file").stat().st_size
    try:
        with open_regular(path, DataError, ".npz file") as file:
            if not zipfile.is_zipfile(file):
                raise _Refused("not a readable .npz file (not a NumPy .npz archive)")
            with zipfile.ZipFile(file) as archive:
                # No more than real data inflate to, as load_npz: a few megabytes claiming
                # gigabytes are refused before anything is inflated.
                scanned = _scan(archive, ".npz file", MAX_INFLATION * size + (1 << 20), {})
                members = {name: (info, header) for name, info, header in scanned}
                missing = [key for key in ("X", "y") if key not in members]
                if missing:
                    raise DataError(f"{path}: the .npz file has no array {' or '.join(missing)}")
                info, header = members["X"]
                shape, fortran, dtype, header_length = header
                _check_X_header(path, shape, dtype)
                y = _npz_labels(path, archive, members["y"], shape[0])
                yield None
                if fortran:  # column after column: no row is whole before the last column
                    X = _read_member(archive, "X", info, header)
                    for start, (X_block, y_block) in zip(range(0, shape[0], rows), row_blocks(X, y, rows)):
                        _check_finite(path, X_block, lambda i, start=start: f"example {start + i + 1}")
                        yield X_block, y_block
                    return
                with archive.open(info) as stream:
                    if _npy_header(stream, "X") != header:
                        raise _Refused("array 'X' changed while it was read; refused")
                    for start in range(0, shape[0], rows):
                        X_block = np.empty((min(rows, shape[0] - start), shape[1]), dtype=dtype)
                        if _read_into(stream, X_block.reshape(-1).view(np.uint8)) != X_block.nbytes:
                            raise _Refused("array 'X' ends before its data does; refused")
                        _check_finite(path, X_block, lambda i, start=start: f"example {start + i + 1}")
                        yield X_block, y[start : start + X_block.shape[0]]
                        del X_block  # before the next is made: one block in memory at a time
                    # To the end of the member, where the zip checks its CRC.
                    stream.read(header_length + 1)
    except DataError:
        raise
    except _Refused as exc:
        raise DataError(f"{path}: {exc}") from None
    except MemoryError:
        raise DataError(f"{path}: a shard's rows do not fit in the memory; give fewer rows per shard") from None
    except Exception as exc:  # zipfile, zlib and numpy's format checks raise assorted types
        raise DataError(f"{path}: not a readable .npz file ({first_line(exc)})") from None


def _npz_labels(path: str, archive: zipfile.ZipFile, member: tuple, m: int) -> np.ndarray:
    """An .npz file's y, read whole and checked as load_npz checks it."""
    y = _read_member(archive, "y", *member)
    if y.ndim == 2 and 1 in y.shape:
        y = y.ravel()
    if y.ndim != 1:
        raise DataError(f"{path}: y must be 1-D (one label per example), got shape {y.shape}")
    if y.shape[0] != m:
        raise DataError(f"{path}: X has {m} examples but y has {y.shape[0]} labels")
    return check_labels(y, path, True)


def _csv_blocks(path: str, rows: int) -> Iterator[Any]:
    """A CSV file's rows as load_csv reads them (label last), ``rows`` lines at a time."""
    regular_file(path, DataError, "CSV file")
    header: list[int] = []  # the line of a header skipped, as load_csv skips it
    lines = _rows(path, None, warn=True, header=header)
    width = None
    try:
        while chunk := _csv_lines(path, lines, rows):
            table = _csv_table(path, chunk, width, bool(header))
            if width is None:
                width = table.shape[1]
                if width < 2:
                    raise DataError(f"{path}: needs at least one feature column and a label column")
                yield None
            numbers = [number for number, _ in chunk]
            X = np.ascontiguousarray(table[:, :-1])
            _check_finite(path, X, lambda i, numbers=numbers: f"line {numbers[i]}")
            y = check_labels(table[:, -1], path, True, lambda i, numbers=numbers: f"line {numbers[i]}")
            del chunk, table  # one block in memory at a time
            yield X, y
            del X, y
        if width is None:
            raise DataError(f"{path}: no examples in the file")
    finally:
        lines.close()


def _csv_lines(path: str, lines: Iterator[tuple[int, str]], rows: int) -> list[tuple[int, str]]:
    try:
        return list(itertools.islice(lines, rows))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable text file ({first_line(exc)})") from None


def _csv_table(path: str, chunk: list[tuple[int, str]], width: int | None, header: bool) -> np.ndarray:
    """The numbers of a block of lines; DataError naming a bad line (as load_csv names it);
    ``header``: whether a header line was skipped."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt([line for _, line in chunk], delimiter=",", comments=None, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(
            _csv_problem(path, chunk, width, header) or f"{path}: not a readable CSV file ({first_line(exc)})"
        ) from None
    if width is not None and table.shape[1] != width:
        raise DataError(
            _csv_problem(path, chunk, width, header) or f"{path}: rows of {table.shape[1]} cells, not {width}"
        )
    return table


def _csv_problem(path: str, chunk: list[tuple[int, str]], width: int | None, header: bool) -> str | None:
    """The message for the first malformed line of a block, or None; ``width``: the first
    row's (None: this block starts the file). Labels are numbers here: shards of text
    labels would need their longest label known before the first block is written."""
    candidate = None if width is not None or header else chunk[0][0]  # a first line read as data
    for number, line in chunk:
        cells = _cells(line)
        width = len(cells) if width is None else width
        problem = _line_problem(path, number, cells, width, number == candidate, text_labels=True)
        if problem:
            return problem
        if width >= 2 and not _is_number(cells[-1]):
            return (
                f"{path}: line {number}'s label {_shown(cells[-1])} is text; nnlearn shard reads a CSV file's labels "
                "as numbers (it takes text labels from an .npz file)"
            )
    return None


def _idx_blocks(path: str, rows: int) -> Iterator[Any]:
    """An IDX images file's bytes, ``rows`` images at a time unrolled column-major, and its labels."""
    size = regular_file(path, DataError, "IDX images file").stat().st_size
    with idx_stream(path, "images") as (f, compressed, _):
        shape = _idx_header(path, f, size, compressed)
        m, height, width = shape
        y = _idx_labels(path, m)
        yield None
        for start in range(0, m, rows):
            pixels = np.empty(min(rows, m - start) * height * width, dtype=np.uint8)
            filled = _read_into(f, pixels)
            if filled != pixels.size:  # a gzip stream that ends early (a plain file's size was checked)
                told = f"it decompresses to {16 + start * height * width + filled:,}"
                raise DataError(_wrong_size(path, "images", shape, 16 + math.prod(shape), told))
            X_block = pixels.reshape(-1, height, width).transpose(0, 2, 1).reshape(-1, height * width)
            del pixels  # one block in memory at a time
            yield X_block, y[start : start + X_block.shape[0]]
            del X_block
        if f.read(1):  # data after the end; for gzip, the read checks its CRC too
            raise DataError(_wrong_size(path, "images", shape, 16 + math.prod(shape), "it decompresses to more"))


def _idx_header(path: str, f: Any, size: int, compressed: bool) -> tuple[int, int, int]:
    """An IDX images file's (count, rows, columns), checked as read_idx checks it."""
    header = f.read(16)
    found = int.from_bytes(header[:4], "big") if len(header) >= 4 else None
    if found != _IMAGES_MAGIC:
        raise DataError(_wrong_magic(path, _IMAGES_MAGIC, found))
    if len(header) < 16:
        raise DataError(f"{path}: truncated IDX images file (its header ends after {len(header)} bytes)")
    shape = (
        int.from_bytes(header[4:8], "big"),
        int.from_bytes(header[8:12], "big"),
        int.from_bytes(header[12:], "big"),
    )
    count = math.prod(shape)
    if compressed and count > _DEFLATE_RATIO * size:
        raise DataError(
            f"{path}: the header claims {' x '.join(map(str, shape))} = {count:,} bytes of images, more than "
            f"{size:,} bytes of gzip data can hold; refused"
        )
    if not compressed and size != 16 + count:
        raise DataError(_wrong_size(path, "images", shape, 16 + count, f"the file has {size:,}"))
    if shape[0] == 0 or min(shape[1:]) == 0:
        raise DataError(f"{path}: no images, or images of no pixels (shape {shape})")
    return shape


def _idx_labels(path: str, m: int) -> np.ndarray:
    """The labels file beside an IDX images file of ``m`` images, read whole, as int64."""
    candidates = _labels_beside(Path(path))
    labels_path = next((p for p in candidates if os.path.lexists(p)), None)
    if labels_path is None:
        expected = f"{candidates[0].name} or {candidates[1].name}" if candidates else "a *-labels-idx1-ubyte file"
        raise DataError(f"{path}: no labels file beside it ({expected})")
    y = _read_idx_file(labels_path, _LABELS_MAGIC)
    if len(y) != m:
        raise DataError(f"{path}: {m:,} images but {labels_path} has {len(y):,} labels")
    return y.astype(np.int64)


#: MATLAB classes whose values float64 holds exactly, so that X is kept in its own dtype.
_MAT_CLASSES = {
    "single": np.dtype(np.float32),
    **{name: np.dtype(name) for name in ("int8", "uint8", "int16", "uint16", "int32", "uint32")},
}


def _mat_blocks(path: str, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A .mat file, loaded whole as load_mat loads it, X back in the dtype the file stores."""
    from scipy.io import whosmat

    X, y = load_mat(path)
    try:
        stored = {name: kind for name, _, kind in whosmat(path)}.get("X")
    except Exception:  # load_mat read it: a file whosmat cannot list keeps float64
        stored = None
    if stored in _MAT_CLASSES:
        X = X.astype(_MAT_CLASSES[stored])
    return row_blocks(X, y, rows)


def _shard_blocks(path: Path, rows: int) -> Blocks:
    """A shard directory's shards as stored (checked against its manifest), in blocks of ``rows``."""
    manifest = read_manifest(path)
    if not manifest["shards"]:
        raise DataError(f"{path / MANIFEST}: the shard directory holds no shards")
    n = manifest["n_features"]

    def stored():
        for shard in manifest["shards"]:
            X = read_shard(
                str(path / shard["X"]["file"]), shard["X"].get("sha256"), (shard["rows"], n), manifest["X_dtype"]
            )
            y = read_shard(
                str(path / shard["y"]["file"]), shard["y"].get("sha256"), (shard["rows"],), manifest["y_dtype"]
            )
            yield X, y

    return Blocks(_rebatched(stored(), rows), manifest.get("X_divisor"))


def _rebatched(pieces: Iterable[tuple[np.ndarray, np.ndarray]], rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks of exactly ``rows`` rows (the last may have fewer) made of pieces of any size."""
    held: list[tuple[np.ndarray, np.ndarray]] = []
    count = 0
    for X, y in pieces:
        while X.shape[0]:
            take = min(rows - count, X.shape[0])
            held.append((X[:take], y[:take]))
            X, y, count = X[take:], y[take:], count + take
            if count == rows:
                yield np.concatenate([h[0] for h in held]), np.concatenate([h[1] for h in held])
                held, count = [], 0
    if held:
        yield np.concatenate([h[0] for h in held]), np.concatenate([h[1] for h in held])
