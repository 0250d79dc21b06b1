"""MNIST and Fashion-MNIST at full size: downloads pinned by checksum.

Both datasets come as four gzipped IDX files (training and test images, and their labels).
:func:`load_mnist` and :func:`load_fashion_mnist` download them on first use with
``pooch`` into ``cache_dir() / "mnist"`` and ``cache_dir() / "fashion-mnist"`` (see
:func:`nnlearn.datasets._cache.cache_dir`; ``NNLEARN_CACHE_DIR`` overrides it), each file checked
against a published SHA-256 (:data:`SOURCES`). A download is written to a temporary file
in that folder and given its name only once its checksum matches, so the cache never
holds a partial or different file; a file already there is used without any request.

Images are unrolled column-major, as every nnlearn dataset: ``x.reshape(s, s, order="F")``
shows one upright. ``size=20`` resamples each 28x28 image with :func:`resample_digits`,
the step that made :func:`nnlearn.datasets._builtin.load_digits20`, so the course's 400-25-10
networks and pretrained weights apply; those arrays are cached, keyed by the checksums.

The files are read by :mod:`nnlearn.datasets._idx`, whose :func:`read_idx` (for any IDX images
file of unsigned bytes) is importable from here too.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import DataError, ParameterError, first_line
from ..persist._atomic import atomic_write
from ..persist._reading import read_npz, regular_file
from ._cache import cache_dir
from ._idx import read_idx_pair, unroll_images

__all__ = [
    "load_mnist",
    "load_fashion_mnist",
    "resample_digits",
    "Source",
    "SOURCES",
    "SIZES",
    "SUBSETS",
]


@dataclass(frozen=True)
class Source:
    """Where a dataset's files are downloaded from, and the checksum each must have.

    Attributes
    ----------
    url : str
        The folder's URL, ending in ``/``: a file's URL is ``url + name``.
    files : Mapping of str to str
        Each file's name and its checksum as ``pooch`` takes it (``"sha256:..."``).
    """

    url: str
    files: Mapping[str, str]


#: The files of each downloadable dataset. The SHA-256 sums are those TensorFlow Datasets
#: publishes for these very URLs: github.com/tensorflow/datasets, files
#: tensorflow_datasets/url_checksums/mnist.txt (commit 31f1255e57e519a6c004f0b097a2f5cfcf0dde7d)
#: and tensorflow_datasets/url_checksums/fashion_mnist.txt (commit
#: 333639b37af6c6fedf3610a4a2d42f1c6ef6f7d5), with the sizes 9,912,422 / 28,881 /
#: 1,648,877 / 4,542 bytes (MNIST) and 26,421,880 / 29,515 / 4,422,102 / 5,148 (Fashion).
#: The same files' MD5s are published by torchvision (torchvision/datasets/mnist.py,
#: ``MNIST.resources`` and ``FashionMNIST.resources``) and in Fashion-MNIST's README
#: (github.com/zalandoresearch/fashion-mnist, "Get the Data").
#: Fashion-MNIST's own location is plain http (an S3 website endpoint has no https): the
#: pinned checksum, not the transport, is what vouches for the file.
SOURCES: dict[str, Source] = {
    "mnist": Source(
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        {
            "train-images-idx3-ubyte.gz": "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    "fashion-mnist": Source(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        {
            "train-images-idx3-ubyte.gz": "sha256:3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "sha256:a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "sha256:346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "sha256:67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    ),
}

#: The image sides the loaders give: MNIST's own 28, or the course's 20.
SIZES = (28, 20)
#: The parts of each dataset: 60,000 training and 10,000 test examples.
SUBSETS = ("train", "test")
_MNIST_SIDE = 28
_CACHE_VERSION = 1
# Images resampled per step: bounds the float64 copy the resampling works on (32 MB).
_CHUNK = 5000


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


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def _warnings_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


@contextlib.contextmanager
def _pooch_says(show: bool) -> Iterator[None]:
    """pooch logs each download at INFO on stderr: heard beside a progress bar, else not."""
    import pooch

    # A filter, not setLevel: pooch's logger is outside logging's registry, so a level
    # set back afterwards would not clear the answer it cached while quiet.
    logger = pooch.get_logger()
    if not show:
        logger.addFilter(_warnings_only)
    try:
        yield
    finally:
        logger.removeFilter(_warnings_only)


def _reason(exc: Exception) -> str:
    """Why a download failed, in a few words (requests' own messages run to several lines' worth)."""
    import requests

    response = getattr(exc, "response", None)
    if response is not None:
        return f"HTTP {response.status_code} {response.reason or ''}".strip()
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection broke off before the whole file came"
    found = re.search(r"\[Errno -?\d+\] ([^'\"()\]]+)", str(exc))
    return found[1].strip() if found else type(exc).__name__


def _fetch(dataset: str, name: str, show: bool) -> Path:
    """The cached copy of one of a dataset's files, downloaded first when it is not there."""
    import pooch
    import requests

    source = SOURCES[dataset]
    url, known_hash = source.url + name, source.files[name]
    folder = cache_dir() / dataset
    if os.path.lexists(folder / name):
        # pooch would read whatever is there to check it: a FIFO must not hang us.
        regular_file(folder / name, DataError, "cached download")
    try:
        with _pooch_says(show):
            # pooch streams into a temporary file in `folder` and moves it into place only
            # once its checksum matches; on any failure it deletes the temporary file.
            path = pooch.retrieve(url, known_hash, fname=name, path=folder, progressbar=show)
    except requests.exceptions.RequestException as exc:  # before OSError, which it derives from
        raise DataError(
            f"cannot download {url} ({_reason(exc)}); check the network, or place the file in {folder}"
        ) from None
    except ValueError:  # pooch: the download's checksum is not the published one
        raise DataError(
            f"{url}: the download does not match its published checksum {known_hash}, so it was not kept; "
            f"the server may hold a damaged or different file (try again later, or place a verified copy in "
            f"{folder})"
        ) from None
    except OSError as exc:
        raise DataError(
            f"cannot store {name} in {folder} ({exc.strerror or first_line(exc)}); "
            "set NNLEARN_CACHE_DIR to a writable directory"
        ) from None
    return Path(path)


