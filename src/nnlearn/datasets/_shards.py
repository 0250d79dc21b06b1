"""Data laid out for a cluster: a directory of ``.npy`` shards that each worker reads itself.

A shard directory holds ``X-00000.npy``, ``y-00000.npy``, ... (each shard's rows, in
order) and ``shards.json``, a manifest with the shapes, dtypes and SHA-256 of every file.
:func:`load_shards` gives Dask arrays whose chunks are the shards: reading a chunk is a
task that runs on a worker, so the data never pass through the client, and a chunk lost
with its worker is read again from its file. The directory must be at a path every
worker sees (a network file system; a local directory for a local cluster).

Writing streams: :func:`write_blocks` writes each ``(X_block, y_block)`` an iterator gives
as one shard, and :func:`read_blocks` reads a data file as such blocks, with the checks
and messages of :func:`nnlearn.datasets.load_data`: an ``.npz`` file's ``X`` from its zip
member (its ``.npy`` header, then rows), a CSV file a block of lines at a time, an IDX
images file block by block after its header, a shard directory shard by shard. So the
memory a layout takes is bounded by a few shards (one block, its checks' temporaries and
the labels, which are read whole), whatever the data's size; a ``.mat`` file is loaded
whole (SciPy reads no part of one), as are the built-in datasets and an ``.npz`` file's
``X`` saved in Fortran order (column after column: no row is whole before the last column). The loaders' size limits
(``MAX_DATA_BYTES`` and the like) bound what is held in memory and do not apply here; a
compressed input may still claim no more than compression can give.

The shards keep the input's dtype (float32 stays float32, an IDX file's bytes stay bytes)
and are read back as :func:`load_data` reads the input: X stored as integers or booleans
is read as float64, IDX pixels divided by 255 as :func:`nnlearn.datasets.read_idx` divides
them (the manifest's ``X_divisor``). Shards are written to temporary files and put in
place once all are written, the manifest last: a failure midway leaves a directory being
replaced as it was, and no directory claims to be whole before it is.

:func:`split_by_shard` holds rows out of such data shard by shard, so that the chunks of
both parts are the shards' rows, whatever Dask's own chunk size.

Why ``.npy`` files rather than Zarr: nnlearn's shards are plain row blocks read whole, so
one file per shard needs nothing beyond NumPy (Zarr would be one more dependency), any
NumPy reads a shard, and each can be memory-mapped; Zarr earns its place with chunked
compression and object stores, which a later layout may add beside this one.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import itertools
import json
import math
import os
import secrets
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import DataError, ParameterError, first_line
from ..persist._atomic import _TEMP_SUFFIX, atomic_write, check_replaceable, temporary_prefix
from ..persist._reading import _npy_header, _read_member, _Refused, _scan, open_regular, regular_file
from ._check import check_labels
from ._files import MAX_INFLATION, _is_numeric_row, _rows, load_mat
from ._idx import (
    _GZIP_MAGIC,
    _IMAGES_MAGIC,
    _LABELS_MAGIC,
    _labels_beside,
    _read_idx_file,
    _wrong_magic,
    _wrong_size,
    is_idx_path,
)

__all__ = [
    "write_shards",
    "write_blocks",
    "read_blocks",
    "row_blocks",
    "load_shards",
    "split_by_shard",
    "Blocks",
    "MANIFEST",
]

MANIFEST = "shards.json"
LAYOUT = "nnlearn-shards"
#: Version 2 stores X in the input's dtype: integers and booleans are read as float64,
#: divided by the manifest's ``X_divisor`` where it gives one. Version 1 is read too.
LAYOUT_VERSION = 2
_VERSIONS_READ = (1, 2)
#: What read_idx divides an IDX file's bytes by.
IDX_DIVISOR = 255.0
# Deflate gives at most about 1032 bytes for one: a gzip header claiming more lies.
_DEFLATE_RATIO = 1032
# Compressed data are read in pieces of this size into the block itself.
_PIECE = 2**18


class Blocks(NamedTuple):
    """A dataset as row blocks, one shard each, and the ``X_divisor`` its manifest records."""

    blocks: Iterator[tuple[np.ndarray, np.ndarray]]
    X_divisor: float | None = None


# ---------------------------------------------------------------------- writing


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()  # through one small buffer


def _checked_rows(rows_per_shard: Any) -> int:
    if isinstance(rows_per_shard, bool) or not isinstance(rows_per_shard, (int, np.integer)) or rows_per_shard < 1:
        raise ParameterError(f"rows_per_shard must be an integer >= 1, got {rows_per_shard!r}")
    return int(rows_per_shard)


def row_blocks(X: np.ndarray, y: np.ndarray, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``X`` and ``y`` in blocks of ``rows`` rows (the last may have fewer): views, no copies."""
    for start in range(0, X.shape[0], rows):
        yield X[start : start + rows], y[start : start + rows]


