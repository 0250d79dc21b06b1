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
from typing import Literal, NamedTuple, overload

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

    A first line none of whose cells reads as a number is taken as a header, skipped, and
    said in a :class:`HeaderWarning`; a first line with a number in it is data, and a
    cell there that is not a number is an error naming the line and the cell, as on any
    other line (a typo must not turn the first example into a header). Blank lines are
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
    y : ndarray, shape (m,), or None
        Integers (int64), or text (str) when the label column holds text, as an ``.npz``
        file's labels may: a text label is the cell with its spaces, and a pair of double
        quotes around it, removed. A label column mixing numbers and text, or a number
        with a fraction or beyond int64, is a :class:`DataError` naming the line.
    """
    regular_file(path, DataError, "CSV file", MAX_CSV_BYTES)
    table = _read_table(path, progress, lambda width: _has_labels(path, labels, n_features, width))
    width = table.numbers.shape[1] + (table.text is not None)
    labels = _has_labels(path, labels, n_features, width)
    if table.text is not None:
        return check_features(table.numbers, path), table.text
    if not labels:
        return check_features(table.numbers, path), None
    if width < 2:
        raise DataError(f"{path}: needs at least one feature column and a label column")
    X = check_features(table.numbers[:, :-1], path)
    return X, check_labels(table.numbers[:, -1], path, True, lambda i: f"line {_line_of_row(path, i)}")


def _has_labels(path, labels, n_features, width):
    """Whether the last of ``width`` columns is the label (see :func:`load_csv`)."""
    if labels is not None:
        return bool(labels)
    if n_features is not None and width not in (n_features, n_features + 1):
        raise ShapeError(
            f"{path}: {width} columns are neither {n_features} features nor {n_features} features and a label"
        )
    return n_features is None or width != n_features


class HeaderWarning(UserWarning):
    """A CSV file's first line was skipped as a header: none of its cells is a number."""


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


class _Table(NamedTuple):
    """A CSV file's cells: ``numbers`` (rows, columns) float64; when the label column
    holds text, ``numbers`` has the other columns and ``text`` the labels (str)."""

    numbers: np.ndarray
    text: np.ndarray | None = None


def _rows(path, bar, warn=False, header=None):
    """(line number, line) of the data rows of a CSV file: blank lines and a header skipped.

    ``warn``: say in a :class:`HeaderWarning` that the first line was taken as a header;
    ``header``, a list: the header's line number is appended to it.
    """
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
                if not any(_is_number(cell) for cell in _cells(line)):
                    if header is not None:
                        header.append(number)
                    if warn:
                        shown = line.strip()
                        shown = shown if len(shown) <= 60 else shown[:57] + "..."
                        warnings.warn(
                            f"{path}: treated line {number} as a header, since none of its cells is a number: "
                            f"{shown!r}",
                            HeaderWarning,
                            stacklevel=1,  # raised inside NumPy's reading of these lines: no caller to name
                        )
                    continue
            yield number, line


def _read_table(path, progress, has_labels):
    """The cells of a CSV file (:class:`_Table`); DataError naming a bad line.
    ``has_labels(width)``: whether the last of ``width`` columns is the label, which may be text."""
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
    rows = _rows(path, bar, warn=True)
    try:
        table = _loadtxt(line for _, line in rows)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable text file ({first_line(exc)})") from None
    except ValueError as exc:
        table = exc
    finally:
        rows.close()  # the file, even when NumPy stopped half-way
        if bar is not None:
            bar.close()
    if isinstance(table, ValueError):
        # Not all numbers: text labels, or a malformed line, named by the file's line
        # (NumPy's message counts rows of its own).
        return _text_labelled(path, table, has_labels)
    if table.size == 0:
        raise DataError(f"{path}: no examples in the file")
    return _Table(table)


def _loadtxt(lines):
    with warnings.catch_warnings():
        # said by the callers; only this warning: the lines' own HeaderWarning must pass
        warnings.filterwarnings("ignore", ".*input contained no data", UserWarning)
        return np.loadtxt(lines, delimiter=",", comments=None, dtype=np.float64, ndmin=2)


