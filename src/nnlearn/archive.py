"""nnlearn's archives: NumPy ``.npz`` files with a JSON document and checksums.

An archive holds named arrays and ``meta``, a JSON document with ``format`` (its kind:
"nnlearn-model", "nnlearn-checkpoint"), ``format_version`` and ``sha256``, the SHA-256
of every array. It is read with ``allow_pickle=False``; model files
(:mod:`nnlearn.model`) and checkpoints (:mod:`nnlearn.modelio`) are archives.

Format versions: 1 (nnlearn 0.1); 2 adds a model's ``network`` (its activation and
output) and ``sha256["meta"]``, the SHA-256 of the document itself (its canonical JSON:
sorted keys, no spaces, ASCII, without ``sha256["meta"]``). A file of a newer version
than :data:`FORMAT_VERSION` is refused.

The checksums are unkeyed: anyone who edits a file can recompute them, so they only
catch accidents (a damaged copy, a half-finished edit). The defence is the schema every
document is checked against before anything else of nnlearn reads it: each kind gives
one per format version, built from the checks below (:func:`integer`, :func:`number`,
:func:`text`, :func:`array`, :func:`record`, ...). Before the JSON is parsed at all, its
length is bounded by :data:`MAX_META_CHARS` and its nesting depth by :data:`MAX_DEPTH`,
so that a crafted document can neither exhaust the memory nor recurse the parser deep.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from .errors import ModelFileError
from .files import atomic_write, read_npz

__all__ = [
    "FORMAT_VERSION",
    "MAX_META_CHARS",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_TEXT",
    "MAX_NAME",
    "Check",
    "SchemaError",
    "write_archive",
    "read_archive",
    "read_meta",
    "plain",
    "integer",
    "number",
    "boolean",
    "text",
    "nullable",
    "either",
    "array",
    "record",
    "anything",
    "document",
]

FORMAT_VERSION = 2

#: The longest JSON document read, in characters. A cost history of a million iterations
#: takes about 20 million; a longer document is not one nnlearn wrote.
MAX_META_CHARS = 2**26
#: The deepest nesting of lists and objects read. nnlearn writes at most 4 levels (a
#: checkpoint's state.rng.state); the parser recurses once per level.
MAX_DEPTH = 8
#: The most items a list in a document may have (a cost history: one per iteration).
MAX_ITEMS = 10**6
#: The longest string (file paths, messages) and the longest name (optimizer, dtype, a key).
MAX_TEXT = 4096
MAX_NAME = 64
#: The most keys an object may have.
MAX_KEYS = 100

# JSON strings, whose brackets are not structure: a quote, then anything but a quote or a
# backslash, or any escaped character (the unrolled form, linear on any input).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# What must not reach a terminal or a one-line message: control characters (C0, DEL,
# C1), lone surrogates (which cannot be encoded for printing), the line and paragraph
# separators and the bidirectional overrides (which reorder what is shown). Free text
# (messages) may hold tabs and line feeds.
_UNSHOWABLE = "\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069"
_NOT_A_LINE = re.compile(f"[\x00-\x1f{_UNSHOWABLE}]")
_NOT_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f{_UNSHOWABLE}]")
_HEX64 = re.compile(r"[0-9a-f]{64}")

#: A check of one value of a document: ``check(value, where)`` returns None or raises
#: :class:`SchemaError`; ``where`` names the value ("history.cost[3]").
Check = Callable[[Any, str], None]


class SchemaError(ValueError):
    """A value of an archive's document that its schema does not allow."""


# ------------------------------------------------------------------------------ checks


def _shown(value: Any) -> str:
    """A short, printable description of a value from a file, for a message."""
    if isinstance(value, dict):
        return f"an object of {len(value)} key{'' if len(value) == 1 else 's'}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    shown = ascii(value)  # escapes control characters and everything not ASCII
    return shown if len(shown) <= 40 else f"{shown[:36]}...{shown[-1]}"


