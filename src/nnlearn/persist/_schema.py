"""Schemas of JSON documents: checks built from small pieces, with one-line messages.

A schema is a :data:`Check`, ``check(value, where)``, that returns None or raises
:class:`SchemaError` naming the value (``history.cost[3]``) and what it must be. Schemas
are built from :func:`integer`, :func:`number`, :func:`boolean`, :func:`text`,
:func:`nullable`, :func:`either`, :func:`array`, :func:`anything`, :func:`record` and
:func:`checksums`; every size is bounded (:data:`MAX_ITEMS`, :data:`MAX_TEXT`,
:data:`MAX_NAME`, :data:`MAX_KEYS`), and a string that could disturb a terminal or split
a message is refused. :mod:`nnlearn.persist._archive` checks every document it reads against one
(each kind of archive gives one per format version), so that nothing else of nnlearn
sees a value its schema does not allow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeGuard

__all__ = [
    "MAX_ITEMS",
    "MAX_TEXT",
    "MAX_NAME",
    "MAX_KEYS",
    "Check",
    "SchemaError",
    "shown",
    "is_integer",
    "integer",
    "number",
    "boolean",
    "text",
    "nullable",
    "either",
    "array",
    "anything",
    "record",
    "checksums",
]

#: The most items a list in a document may have (a cost history: one per iteration).
MAX_ITEMS = 10**6
#: The longest string (file paths, messages) and the longest name (optimizer, dtype, a key).
MAX_TEXT = 4096
MAX_NAME = 64
#: The most keys an object may have.
MAX_KEYS = 100

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


def shown(value: Any) -> str:
    """A short, printable description of a value from a file, for a message."""
    if isinstance(value, dict):
        return f"an object of {len(value)} key{'' if len(value) == 1 else 's'}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    escaped = ascii(value)  # escapes control characters and everything not ASCII
    return escaped if len(escaped) <= 40 else f"{escaped[:36]}...{escaped[-1]}"


def _at(where: str, key: str) -> str:
    """``where`` extended by an object's key, the key shown safely."""
    name = key if re.fullmatch(r"[A-Za-z0-9_.]{1,40}", key) else shown(key)
    return f"{where}.{name}" if where else name


def _fail(where: str, wanted: str, value: Any) -> SchemaError:
    return SchemaError(f"{where or 'the document'} must be {wanted}, got {shown(value)}")


def is_integer(value: Any) -> TypeGuard[int]:
    # bool is an int subclass; true is no count.
    return isinstance(value, int) and not isinstance(value, bool)


def integer(low: int, high: int) -> Check:
    """An integer (not a boolean) from ``low`` to ``high``."""

    def check(value: Any, where: str) -> None:
        if not (is_integer(value) and low <= value <= high):
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
        if not (is_integer(value) or isinstance(value, float)):
            raise _fail(where, wanted, value)
        try:
            x = float(value)
        except OverflowError:  # an integer beyond any float
            raise _fail(where, wanted, value) from None
        if not math.isfinite(x):
            if finite or is_integer(value):
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


def checksums() -> Check:
    """An object of hexadecimal SHA-256s, one per name (at most 1000)."""

    def hex64(value: Any, where: str) -> None:
        if not (isinstance(value, str) and _HEX64.fullmatch(value)):
            raise _fail(where, "a SHA-256 in hexadecimal", value)

    # One per array: a model's weight matrices (one per layer), its classes and the document.
    return record({}, extra=hex64, max_keys=1000)
