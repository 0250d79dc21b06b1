"""Data laid out for a cluster: a directory of ``.npy`` shards that each worker reads itself.

A shard directory holds ``X-00000.npy``, ``y-00000.npy``, ... (each shard's rows, in
order) and ``shards.json``, a manifest with the shapes, dtypes and SHA-256 of every file.
:func:`load_shards` gives Dask arrays whose chunks are the shards: reading a chunk is a
task that runs on a worker, so the data never pass through the client, and a chunk lost
with its worker is read again from its file. The directory must be at a path every
worker sees (a network file system; a local directory for a local cluster).

Why ``.npy`` files rather than Zarr: nnlearn's shards are plain row blocks read whole, so
one file per shard needs nothing beyond NumPy (Zarr would be one more dependency), any
NumPy reads a shard, and each can be memory-mapped; Zarr earns its place with chunked
compression and object stores, which a later layout may add beside this one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import DataError, ParameterError
from ..persist._atomic import atomic_write
from ..persist._reading import regular_file

__all__ = ["write_shards", "load_shards", "MANIFEST"]

MANIFEST = "shards.json"
LAYOUT = "nnlearn-shards"
LAYOUT_VERSION = 1


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _save_npy(f: BinaryIO, array: np.ndarray) -> None:
    np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def write_shards(X, y, path: str | os.PathLike, rows_per_shard: int, *, overwrite: bool = False) -> Path:
    """Write ``X`` and ``y`` as a shard directory (see the module's description).

    Parameters
    ----------
    X : array-like, shape (m, n)
    y : array-like, shape (m,)
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
    if isinstance(rows_per_shard, bool) or not isinstance(rows_per_shard, (int, np.integer)) or rows_per_shard < 1:
        raise ParameterError(f"rows_per_shard must be an integer >= 1, got {rows_per_shard!r}")
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise DataError(f"shards need X of shape (m, n) and y of shape (m,) with m >= 1; got {X.shape} and {y.shape}")
    if X.dtype.kind not in "fiub" or y.dtype.kind not in "iubU":
        raise DataError(f"shards hold numeric X and integer or text labels, got {X.dtype} and {y.dtype}")
    path = Path(path)
    manifest_path = path / MANIFEST
    if path.exists() and not (overwrite and manifest_path.is_file()):
        raise DataError(
            f"{path} already exists; give a new directory"
            + ("" if manifest_path.is_file() else " (it is not a shard directory, so it is never replaced)")
        )
    if manifest_path.is_file():
        # Replacing a shard directory: the old manifest goes first, so that a replacement
        # cut short leaves no directory that claims to be whole, then the old shards.
        old = _manifest(path)
        manifest_path.unlink()
        for shard in old["shards"]:
            for name in ("X", "y"):
                (path / shard[name]["file"]).unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    shards = []
    for index, start in enumerate(range(0, X.shape[0], int(rows_per_shard))):
        rows = slice(start, start + int(rows_per_shard))
        entry: dict[str, Any] = {"rows": int(X[rows].shape[0])}
        for name, array in (("X", X[rows]), ("y", y[rows])):
            file = path / f"{name}-{index:05d}.npy"
            atomic_write(file, functools.partial(_save_npy, array=array), overwrite=True)
            entry[name] = {"file": file.name, "sha256": _sha256(file)}
        shards.append(entry)
    manifest = {
        "layout": LAYOUT,
        "version": LAYOUT_VERSION,
        "n_features": int(X.shape[1]),
        "X_dtype": X.dtype.str,
        "y_dtype": y.dtype.str,
        "shards": shards,
    }
    atomic_write(manifest_path, lambda f: f.write(json.dumps(manifest, indent=1).encode()), overwrite=True)
    return path


def _read_shard(file: str, sha256: str | None, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """One shard file, checked against the manifest (on a worker)."""
    path = regular_file(file, DataError, "shard", max_bytes=int(np.prod(shape)) * np.dtype(dtype).itemsize + 4096)
    if sha256 is not None and _sha256(path) != sha256:
        raise DataError(f"{file}: does not match its checksum in {MANIFEST}; the shard was altered")
    array = np.load(path, allow_pickle=False)
    if array.shape != shape or array.dtype != np.dtype(dtype):
        raise DataError(f"{file}: holds {array.shape} {array.dtype}, the manifest says {shape} {np.dtype(dtype)}")
    return array


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
    if manifest.get("version") != LAYOUT_VERSION:
        raise DataError(f"{file}: shard layout version {manifest.get('version')} is not one this nnlearn reads")
    for key, kinds in (("X_dtype", "fiub"), ("y_dtype", "iubU")):
        try:
            dtype = np.dtype(manifest.get(key))
        except TypeError:
            dtype = None
        if not isinstance(manifest.get(key), str) or dtype is None or dtype.kind not in kinds:
            raise DataError(f"{file}: {key} {manifest.get(key)!r} is not a dtype shards hold")
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
        A directory written by :func:`write_shards`, at a path the workers see too.
    verify : bool
        Check each shard's SHA-256 when a worker reads it.

    Returns
    -------
    X : dask.array.Array, shape (m, n)
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
    X_blocks: list[Any] = []
    y_blocks: list[Any] = []
    read = dask.delayed(_read_shard, pure=True)
    for shard in manifest["shards"]:
        rows = shard["rows"]
        for name, shape, dtype, blocks in (("X", (rows, n), X_dtype, X_blocks), ("y", (rows,), y_dtype, y_blocks)):
            entry = shard[name]
            sha = entry.get("sha256") if verify else None
            blocks.append(da.from_delayed(read(str(path / entry["file"]), sha, shape, dtype.str), shape, dtype))
    if not X_blocks:
        raise DataError(f"{path / MANIFEST}: the shard directory holds no shards")
    return da.concatenate(X_blocks, axis=0), da.concatenate(y_blocks, axis=0)