def _converted_path(dataset: str, prefix: str, files: tuple[str, str], size: int) -> Path:
    """Where the resampled arrays of these files are cached: named by their checksums."""
    hashes = " ".join(SOURCES[dataset].files[name] for name in files)
    digest = hashlib.sha256(f"{hashes} {size}".encode()).hexdigest()[:16]
    return cache_dir() / dataset / f"{prefix}-{size}x{size}-v{_CACHE_VERSION}-{digest}.npz"


def _read_converted(path: Path, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays at ``path``, or None when they are missing or not what was stored."""
    try:
        arrays = read_npz(path, OSError, "cache file")
    except OSError:
        return None
    X, y = arrays.get("X"), arrays.get("y")
    if X is None or y is None or X.dtype != np.float64 or y.dtype != np.int64:
        return None
    if X.ndim != 2 or X.shape[1] != size * size or y.shape != (len(X),) or len(X) == 0:
        return None
    return X, y


def _resampled(images: np.ndarray, size: int, show: bool) -> np.ndarray:
    """:func:`resample_digits` of the images scaled to [0, 1], a chunk at a time."""
    chunks = range(0, len(images), _CHUNK)
    if show:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc=f"resampling to {size}x{size}", unit="chunk", file=sys.stderr, leave=False)
    X = np.empty((len(images), size * size))
    for start in chunks:
        X[start : start + _CHUNK] = resample_digits(images[start : start + _CHUNK] / 255.0, size)
    return X


def _load(dataset: str, subset: str, size: int, progress: bool | None) -> tuple[np.ndarray, np.ndarray]:
    if subset not in SUBSETS:
        raise ParameterError(f"subset must be 'train' or 'test', got {subset!r}")
    if size not in SIZES:
        raise ParameterError(f"size must be 28 (MNIST's own) or 20 (the course's), got {size!r}")
    prefix = "train" if subset == "train" else "t10k"
    names = (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz")
    show = _show_progress(progress)
    cached = _converted_path(dataset, prefix, names, size) if size != _MNIST_SIDE else None
    if cached is not None and (found := _read_converted(cached, size)) is not None:
        return found
    images_path, labels_path = (_fetch(dataset, name, show) for name in names)
    images, y = read_idx_pair(images_path, labels_path, True)
    assert y is not None  # labels=True: read or refused
    if images.shape[1:] != (_MNIST_SIDE, _MNIST_SIDE):
        raise DataError(f"{images_path}: images of {images.shape[1]}x{images.shape[2]}, not {dataset}'s 28x28")
    if cached is None:
        return unroll_images(images), y
    X = _resampled(images, size, show)
    with contextlib.suppress(OSError):  # an unwritable cache only costs time
        atomic_write(cached, lambda f: np.savez(f, X=X, y=y), overwrite=True)
    return X, y


def load_mnist(
    subset: Literal["train", "test"] = "train", size: Literal[28, 20] = 28, *, progress: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's handwritten digits, downloaded on first use and cached.

    The files come from the Google-hosted mirror TensorFlow uses
    (``https://storage.googleapis.com/cvdf-datasets/mnist/``), each checked against its
    published SHA-256 (:data:`SOURCES`), into ``cache_dir() / "mnist"``.

    Parameters
    ----------
    subset : {"train", "test"}
        The 60,000 training or the 10,000 test digits.
    size : {28, 20}
        28: MNIST's own images. 20: each resampled as :func:`nnlearn.datasets._builtin.load_digits20`
        made the embedded digits, for course-shaped networks (400 inputs) and the course's
        weights; the result is cached (the first time takes about 15 s for the training set).
    progress : bool or None
        Show download and resampling progress on stderr; None: when it is a terminal.

    Returns
    -------
    X : ndarray, shape (60000 or 10000, size * size), float64
        Values in [0, 1], unrolled column-major (``X[i].reshape(size, size, order="F")``
        is upright).
    y : ndarray, int64, digits 0-9

    Raises
    ------
    DataError
        A file cannot be downloaded (offline, the server refuses), does not match its
        checksum (nothing is kept), or the cache cannot be written.
    ParameterError
        ``subset`` or ``size`` is not one of the above.
    """
    return _load("mnist", subset, size, progress)


def load_fashion_mnist(
    subset: Literal["train", "test"] = "train", size: Literal[28, 20] = 28, *, progress: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Zalando's Fashion-MNIST: MNIST's format and sizes, ten kinds of clothing instead of digits.

    The files come from Fashion-MNIST's own location
    (``http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/``), each checked against
    its published SHA-256 (:data:`SOURCES`), into ``cache_dir() / "fashion-mnist"``.
    Labels: 0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt,
    7 sneaker, 8 bag, 9 ankle boot. Parameters, returns and errors as for :func:`load_mnist`.
    """
    return _load("fashion-mnist", subset, size, progress)