def _at(where: str, key: str) -> str:
    """``where`` extended by an object's key, the key shown safely."""
    name = key if re.fullmatch(r"[A-Za-z0-9_.]{1,40}", key) else _shown(key)
    return f"{where}.{name}" if where else name


def _fail(where: str, wanted: str, value: Any) -> SchemaError:
    return SchemaError(f"{where or 'the document'} must be {wanted}, got {_shown(value)}")


def _is_int(value: Any) -> TypeGuard[int]:
    # bool is an int subclass; true is no count.
    return isinstance(value, int) and not isinstance(value, bool)


def integer(low: int, high: int) -> Check:
    """An integer (not a boolean) from ``low`` to ``high``."""

    def check(value: Any, where: str) -> None:
        if not (_is_int(value) and low <= value <= high):
            raise _fail(where, f"an integer from {low} to {high}", value)

    return check


def number(
    low: float = -math.inf,
    high: float = math.inf,
    *,
    open_low: bool = False,
    open_high: bool = False,
    finite: bool = True,
) -> Check:
    """A number (integer or float, not a boolean) in a range.

    Parameters
    ----------
    low, high : float
        The range, inclusive unless ``open_low`` / ``open_high``.
    finite : bool
        False also allows NaN and the infinities (with no range check): a per-iteration
        cost records a diverged step as it was.
    """
    interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    wanted = "a finite number" + ("" if (low, high) == (-math.inf, math.inf) else f" in {interval}")
    if not finite:
        wanted = "a number"

    def check(value: Any, where: str) -> None:
        if not (_is_int(value) or isinstance(value, float)):
            raise _fail(where, wanted, value)
        try:
            x = float(value)
        except OverflowError:  # an integer beyond any float
            raise _fail(where, wanted, value) from None
        if not math.isfinite(x):
            if finite or _is_int(value):
                raise _fail(where, wanted, value)
            return
        below = x <= low if open_low else x < low
        above = x >= high if open_high else x > high
        if below or above:
            raise _fail(where, wanted, value)

    return check


def boolean() -> Check:
    """true or false."""

    def check(value: Any, where: str) -> None:
        if not isinstance(value, bool):
            raise _fail(where, "true or false", value)

    return check


def text(max_len: int = MAX_TEXT, *, free: bool = False, choices: Collection[str] | None = None) -> Check:
    """A string of at most ``max_len`` characters that can be shown.

    Parameters
    ----------
    max_len : int
    free : bool
        Free text (a message) may hold tabs and line feeds; other strings (names, paths)
        are one line, so that a message quoting them stays one line.
    choices : collection of str, optional
        The only values allowed.
    """
    unshowable = _NOT_TEXT if free else _NOT_A_LINE
    wanted = (
        f"one of {', '.join(map(repr, choices))}"
        if choices is not None
        else (f"a string of at most {max_len} characters without control characters")
    )

    def check(value: Any, where: str) -> None:
        if not isinstance(value, str) or len(value) > max_len or unshowable.search(value):
            raise _fail(where, wanted, value)
        if choices is not None and value not in choices:
            raise _fail(where, wanted, value)

    return check


def nullable(check: Check) -> Check:
    """null, or what ``check`` allows."""

    def nullable_check(value: Any, where: str) -> None:
        if value is not None:
            check(value, where)

    return nullable_check


def either(*checks: Check, wanted: str) -> Check:
    """What any of ``checks`` allows; ``wanted`` says what that is, for the message."""

    def check(value: Any, where: str) -> None:
        for option in checks:
            try:
                option(value, where)
                return
            except SchemaError:
                continue
        raise _fail(where, wanted, value)

    return check


def array(item: Check, max_len: int = MAX_ITEMS) -> Check:
    """A list of at most ``max_len`` items, each allowed by ``item``."""

    def check(value: Any, where: str) -> None:
        if not isinstance(value, list) or len(value) > max_len:
            raise _fail(where, f"a list of at most {max_len} items", value)
        for i, element in enumerate(value):
            item(element, f"{where}[{i}]")

    return check


