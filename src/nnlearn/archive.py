"""nnlearn's archives: NumPy ``.npz`` files with a JSON document and checksums.

An archive holds named arrays and ``meta``, a JSON document with ``format`` (its kind:
"nnlearn-model", "nnlearn-checkpoint"), ``format_version`` and the SHA-256 of every
array. It is read with ``allow_pickle=False`` and its checksums are verified; model
files (:mod:`nnlearn.model`) and checkpoints (:mod:`nnlearn.modelio`) are archives.

Format versions: 1 (nnlearn 0.1); 2 adds a model's ``network`` (its activation and
output). A file of a newer version than :data:`FORMAT_VERSION` is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFileError
from .files import atomic_write, read_npz

__all__ = ["FORMAT_VERSION", "write_archive", "read_archive", "read_meta"]

FORMAT_VERSION = 2


def _digest(array):
    array = np.ascontiguousarray(array)
    header = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(header + array.tobytes()).hexdigest()


def write_archive(
    path: str | os.PathLike, kind: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], overwrite: bool
) -> Path:
    """Write arrays and a JSON document (with the arrays' checksums) as one ``.npz``."""
    meta = {
        "format": kind,
        "format_version": FORMAT_VERSION,
        **meta,
        "sha256": {name: _digest(array) for name, array in arrays.items()},
    }
    arrays = {**arrays, "meta": np.array(json.dumps(meta))}
    # ignore: mypy reads **arrays as possibly filling savez_compressed's allow_pickle: bool
    return atomic_write(path, lambda f: np.savez_compressed(f, **arrays), overwrite=overwrite)  # type: ignore[arg-type]


def read_archive(path: str | os.PathLike, kind: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and JSON document of an archive of ``kind``, checksums verified."""
    what = kind.replace("nnlearn-", "") + " file"
    arrays = read_npz(path, ModelFileError, what)
    meta = read_meta(path, arrays.pop("meta", None), kind, what)
    expected = meta.get("sha256", {})
    for name, array in arrays.items():
        if expected.get(name) != _digest(array):
            raise ModelFileError(f"{path}: array {name!r} does not match its checksum; the file was altered")
    if set(expected) != set(arrays):
        raise ModelFileError(f"{path}: arrays are missing from the {what}; the file was altered")
    return arrays, meta


def read_meta(path: str | os.PathLike, meta: np.ndarray | None, kind: str, what: str) -> dict[str, Any]:
    if meta is None or meta.dtype.kind != "U" or meta.ndim != 0:
        raise ModelFileError(f"{path}: not an nnlearn {what} (no metadata)")
    try:
        meta = json.loads(str(meta))
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: the {what}'s metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != kind:
        raise ModelFileError(f"{path}: not an nnlearn {what}")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: {what} format version {version} is newer than this nnlearn reads "
            f"({FORMAT_VERSION}); upgrade nnlearn"
        )
    return meta
