"""Loaders of data files in the usual formats: MATLAB/Octave ``.mat``, NumPy ``.npz``, CSV.

Each refuses anything but a regular file, and a file larger than such data could
sensibly be (:data:`MAX_CSV_BYTES`, :data:`MAX_DATA_BYTES`), before reading it, and
checks what it read (:mod:`nnlearn.datasets._check`); a CSV file's problems are named by their
line. :func:`nnlearn.datasets._builtin.load_data` picks the loader by the file's suffix.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Literal, overload

import numpy as np

from ..errors import DataError, ShapeError, first_line
from ..persist._reading import read_npz, regular_file
from ._check import check_dataset, check_features, check_labels

__all__ = ["load_mat", "load_npz", "load_csv", "PROGRESS_BYTES", "MAX_CSV_BYTES", "MAX_DATA_BYTES"]


def _from_course_labels(y):
    """The course labels digit 0 as 10; map it back when the labels are 1..10."""
    if y.dtype.kind in "iu" and y.size and y.min() >= 1 and y.max() == 10:
        y = np.where(y == 10, 0, y)
    return y


@overload
def load_mat(
    path: str | os.PathLike, course_labels: bool = ..., *, labels: Literal[True] = ...
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def load_mat(
    path: str | os.PathLike, course_labels: bool = ..., *, labels: bool | None
) -> tuple[np.ndarray, np.ndarray | None]: ...
def load_mat(
    path: str | os.PathLike, course_labels: bool = True, *, labels: bool | None = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load ``X`` and ``y`` from a MATLAB/Octave ``.mat`` file in the course's layout.

    Parameters
    ----------
    path : str or Path
    course_labels : bool
        Read labels 1..10 as the course means them: 10 stands for digit 0 and becomes 0.
    labels : bool or None
        True: ``y`` must be there. None: ``y`` when the file has it, else None. False:
        ``y`` is not read (None).

    Returns
    -------
    X : ndarray, shape (m, n), float64
    y : ndarray, shape (m,), or None
        Integers (whole-number floats are converted) or text; a label with a fraction or
        beyond int64 is a :class:`DataError`.
    """
    from scipy.io import loadmat

    regular_file(path, DataError, ".mat file", MAX_DATA_BYTES)
    try:
        data = loadmat(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except Exception as exc:  # scipy raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable .mat file ({first_line(exc)})") from None
    missing = [key for key in ("X", "y") if key not in data and (key == "X" or labels)]
    if missing:
        raise DataError(f"{path}: the .mat file has no variable {' or '.join(missing)}")
    if labels is False or "y" not in data:
        return check_features(data["X"], path), None
    X, y = check_dataset(data["X"], data["y"], path, whole_labels=True)
    return X, (_from_course_labels(y) if course_labels else y)


#: The most an .npz data file's arrays may inflate to, as a multiple of the file's size.
MAX_INFLATION = 1000


@overload
def load_npz(path: str | os.PathLike, *, labels: Literal[True] = ...) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def load_npz(path: str | os.PathLike, *, labels: bool | None) -> tuple[np.ndarray, np.ndarray | None]: ...
def load_npz(path: str | os.PathLike, *, labels: bool | None = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Load arrays ``X`` and ``y`` from a NumPy ``.npz`` file (never unpickling).

    ``labels`` is as for :func:`load_mat`; labels are integers (whole-number floats are
    converted), booleans or text.
    """
    size = regular_file(path, DataError, ".npz file", MAX_DATA_BYTES).stat().st_size
    # Only X and y are read, and no more than real data inflate to: numbers compress a
    # few times, not a thousand (a few megabytes claiming gigabytes is a zip bomb).
    arrays = read_npz(path, DataError, max_bytes=MAX_INFLATION * size + (1 << 20), names=("X", "y"))
    missing = [key for key in ("X", "y") if key not in arrays and (key == "X" or labels)]
    if missing:
        raise DataError(f"{path}: the .npz file has no array {' or '.join(missing)}")
    if labels is False or "y" not in arrays:
        return check_features(arrays["X"], path), None
    return check_dataset(arrays["X"], arrays["y"], path, whole_labels=True)


@overload
def load_csv(
    path: str | os.PathLike,
    *,
    labels: Literal[True] = ...,
    n_features: int | None = ...,
    progress: bool | None = ...,
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def load_csv(
    path: str | os.PathLike, *, labels: bool | None, n_features: int | None = ..., progress: bool | None = ...
) -> tuple[np.ndarray, np.ndarray | None]: ...
def load_csv(
    path: str | os.PathLike,
    *,
    labels: bool | None = True,
    n_features: int | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load a comma-separated file: one example per row, the label (if any) in the last column.

    A first row that is not numeric is taken as a header and skipped; blank lines are
    skipped.

    Parameters
    ----------
    path : str or Path
    labels : bool or None
        True: the last column is the label. False: every column is a feature (``y`` is
        None). None: decided by the row width when ``n_features`` is given (exactly
        ``n_features`` columns: no labels; one more: the last is the label; anything else
        is a :class:`ShapeError`); without ``n_features``, a label column is assumed.
        A header does not decide: its names are free text.
    n_features : int, optional
        The features an example must have (a model's input count), for ``labels=None``.
    progress : bool or None
        Show a progress bar on stderr while reading: None shows it for files over
        :data:`PROGRESS_BYTES` when stderr is a terminal.

    Returns
    -------
    X : ndarray, shape (m, n), float64
    y : ndarray, shape (m,), int64, or None
        Labels must be whole numbers: one with a fraction, or beyond int64, is a
        :class:`DataError` naming it and its line.
    """
    regular_file(path, DataError, "CSV file", MAX_CSV_BYTES)
    table = _read_table(path, progress)
    width = table.shape[1]
    if labels is None:
        labels = n_features is None or width != n_features
        if n_features is not None and width not in (n_features, n_features + 1):
            raise ShapeError(
                f"{path}: {width} columns are neither {n_features} features nor {n_features} features and a label"
            )
    if not labels:
        return check_features(table, path), None
    if width < 2:
        raise DataError(f"{path}: needs at least one feature column and a label column")
    X = check_features(table[:, :-1], path)
    return X, check_labels(table[:, -1], path, True, lambda i: f"line {_line_of_row(path, i)}")


#: Files larger than this (bytes) show a progress bar while loading, on a terminal.
PROGRESS_BYTES = 20 * 2**20
#: The largest CSV file read: its table of float64 takes up to about 4 times its size.
MAX_CSV_BYTES = 2 * 2**30
#: The largest .npz or .mat data file read.
MAX_DATA_BYTES = 4 * 2**30


def _stderr_is_terminal():
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def _rows(path, bar):
    """(line number, line) of the data rows of a CSV file: blank lines and a header skipped."""
    # utf-8-sig: a byte-order mark (spreadsheet exports) must not turn row 1 into a header.
    with open(path, encoding="utf-8-sig") as f:
        header_possible = True
        for number, line in enumerate(f, start=1):
            if bar is not None:
                bar.update(len(line))
            if not line.strip():
                continue
            if header_possible:
                header_possible = False
                if not _is_numeric_row(line):
                    continue
            yield number, line


def _read_table(path, progress):
    """The numbers of a CSV file, shape (rows, columns); DataError naming a bad line."""
    show = progress if progress is not None else os.path.getsize(path) > PROGRESS_BYTES and _stderr_is_terminal()
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(
            total=os.path.getsize(path),
            desc=f"reading {Path(path).name}",
            unit="B",
            unit_scale=True,
            file=sys.stderr,
            leave=False,
        )
    rows = _rows(path, bar)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": said below
            table = np.loadtxt((line for _, line in rows), delimiter=",", comments=None, dtype=np.float64, ndmin=2)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable text file ({first_line(exc)})") from None
    except ValueError as exc:
        # NumPy's message counts rows of its own; find the file's line for the user.
        raise DataError(_csv_problem(path) or f"{path}: not a readable CSV file ({first_line(exc)})") from None
    finally:
        rows.close()  # the file, even when NumPy stopped half-way
        if bar is not None:
            bar.close()
    if table.size == 0:
        raise DataError(f"{path}: no examples in the file")
    return table


def _csv_problem(path):
    """The message for the first malformed line of a CSV file, or None."""
    width = None
    try:
        for number, line in _rows(path, None):
            cells = line.rstrip("\r\n").split(",")
            if width is None:
                width = len(cells)
            if len(cells) != width:
                return f"{path}: line {number} has {len(cells)} cells, the first row has {width}"
            if not _is_numeric_row(line):
                return f"{path}: line {number} has a non-numeric cell (labels too must be numbers)"
    except (OSError, ValueError):  # undecodable further on: NumPy's own message will do
        return None
    return None


def _line_of_row(path, index):
    """The line number of data row ``index`` (from 0) of a CSV file, for messages."""
    for row, (number, _) in enumerate(_rows(path, None)):
        if row == index:
            return number
    return "?"


def _is_numeric_row(line):
    try:
        [float(cell) for cell in line.strip().split(",")]
    except ValueError:
        return False
    return True