def anything() -> Check:
    """Any JSON value: for parts of a document that are refused whole later on."""
    return lambda value, where: None


def record(
    fields: Mapping[str, Check],
    *,
    optional: Collection[str] = (),
    extra: Check | None = None,
    about: Mapping[str, str] | None = None,
    max_keys: int = MAX_KEYS,
) -> Check:
    """An object with ``fields``: every one required unless named in ``optional``.

    Parameters
    ----------
    fields : mapping of str to Check
    optional : collection of str
        Fields that may be missing.
    extra : Check, optional
        Other keys (names of at most :data:`MAX_NAME` characters) are allowed, with values
        ``extra`` allows; without it, any other key is refused.
    about : mapping of str to str, optional
        What a field means, said when it is missing.
    max_keys : int
    """
    required = [name for name in fields if name not in optional]
    about = about or {}
    key_check = text(MAX_NAME)

    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict) or len(value) > max_keys:
            raise _fail(where, f"an object of at most {max_keys} keys", value)
        for name in required:
            if name not in value:
                meaning = f" ({about[name]})" if name in about else ""
                raise SchemaError(f"{_at(where, name)}{meaning} is missing")
        for key, element in value.items():
            if key in fields:
                fields[key](element, _at(where, key))
            elif extra is not None:
                key_check(key, f"a key of {where or 'the document'}")
                extra(element, _at(where, key))
            else:
                raise SchemaError(f"{_at(where, key)} is not a key {where or 'the document'} may have")

    return check


def _digests() -> Check:
    def hex64(value: Any, where: str) -> None:
        if not (isinstance(value, str) and _HEX64.fullmatch(value)):
            raise _fail(where, "a SHA-256 in hexadecimal", value)

    # One per array: a model's weight matrices (one per layer), its classes and the document.
    return record({}, extra=hex64, max_keys=1000)


def document(fields: Mapping[str, Check], *, optional: Collection[str] = (), **options: Any) -> Check:
    """The schema of a whole document: ``fields`` and those every archive has.

    ``format`` and ``format_version`` were checked before (:func:`read_meta`); ``sha256``
    maps names to hexadecimal SHA-256s. Other options are as for :func:`record`.
    """
    common: dict[str, Check] = {
        "format": text(MAX_NAME),
        "format_version": integer(1, FORMAT_VERSION),
        "sha256": _digests(),
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
    path: str | os.PathLike, kind: str, schemas: Mapping[int, Check]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and JSON document of an archive of ``kind``, checked.

    Parameters
    ----------
    path : str or Path
    kind : str
        The ``format`` expected.
    schemas : mapping of int to Check
        The schema of each format version this nnlearn reads.

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
    arrays = read_npz(path, ModelFileError, what)
    meta = read_meta(path, arrays.pop("meta", None), kind, what, schemas)
    expected = {name: digest for name, digest in meta["sha256"].items() if name != "meta"}
    for name, array in arrays.items():
        if expected.get(name) != _digest(array):
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
    if _is_int(version) and version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: {what} format version {version} is newer than this nnlearn reads "
            f"({FORMAT_VERSION}); upgrade nnlearn"
        )
    if not _is_int(version) or version not in schemas:
        raise ModelFileError(f"{path}: {what} format version {_shown(version)} is not one nnlearn wrote")
    try:
        schemas[version](doc, "")
    except SchemaError as exc:
        raise ModelFileError(f"{path}: the {what}'s metadata is refused: {exc}") from None
    # After the schema, so that what is hashed is bounded and what a newer nnlearn wrote
    # (a kind this one does not know) is said to be that, not an alteration.
    if version >= 2 and doc["sha256"].get("meta") != _canonical_digest(doc):
        raise ModelFileError(f"{path}: the {what}'s metadata does not match its checksum; the file was altered")
    return doc
