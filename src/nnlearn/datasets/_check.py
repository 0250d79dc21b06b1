"""Checking data at the boundary: arrays in, float64 examples and labels out, or a DataError.

The file loaders, :func:`nnlearn.train`, a cluster's data and the report check their data
here, so that each refuses the same things in the same words, naming where the data came
from.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import DataError

__all__ = ["check_dataset", "check_features", "check_labels", "check_label_kinds", "is_complex", "densified"]

#: The share of this machine's memory a sparse matrix may take once dense: nnlearn trains
#: on dense arrays, and training needs more besides (see nnlearn.training._checks).
DENSE_SHARE = 0.5


def check_dataset(
    X: ArrayLike, y: ArrayLike, source: str | os.PathLike = "data", *, whole_labels: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert a dataset; raise :class:`DataError` naming ``source``.

    Float labels that are whole numbers within the 64-bit integer range become int64.

    Parameters
    ----------
    X : array-like, shape (m, n)
    y : array-like, shape (m,) or (m, 1)
    source : str or Path
        Named in the messages.
    whole_labels : bool
        The labels must be integers or text, as a data file's are: a label with a
        fraction, or too large for int64, is an error naming it. Otherwise (arrays given
        to :func:`nnlearn.train`, labels of any kind) such labels stay floats.

    Returns
    -------
    X : ndarray, shape (m, n), float64
    y : ndarray, shape (m,)

    Complex numbers, in X or y, are refused (NumPy would drop their imaginary parts), as
    are labels that mix numbers and text; a SciPy sparse matrix is made dense when it
    fits in half this machine's memory (:func:`densified`).
    """
    X = check_features(X, source)
    y = densified(y, source, "y")
    check_label_kinds(y, source)
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:
        y = y.ravel()
    if y.ndim != 1:
        raise DataError(f"{source}: y must be 1-D (one label per example), got shape {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise DataError(f"{source}: X has {X.shape[0]} examples but y has {y.shape[0]} labels")
    return X, check_labels(y, source, whole_labels)


def check_features(X: ArrayLike, source: str | os.PathLike = "data") -> np.ndarray:
    """Validate and convert examples without labels; raise :class:`DataError` naming ``source``.

    Returns
    -------
    X : ndarray, shape (m, n), float64
    """
    X = densified(X, source, "X")
    if is_complex(X):
        raise DataError(f"{source}: X holds complex numbers; nnlearn trains on real numbers")
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{source}: X is not numeric") from None
    if X.ndim != 2:
        raise DataError(f"{source}: X must be 2-D (examples x features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{source}: no examples or no features (X has shape {X.shape})")
    if not np.all(np.isfinite(X)):
        raise DataError(f"{source}: X contains NaN or infinite values")
    return X


# Float64 holds every integer up to 2**53 exactly and none beyond 2**63 in int64: a cast
# past it wraps to INT64_MIN without a word, so the range is checked first.
_INT64_LIMIT = 2.0**63


def is_complex(data: Any) -> bool:
    """Whether array-like ``data`` holds complex numbers (told from its dtype, or a
    DataFrame's column dtypes, without a copy where it has them)."""
    dtype = getattr(data, "dtype", None)
    if isinstance(dtype, np.dtype):
        return dtype.kind == "c"
    dtypes = getattr(data, "dtypes", None)  # a DataFrame's columns
    if dtypes is not None and not isinstance(dtypes, np.dtype):
        try:
            return any(getattr(kind, "kind", None) == "c" for kind in dtypes)
        except TypeError:
            pass
    try:
        return bool(np.iscomplexobj(data))
    except (TypeError, ValueError):  # not array-like: the later checks say what it is
        return False


def densified(data: Any, source: str | os.PathLike, name: str) -> Any:
    """A SciPy sparse matrix or array as a dense NumPy array, when it takes no more than
    :data:`DENSE_SHARE` of this machine's memory dense; anything else as it is."""
    from scipy import sparse

    if not sparse.issparse(data):
        return data
    shape = tuple(int(n) for n in data.shape)  # type: ignore[attr-defined]
    needed = int(np.prod(shape)) * max(data.dtype.itemsize, 8)  # type: ignore[attr-defined]
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > DENSE_SHARE * available:
        raise DataError(
            f"{source}: {name} is a sparse {' x '.join(map(str, shape))} matrix; nnlearn trains on dense arrays, "
            f"and dense it takes {needed / 2**30:,.1f} GiB, more than half this machine's {available / 2**30:,.0f} GiB"
        )
    return data.toarray()  # type: ignore[attr-defined]


def _is_text(value: object) -> bool:
    return isinstance(value, (str, bytes))


def _is_number(value: object) -> bool:
    return isinstance(value, (numbers.Number, np.bool_)) and not _is_text(value)


def check_label_kinds(y: object, source: str | os.PathLike) -> None:
    """Refuse labels that mix numbers and text, before NumPy makes them all text (a list)
    or cannot order them (an object array): a DataError naming one of each."""
    if isinstance(y, np.ndarray) and y.dtype != object:
        return
    if isinstance(getattr(y, "dtype", None), np.dtype) and y.dtype != object:  # type: ignore[attr-defined]
        return  # a pandas Series of one kind
    try:
        values = np.asarray(y, dtype=object).ravel()
    except (TypeError, ValueError):  # ragged: the later checks say so
        return
    text = next((value for value in values if _is_text(value)), None)
    number = next((value for value in values if _is_number(value)), None)
    if text is not None and number is not None:
        raise DataError(
            f"{source}: labels mix numbers and text (such as {_shown(number)} and {text!r}); "
            "give every label as a number or every label as text"
        )


def _shown(value: object) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def check_labels(y, source, whole_labels, example=None):
    """``y`` with whole float labels as int64; see :func:`check_dataset`."""
    if y.dtype.kind == "c":
        raise DataError(f"{source}: y holds complex numbers; labels must be integers or text")
    if whole_labels and y.dtype.kind not in "biufUS":
        raise DataError(f"{source}: labels must be integers or text, not {y.dtype}")
    if y.dtype.kind != "f":
        return y
    if not np.all(np.isfinite(y)):
        raise DataError(f"{source}: y contains NaN or infinite labels")
    whole = y == np.round(y)
    fits = (y >= -_INT64_LIMIT) & (y < _INT64_LIMIT)
    if np.all(whole & fits):
        return y.astype(np.int64)
    if whole_labels:
        i = int(np.flatnonzero(~(whole & fits))[0])
        reason = "is not a whole number" if not whole[i] else "does not fit a 64-bit integer"
        where = example(i) if example is not None else f"example {i + 1}"
        raise DataError(f"{source}: label {y[i]:.10g} ({where}) {reason}; labels must be integers or text")
    return y
