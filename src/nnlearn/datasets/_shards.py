"""Data laid out for a cluster: a directory of ``.npy`` shards that each worker reads itself.

A shard directory holds ``X-00000.npy``, ``y-00000.npy``, ... (each shard's rows, in
order) and ``shards.json``, a manifest with the shapes, dtypes and SHA-256 of every file.
:func:`load_shards` gives Dask arrays whose chunks are the shards: reading a chunk is a
task that runs on a worker, so the data never pass through the client, and a chunk lost
with its worker is read again from its file. The directory must be at a path every
worker sees (a network file system; a local directory for a local cluster).

Writing streams: :func:`write_blocks` writes each ``(X_block, y_block)`` an iterator gives
as one shard, one block in memory at a time; :mod:`nnlearn.datasets._streams` reads a
data file (or another shard directory) as such blocks, for ``nnlearn shard``.

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
import hashlib
import itertools
import json
import math
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, ParameterError
from ..persist._atomic import _TEMP_SUFFIX, atomic_write, check_replaceable, temporary_prefix
from ..persist._reading import regular_file

__all__ = [
    "write_shards",
    "write_blocks",
    "row_blocks",
    "load_shards",
    "read_manifest",
    "read_shard",
    "split_by_shard",
    "checked_rows",
    "MANIFEST",
]

MANIFEST = "shards.json"
LAYOUT = "nnlearn-shards"
#: Version 2 stores X in the input's dtype: integers and booleans are read as float64,
#: divided by the manifest's ``X_divisor`` where it gives one. Version 1 is read too.
LAYOUT_VERSION = 2
_VERSIONS_READ = (1, 2)


# ---------------------------------------------------------------------- writing


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()  # through one small buffer


def checked_rows(rows_per_shard: Any) -> int:
    """``rows_per_shard`` as an int; ParameterError unless it is an integer >= 1."""
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
    rows = checked_rows(rows_per_shard)
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
    return read_manifest(path) if manifest_path.is_file() else None


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


# ---------------------------------------------------------------------- reading shards


def _read_dtype(stored: np.dtype, divisor: float | None) -> np.dtype:
    """The dtype shards of ``stored`` X are read in: float32 and float64 as they are, else float64."""
    return stored if divisor is None and stored.kind == "f" and stored.itemsize in (4, 8) else np.dtype(np.float64)


def read_shard(file: str, sha256: str | None, shape: tuple[int, ...], dtype: str) -> np.ndarray:
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
    array = read_shard(file, sha256, shape, dtype)
    if divisor is not None:
        return array / divisor  # as read_idx divides, to the same bits
    return array.astype(_read_dtype(array.dtype, None), copy=False)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the shard directory ``path``, checked; DataError saying what is wrong with it."""
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
    manifest = read_manifest(path)
    n = manifest["n_features"]
    X_dtype, y_dtype = np.dtype(manifest["X_dtype"]), np.dtype(manifest["y_dtype"])
    divisor = manifest.get("X_divisor")
    X_read = _read_dtype(X_dtype, divisor)
    X_blocks: list[Any] = []
    y_blocks: list[Any] = []
    read_X = dask.delayed(_read_X_shard, pure=True)
    read_y = dask.delayed(read_shard, pure=True)
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