def _text_labelled(path, exc, has_labels):
    """A CSV file that NumPy could not read as numbers, read again: its features and text
    labels when only the label column holds text, else a DataError for its first bad line."""
    scan = _scan(path, has_labels)
    if scan.problem or scan.text_line is None:
        raise DataError(scan.problem or f"{path}: not a readable CSV file ({first_line(exc)})")
    labels = []

    def features():
        for _, line in _rows(path, None):
            head, _, label = line.rstrip("\r\n").rpartition(",")
            labels.append(_text(label))
            yield head

    try:
        numbers = _loadtxt(features())
    except (OSError, ValueError) as again:  # the file changed since the scan
        raise DataError(f"{path}: not a readable CSV file ({first_line(again)})") from None
    return _Table(numbers, np.array(labels, dtype=str))


class _Scan(NamedTuple):
    problem: str | None
    text_line: int | None = None  # the line of the first text label


def _scan(path, has_labels):
    """The first malformed line of a CSV file, or where its text labels start."""
    width = first = None
    label = None  # (line, cell, is text) of the first row's label
    header: list[int] = []
    try:
        for number, line in _rows(path, None, header=header):
            cells = _cells(line)
            if width is None:
                width, first = len(cells), number
                labelled = width >= 2 and has_labels(width)
            candidate = number == first and not header  # a first line read as data, not as a header
            problem = _line_problem(path, number, cells, width, candidate, text_labels=labelled)
            if problem:
                return _Scan(problem)
            if not labelled:
                continue
            text = not _is_number(cells[-1])
            if label is None:
                label = number, cells[-1], text
            elif text != label[2]:
                # the note on headers helps where the first line's label is the text: "label", say
                note = label[0] == first and not header and label[2]
                return _Scan(_mixed_labels(path, (number, cells[-1]), label, note))
    except (OSError, UnicodeDecodeError):  # unreadable further on: NumPy's own message will do
        return _Scan(None)
    return _Scan(None, label[0] if label is not None and label[2] else None)


def _line_problem(path, number, cells, width, first, *, text_labels):
    """What is wrong with the cells of line ``number`` of a CSV file whose first row has
    ``width`` cells (``first``: this is that row), or None. The label column (the last,
    of two or more) may hold text when ``text_labels``."""
    if len(cells) != width:
        return f"{path}: line {number} has {len(cells)} cells, the first row has {width}"
    features = cells[:-1] if text_labels and width >= 2 else cells
    for column, cell in enumerate(features, start=1):
        if not _is_number(cell):
            return _not_a_number(path, number, column, cell, first)
    return None


def _not_a_number(path, number, column, cell, first):
    """The message for a cell that must be a number and is not."""
    return f"{path}: line {number} has a non-numeric cell, column {column}: {_shown(cell)}" + (
        _HEADER_NOTE if first else ""
    )


_HEADER_NOTE = " (the first line is data, not a header, since some of its cells are numbers)"


def _mixed_labels(path, later, earlier, first):
    """The message for labels of both kinds: ``later`` is (line, cell), ``earlier`` (line,
    cell, whether it is text); ``first``: add the note on headers."""
    (line, cell), (line0, cell0, text0) = later, earlier
    kinds = ("a number", "text") if text0 else ("text", "a number")
    return (
        f"{path}: line {line}'s label {_shown(cell)} is {kinds[0]} but line {line0}'s, {_shown(cell0)}, is "
        f"{kinds[1]}; a CSV file's labels must be all numbers or all text" + (_HEADER_NOTE if first else "")
    )


def _shown(cell):
    cell = cell.strip()
    return repr(cell if len(cell) <= 40 else cell[:37] + "...")


def _line_of_row(path, index):
    """The line number of data row ``index`` (from 0) of a CSV file, for messages."""
    for row, (number, _) in enumerate(_rows(path, None)):
        if row == index:
            return number
    return "?"


def _cells(line):
    return line.rstrip("\r\n").split(",")


def _is_number(cell):
    """Whether a CSV cell reads as a number, as NumPy reads it (spaces around allowed)."""
    try:
        float(cell)
    except ValueError:
        return False
    return "_" not in cell and cell.isascii()  # Python reads 1_000 and Arabic digits, NumPy does not


def _text(cell):
    """A text label: its spaces, and one pair of double quotes around it, removed."""
    cell = cell.strip()
    if len(cell) >= 2 and cell[0] == cell[-1] == '"':
        cell = cell[1:-1]
    return cell
