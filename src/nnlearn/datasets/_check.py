"""Checking data at the boundary: arrays in, float64 examples and labels out, or a DataError.

The file loaders, :func:`nnlearn.train`, a cluster's data and the report check their data
here, so that each refuses the same things in the same words, naming where the data came
from.
"""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import ArrayLike

from ..errors import DataError

__all__ = ["check_dataset", "check_features", "check_labels"]


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
        The labels must be class numbers or text, as a data file's are: a label with a
        fraction, or too large for int64, is an error naming it. Otherwise (arrays given
        to :func:`nnlearn.train`, labels of any kind) such labels stay floats.

    Returns
    -------
    X : ndarray, shape (m, n), float64
    y : ndarray, shape (m,)
    """
    X = check_features(X, source)
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


def check_labels(y, source, whole_labels, example=None):
    """``y`` with whole float labels as int64; see :func:`check_dataset`."""
    if whole_labels and y.dtype.kind not in "biufUS":
        raise DataError(f"{source}: labels must be numbers or text, not {y.dtype}")
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
        raise DataError(
            f"{source}: label {y[i]:.10g} ({where}) {reason}; a data file's labels must be class "
            "numbers (integers) or text"
        )
    return y