def write_shards(X, y, path: str | os.PathLike, rows_per_shard: int, *, overwrite: bool = False) -> Path:
    """Write ``X`` and ``y`` as a shard directory (see the module's description).

    Parameters
    ----------
    X : array-like, shape (m, n)
        Numbers, kept in their dtype.
    y : array-like, shape (m,)
        Integer or text labels.
    path : str or Path
        A new directory (or, with ``overwrite``, a shard directory to replace).
    rows_per_shard : int
        Rows in every shard but the last.

    Returns
    -------
    Path
        The directory.
    """
    X, y = np.asarray(X), np.asarray(y)
    rows = _checked_rows(rows_per_shard)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise DataError(f"shards need X of shape (m, n) and y of shape (m,) with m >= 1; got {X.shape} and {y.shape}")
    write_blocks(row_blocks(X, y, rows), path, overwrite=overwrite)
    return Path(path)


def _replaced(path: Path, overwrite: bool) -> dict[str, Any] | None:
    """The manifest of the shard directory ``path`` that is to be replaced; None for a new one."""
    manifest_path = path / MANIFEST
    if path.exists() and not (overwrite and manifest_path.is_file()):
        raise DataError(
            f"{path} already exists; give a new directory"
            + ("" if manifest_path.is_file() else " (it is not a shard directory, so it is never replaced)")
        )
    return _manifest(path) if manifest_path.is_file() else None


