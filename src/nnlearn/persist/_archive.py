"""nnlearn's archives: NumPy ``.npz`` files with a JSON document and checksums.

An archive holds named arrays and ``meta``, a JSON document with ``format`` (its kind:
"nnlearn-model", "nnlearn-checkpoint"), ``format_version`` and ``sha256``, the SHA-256
of every array. It is read with ``allow_pickle=False``; model files
(:mod:`nnlearn.model._model`) and checkpoints (:mod:`nnlearn.model._octave`) are archives.

Format versions: 1 (nnlearn 0.1); 2 adds a model's ``network`` (its activation and
output) and ``sha256["meta"]``, the SHA-256 of the document itself (its canonical JSON:
sorted keys, no spaces, ASCII, without ``sha256["meta"]``). A file of a newer version
than :data:`FORMAT_VERSION` is refused.

The checksums are unkeyed: anyone who edits a file can recompute them, so they only
catch accidents (a damaged copy, a half-finished edit). The defence is the schema every
document is checked against before anything else of nnlearn reads it: each kind gives
one per format version, built from the checks of :mod:`nnlearn.persist._schema` (:func:`integer`,
:func:`number`, :func:`text`, :func:`array`, :func:`record`, ...; re-exported here) and
:func:`document`. Before the JSON is parsed at all, its length is bounded by
:data:`MAX_META_CHARS` and its nesting depth by :data:`MAX_DEPTH`, so that a crafted
document can neither exhaust the memory nor recurse the parser deep.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError
from ._atomic import atomic_write
from ._reading import read_npz
from ._schema import (
    MAX_NAME,
    Check,
    SchemaError,
    checksums,
    integer,
    is_integer,
    record,
    shown,
    text,
)

__all__ = [
    "FORMAT_VERSION",
    "MAX_META_CHARS",
    "MAX_DEPTH",
    "write_archive",
    "read_archive",
    "read_meta",
    "plain",
    "document",
]

FORMAT_VERSION = 2

#: The longest JSON document read, in characters. A cost history of a million iterations
#: takes about 20 million; a longer document is not one nnlearn wrote.
MAX_META_CHARS = 2**26
#: The deepest nesting of lists and objects read. nnlearn writes at most 4 levels (a
#: checkpoint's state.rng.state); the parser recurses once per level.
MAX_DEPTH = 8

# JSON strings, whose brackets are not structure: a quote, then anything but a quote or a
# backslash, or any escaped character (the unrolled form, linear on any input).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def document(fields: Mapping[str, Check], *, optional: Collection[str] = (), **options: Any) -> Check:
    """The schema of a whole document: ``fields`` and those every archive has.

    ``format`` and ``format_version`` were checked before (:func:`read_meta`); ``sha256``
    maps names to hexadecimal SHA-256s. Other options are as for :func:`record`.
    """
    common: dict[str, Check] = {
        "format": text(MAX_NAME),
        "format_version": integer(1, FORMAT_VERSION),
        "sha256": checksums(),
    }
    return record({**common, **fields}, optional=optional, **options)


# --------------------------------------------------------------------- writing, reading


def _digest(array):
    array = np.ascontiguousarray(array)
    header = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(header + array.tobytes()).hexdigest()


def _canonical_digest(meta: Mapping[str, Any]) -> str:
    """SHA-256 of a document's canonical JSON, without its own ``sha256["meta"]``.

    Canonical: sorted keys, no spaces, ASCII only, so that the same values always give the
    same bytes however the document was laid out (Python's floats print their shortest
    exact form, so they round-trip).
    """
    digests = meta.get("sha256")
    if isinstance(digests, dict):
        meta = {**meta, "sha256": {name: value for name, value in digests.items() if name != "meta"}}
    canonical = json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _nesting(text: str) -> int:
    """How deep lists and objects nest in JSON ``text``, counted without parsing it.

    Brackets inside strings are not structure, so strings go first. For malformed JSON the
    count may be too high, never too low before the point where a parser would fail.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def plain(value: Any) -> Any:
    """``value`` as JSON takes it: NumPy scalars as Python numbers, tuples as lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def write_archive(
    path: str | os.PathLike,
    kind: str,
    arrays: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
    overwrite: bool,
    *,
    schema: Check | None = None,
) -> Path:
    """Write arrays and a JSON document (with the checksums) as one ``.npz``.

    Parameters
    ----------
    path : str or Path
    kind : str
        The archive's ``format``.
    arrays : mapping of str to ndarray
    meta : mapping
        The document's own fields, JSON-compatible (NumPy scalars and tuples are converted).
    overwrite : bool
        Replace an existing file.
    schema : Check, optional
        The current format version's schema: a document it refuses is not written, so that
        nnlearn never writes a file it would refuse to read.

    Raises
    ------
    ModelFileError
        The document cannot be written as JSON, or its schema refuses it.
    """
    doc = {
        "format": kind,
        "format_version": FORMAT_VERSION,
        **plain(dict(meta)),
        "sha256": {name: _digest(array) for name, array in arrays.items()},
    }
    try:
        # What a reader will see, tuples and all, is what the checksum covers.
        doc = json.loads(json.dumps(doc))
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot be saved: its metadata is not JSON ({exc})") from None
    if schema is not None:
        try:
            schema(doc, "")
        except SchemaError as exc:
            raise ModelFileError(f"{path}: cannot be saved: {exc}") from None
    doc["sha256"]["meta"] = _canonical_digest(doc)
    content = json.dumps(doc)
    if len(content) > MAX_META_CHARS or _nesting(content) > MAX_DEPTH:
        raise ModelFileError(f"{path}: cannot be saved: its metadata is larger or deeper than nnlearn reads")
    arrays = {**arrays, "meta": np.array(content)}
    # ignore: mypy reads **arrays as possibly filling savez_compressed's allow_pickle: bool
    return atomic_write(path, lambda f: np.savez_compressed(f, **arrays), overwrite=overwrite)  # type: ignore[arg-type]


def read_archive(
    path: str | os.PathLike, kind: str, schemas: Mapping[int, Check], max_bytes: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and JSON document of an archive of ``kind``, checked.

    Parameters
    ----------
    path : str or Path
    kind : str
        The ``format`` expected.
    schemas : mapping of int to Check
        The schema of each format version this nnlearn reads.
    max_bytes : int, optional
        The most bytes its arrays (not counting ``meta``) may hold, checked on their
        headers before any is inflated; by default a quarter of the physical memory
        (:func:`nnlearn.persist._reading.read_npz`). ``meta`` may hold :data:`MAX_META_CHARS`
        characters besides.

    Returns
    -------
    arrays : dict of str to ndarray
    meta : dict
        The document, allowed by its version's schema.

    Raises
    ------
    ModelFileError
        The file is not such an archive, is of a format version this nnlearn does not
        read, fails a checksum, or its document fails the schema.
    """
    what = kind.replace("nnlearn-", "") + " file"
    # meta is a 0-d str array: 4 bytes a character. Bounded on its header, so that an
    # oversized document is refused before it is inflated, let alone parsed.
    limits = {"meta": 4 * MAX_META_CHARS}
    # The document first, alone (every array's header is checked): a file without one
    # nnlearn accepts (any other zip, a crafted one) is refused before any of its other
    # arrays is inflated.
    first = read_npz(path, ModelFileError, what, max_bytes=max_bytes, member_limits=limits, names=("meta",))
    meta = read_meta(path, first.get("meta"), kind, what, schemas)
    arrays = read_npz(path, ModelFileError, what, max_bytes=max_bytes, member_limits=limits)
    again = arrays.pop("meta", None)
    if again is None or str(again) != str(first["meta"]):
        raise ModelFileError(f"{path}: the {what} changed while it was read; refused")
    expected = {name: digest for name, digest in meta["sha256"].items() if name != "meta"}
    for name, values in arrays.items():
        if expected.get(name) != _digest(values):
            raise ModelFileError(f"{path}: array {name!r} does not match its checksum; the file was altered")
    if set(expected) != set(arrays):
        raise ModelFileError(f"{path}: arrays are missing from the {what}; the file was altered")
    return arrays, meta


def read_meta(
    path: str | os.PathLike, meta: np.ndarray | None, kind: str, what: str, schemas: Mapping[int, Check]
) -> dict[str, Any]:
    """The JSON document of an archive, from its ``meta`` array, checked.

    In order: its size and nesting depth (before parsing), that it is JSON and an object
    of ``kind``, its format version, its schema, its own checksum (format 2 on).

    Raises
    ------
    ModelFileError
        Naming ``path`` and what is wrong, in one line.
    """
    if meta is None or meta.dtype.kind != "U" or meta.ndim != 0:
        raise ModelFileError(f"{path}: not an nnlearn {what} (no metadata)")
    if meta.dtype.itemsize // 4 > MAX_META_CHARS:
        raise ModelFileError(f"{path}: the {what}'s metadata is larger than nnlearn writes; refused")
    content = str(meta)
    if _nesting(content) > MAX_DEPTH:
        raise ModelFileError(f"{path}: the {what}'s metadata nests deeper than nnlearn writes; refused")
    try:
        doc = json.loads(content)
    except RecursionError:  # cannot happen after the depth check; kept as the parser's own guard
        raise ModelFileError(f"{path}: the {what}'s metadata nests deeper than nnlearn writes; refused") from None
    except ValueError:  # invalid JSON, or an integer of more digits than Python converts
        raise ModelFileError(f"{path}: the {what}'s metadata is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != kind:
        raise ModelFileError(f"{path}: not an nnlearn {what}")
    version = doc.get("format_version")
    if is_integer(version) and version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: {what} format version {version} is newer than this nnlearn reads "
            f"({FORMAT_VERSION}); upgrade nnlearn"
        )
    if not is_integer(version) or version not in schemas:
        raise ModelFileError(f"{path}: {what} format version {shown(version)} is not one nnlearn wrote")
    try:
        schemas[version](doc, "")
    except SchemaError as exc:
        raise ModelFileError(f"{path}: the {what}'s metadata is refused: {exc}") from None
    # After the schema, so that what is hashed is bounded and what a newer nnlearn wrote
    # (a kind this one does not know) is said to be that, not an alteration.
    if version >= 2 and doc["sha256"].get("meta") != _canonical_digest(doc):
        raise ModelFileError(f"{path}: the {what}'s metadata does not match its checksum; the file was altered")
    return doc