def _checked_block(X: Any, y: Any, first: tuple | None, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One block in native byte order, checked against the shards' rules and the first block."""
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise DataError(f"{source}: shards need blocks of X (m, n) and y (m,); got {X.shape} and {y.shape}")
    if X.dtype.kind not in "fiub" or y.dtype.kind not in "iubU":
        raise DataError(f"{source}: shards hold numeric X and integer or text labels, got {X.dtype} and {y.dtype}")
    X = X.astype(X.dtype.newbyteorder("="), copy=False)
    y = y.astype(y.dtype.newbyteorder("="), copy=False)
    if first is not None and (X.shape[1], X.dtype, y.dtype) != first:
        raise DataError(
            f"{source}: a block of {X.shape[1]} features ({X.dtype}, labels {y.dtype}) follows blocks of "
            f"{first[0]} ({first[1]}, labels {first[2]}); every shard must hold the same kind of data"
        )
    return X, y


def _stage(path: Path, name: str, array: np.ndarray) -> Path:
    """``array`` as a .npy temporary file in ``path``, named as :func:`atomic_write` names its
    own: a killed writer's are removed by the next write in the directory."""
    final = path / name
    temporary = path / f"{temporary_prefix(final)}{secrets.token_hex(6)}{_TEMP_SUFFIX}"
    # O_EXCL with mode 0o666: a name of its own, and the permissions the umask gives.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _stage_shard(path: Path, index: int, X: np.ndarray, y: np.ndarray, staged: list[tuple[Path, str]]) -> dict:
    """Shard ``index`` staged (its temporary files added to ``staged``); its manifest entry."""
    entry: dict[str, Any] = {"rows": int(X.shape[0])}
    for name, array in (("X", X), ("y", y)):
        file = f"{name}-{index:05d}.npy"
        staged.append((_stage(path, file, array), file))
        entry[name] = {"file": file, "sha256": _sha256(staged[-1][0])}
    return entry


def _publish(path: Path, staged: list[tuple[Path, str]], old: dict[str, Any] | None) -> None:
    """Put the staged shards in place of the old ones: the old manifest goes first, so that
    a replacement cut short leaves no directory that claims to be whole."""
    if old is not None:
        (path / MANIFEST).unlink()
        for shard in old["shards"]:
            for name in ("X", "y"):
                (path / shard[name]["file"]).unlink(missing_ok=True)
    for temporary, name in staged:
        check_replaceable(path / name, overwrite=True)  # a directory or FIFO of that name stays
        os.replace(temporary, path / name)


def write_blocks(
    blocks: Iterable[tuple[Any, Any]],
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    X_divisor: float | None = None,
    source: str = "data",
) -> dict[str, Any]:
    """Write each ``(X_block, y_block)`` of ``blocks`` as one shard of a new shard directory.

    One block is held at a time: each is written to a temporary file in ``path`` as it
    comes, and all are put in place, then the manifest, once the last is written. A
    failure (an error of the blocks' reader, a full disk) removes the temporary files and
    leaves a directory being replaced as it was. Blocks of no rows are skipped.

    Parameters
    ----------
    blocks : iterable of (array, array), shapes (m_i, n) and (m_i,)
        The same n and dtypes in every block; closed (if it has ``close``) when done.
    path : str or Path
        A new directory (or, with ``overwrite``, a shard directory to replace).
    overwrite : bool
    X_divisor : float, optional
        Recorded in the manifest: the shards' X is read as float64 divided by it.
    source : str
        Named in the messages.

    Returns
    -------
    dict
        The manifest written.
    """
    path = Path(path)
    staged: list[tuple[Path, str]] = []
    made = False
    try:
        old = _replaced(path, overwrite)
        made = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
        shards: list[dict[str, Any]] = []
        first = None
        for X_block, y_block in blocks:
            X, y = _checked_block(X_block, y_block, first, source)
            first = X.shape[1], X.dtype, y.dtype
            if X.shape[0]:
                shards.append(_stage_shard(path, len(shards), X, y, staged))
            # One block at a time: this one goes before the reader makes the next.
            del X_block, y_block, X, y
        if first is None or not shards:
            raise DataError(f"{source}: no examples to lay out as shards")
        manifest = {
            "layout": LAYOUT,
            "version": LAYOUT_VERSION,
            "n_features": int(first[0]),
            "X_dtype": first[1].str,
            "y_dtype": first[2].str,
            **({} if X_divisor is None else {"X_divisor": float(X_divisor)}),
            "shards": shards,
        }
        _publish(path, staged, old)
        text = json.dumps(manifest, indent=1).encode()
        atomic_write(path / MANIFEST, lambda f: f.write(text), overwrite=True)
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        if made:
            with contextlib.suppress(OSError):  # not empty: shards put in place stay, unclaimed
                path.rmdir()
        raise
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
    return manifest


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
    rows = _checked_rows(rows_per_shard)
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


def _fill(stream: Any, raw: np.ndarray) -> int:
    """Read the bytes ``raw`` from ``stream`` in pieces until full or the stream ends; the count read."""
    done = 0
    while done < raw.size:
        piece = stream.read(min(_PIECE, raw.size - done))
        if not piece:
            break
        raw[done : done + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
        done += len(piece)
    return done


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
                        if _fill(stream, X_block.reshape(-1).view(np.uint8)) != X_block.nbytes:
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
    lines = _rows(path, None)
    width = None
    try:
        while chunk := _csv_lines(path, lines, rows):
            table = _csv_table(path, chunk, width)
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


def _csv_table(path: str, chunk: list[tuple[int, str]], width: int | None) -> np.ndarray:
    """The numbers of a block of lines; DataError naming a bad line (as load_csv names it)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt([line for _, line in chunk], delimiter=",", comments=None, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(
            _csv_problem(path, chunk, width) or f"{path}: not a readable CSV file ({first_line(exc)})"
        ) from None
    if width is not None and table.shape[1] != width:
        raise DataError(_csv_problem(path, chunk, width) or f"{path}: rows of {table.shape[1]} cells, not {width}")
    return table


def _csv_problem(path: str, chunk: list[tuple[int, str]], width: int | None) -> str | None:
    """The message for the first malformed line of a block, or None; ``width``: the first row's."""
    for number, line in chunk:
        cells = line.rstrip("\r\n").split(",")
        width = len(cells) if width is None else width
        if len(cells) != width:
            return f"{path}: line {number} has {len(cells)} cells, the first row has {width}"
        if not _is_numeric_row(line):
            return f"{path}: line {number} has a non-numeric cell (labels too must be numbers)"
    return None


def _idx_blocks(path: str, rows: int) -> Iterator[Any]:
    """An IDX images file's bytes, ``rows`` images at a time unrolled column-major, and its labels."""
    size = regular_file(path, DataError, "IDX images file").stat().st_size
    compressed = False
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) if compressed else contextlib.nullcontext(raw) as f:
                shape = _idx_header(path, f, size, compressed)
                m, height, width = shape
                y = _idx_labels(path, m)
                yield None
                for start in range(0, m, rows):
                    pixels = np.empty(min(rows, m - start) * height * width, dtype=np.uint8)
                    filled = _fill(f, pixels)
                    if filled != pixels.size:  # a gzip stream that ends early (a plain file's size was checked)
                        told = f"it decompresses to {16 + start * height * width + filled:,}"
                        raise DataError(_wrong_size(path, "images", shape, 16 + math.prod(shape), told))
                    X_block = pixels.reshape(-1, height, width).transpose(0, 2, 1).reshape(-1, height * width)
                    del pixels  # one block in memory at a time
                    yield X_block, y[start : start + X_block.shape[0]]
                    del X_block
                if f.read(1):  # data after the end; for gzip, the read checks its CRC too
                    raise DataError(
                        _wrong_size(path, "images", shape, 16 + math.prod(shape), "it decompresses to more")
                    )
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        damaged = "truncated or damaged gzip data: " if compressed else ""
        raise DataError(f"{path}: not a readable IDX images file ({damaged}{first_line(exc)})") from None


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
    manifest = _manifest(path)
    if not manifest["shards"]:
        raise DataError(f"{path / MANIFEST}: the shard directory holds no shards")
    n = manifest["n_features"]

    def stored():
        for shard in manifest["shards"]:
            X = _read_shard(
                str(path / shard["X"]["file"]), shard["X"].get("sha256"), (shard["rows"], n), manifest["X_dtype"]
            )
            y = _read_shard(
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


# ---------------------------------------------------------------------- reading shards


def _read_dtype(stored: np.dtype, divisor: float | None) -> np.dtype:
    """The dtype shards of ``stored`` X are read in: float32 and float64 as they are, else float64."""
    return stored if divisor is None and stored.kind == "f" and stored.itemsize in (4, 8) else np.dtype(np.float64)


def _read_shard(file: str, sha256: str | None, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """One shard file as stored, checked against the manifest (on a worker)."""
    path = regular_file(file, DataError, "shard", max_bytes=int(np.prod(shape)) * np.dtype(dtype).itemsize + 4096)
    if sha256 is not None and _sha256(path) != sha256:
        raise DataError(f"{file}: does not match its checksum in {MANIFEST}; the shard was altered")
    array = np.load(path, allow_pickle=False)
    if array.shape != shape or array.dtype != np.dtype(dtype):
        raise DataError(f"{file}: holds {array.shape} {array.dtype}, the manifest says {shape} {np.dtype(dtype)}")
    return array


def _read_X_shard(
    file: str, sha256: str | None, shape: tuple[int, ...], dtype: str, divisor: float | None
) -> np.ndarray:
    """One X shard as load_data reads its input: see :func:`_read_dtype`."""
    array = _read_shard(file, sha256, shape, dtype)
    if divisor is not None:
        return array / divisor  # as read_idx divides, to the same bits
    return array.astype(_read_dtype(array.dtype, None), copy=False)


def _manifest(path: Path) -> dict[str, Any]:
    file = regular_file(path / MANIFEST, DataError, "shard manifest", max_bytes=64 << 20)
    try:
        manifest = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DataError(f"{file}: not a readable shard manifest") from None
    ok = (
        isinstance(manifest, dict)
        and manifest.get("layout") == LAYOUT
        and isinstance(manifest.get("shards"), list)
        and isinstance(manifest.get("n_features"), int)
        and manifest["n_features"] >= 1
    )
    if not ok:
        raise DataError(f"{file}: not an nnlearn shard manifest")
    if manifest.get("version") not in _VERSIONS_READ:
        raise DataError(f"{file}: shard layout version {manifest.get('version')} is not one this nnlearn reads")
    for key, kinds in (("X_dtype", "fiub"), ("y_dtype", "iubU")):
        try:
            dtype = np.dtype(manifest.get(key))
        except TypeError:
            dtype = None
        if not isinstance(manifest.get(key), str) or dtype is None or dtype.kind not in kinds:
            raise DataError(f"{file}: {key} {manifest.get(key)!r} is not a dtype shards hold")
    divisor = manifest.get("X_divisor")
    if divisor is not None and not (
        isinstance(divisor, (int, float)) and not isinstance(divisor, bool) and math.isfinite(divisor) and divisor > 0
    ):
        raise DataError(f"{file}: X_divisor {divisor!r} is not a positive number")
    for shard in manifest["shards"]:
        if not isinstance(shard, dict):
            raise DataError(f"{file}: a shard entry is malformed")
        files_ok = all(
            isinstance(shard.get(name), dict)
            and isinstance(shard[name].get("file"), str)
            and "/" not in shard[name]["file"]
            and shard[name]["file"] not in ("", ".", "..")
            for name in ("X", "y")
        )
        if not (isinstance(shard, dict) and isinstance(shard.get("rows"), int) and shard["rows"] >= 1 and files_ok):
            raise DataError(f"{file}: a shard entry is malformed")
    return manifest


def load_shards(path: str | os.PathLike, *, verify: bool = True) -> tuple[Any, Any]:
    """A shard directory as Dask arrays, one chunk per shard, read by the workers.

    Parameters
    ----------
    path : str or Path
        A directory written by :func:`write_shards` (or ``nnlearn shard``), at a path the
        workers see too.
    verify : bool
        Check each shard's SHA-256 when a worker reads it.

    Returns
    -------
    X : dask.array.Array, shape (m, n)
        float32 or float64 as stored; integers and booleans as float64, divided by the
        manifest's ``X_divisor`` where it gives one (IDX pixels: 255), as
        :func:`load_data` reads the input.
    y : dask.array.Array, shape (m,)
    """
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise ParameterError('reading shards needs Dask: pip install "nnlearn[cluster]"') from None
    path = Path(path).resolve()
    if not path.is_dir():
        raise DataError(f"{path}: not a shard directory (no such directory)")
    manifest = _manifest(path)
    n = manifest["n_features"]
    X_dtype, y_dtype = np.dtype(manifest["X_dtype"]), np.dtype(manifest["y_dtype"])
    divisor = manifest.get("X_divisor")
    X_read = _read_dtype(X_dtype, divisor)
    X_blocks: list[Any] = []
    y_blocks: list[Any] = []
    read_X = dask.delayed(_read_X_shard, pure=True)
    read_y = dask.delayed(_read_shard, pure=True)
    for shard in manifest["shards"]:
        rows = shard["rows"]
        sha = {name: shard[name].get("sha256") if verify else None for name in ("X", "y")}
        X = read_X(str(path / shard["X"]["file"]), sha["X"], (rows, n), X_dtype.str, divisor)
        y = read_y(str(path / shard["y"]["file"]), sha["y"], (rows,), y_dtype.str)
        X_blocks.append(da.from_delayed(X, (rows, n), X_read))
        y_blocks.append(da.from_delayed(y, (rows,), y_dtype))
    if not X_blocks:
        raise DataError(f"{path / MANIFEST}: the shard directory holds no shards")
    return da.concatenate(X_blocks, axis=0), da.concatenate(y_blocks, axis=0)


# ---------------------------------------------------------------------- splitting


def _rows_of(block: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return block[keep]


def _kept_rows(X: Any, keep: np.ndarray) -> Any:
    """The rows ``keep`` marks of a Dask ``X``, one chunk per row chunk that keeps any."""
    import dask.array as da

    parts = []
    bounds = np.concatenate([[0], np.cumsum(X.chunks[0])])
    for i, (start, stop) in enumerate(itertools.pairwise(bounds)):
        mask = keep[start:stop]
        count = int(np.count_nonzero(mask))
        if count:  # chunks given outright: Dask's chunk-size setting plays no part
            parts.append(X.blocks[i].map_blocks(_rows_of, keep=mask, chunks=((count,), X.chunks[1]), dtype=X.dtype))
    return da.concatenate(parts, axis=0)


def split_by_shard(X: Any, y: Any, test_size: float, seed: int | None) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """A stratified train/test split of a Dask ``X`` that keeps its shards as chunks.

    The rows held out are those of :func:`nnlearn.datasets.split` (scikit-learn's
    ``train_test_split`` of the row numbers, ``random_state=seed``, stratified by ``y``);
    both parts keep the rows' order. Each shard (row chunk of ``X``) gives one chunk of
    ``X_train``, its rows kept, and one of ``X_test``, its rows held out; a shard with no
    rows in a part gives that part no chunk.

    Parameters
    ----------
    X : dask.array.Array, shape (m, n)
        Row chunks are shards (:func:`load_shards`).
    y : ndarray, shape (m,)
    test_size : float or int
        As ``train_test_split`` takes it.
    seed : int or None

    Returns
    -------
    X_train, X_test : dask.array.Array
    y_train, y_test : ndarray
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DataError(f"X has {X.shape[0]} rows but y has shape {y.shape}")
    train_rows, _ = train_test_split(np.arange(len(y)), test_size=test_size, random_state=seed, stratify=y)
    train = np.zeros(len(y), dtype=bool)
    train[train_rows] = True
    return _kept_rows(X, train), _kept_rows(X, ~train), y[train], y[~train]
