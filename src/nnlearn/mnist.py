"""MNIST and Fashion-MNIST at full size: downloads pinned by checksum, and a reader for IDX files.

Both datasets come as four gzipped IDX files (training and test images, and their labels).
:func:`load_mnist` and :func:`load_fashion_mnist` download them on first use with
``pooch`` into ``cache_dir() / "mnist"`` and ``cache_dir() / "fashion-mnist"`` (see
:func:`nnlearn.cache.cache_dir`; ``NNLEARN_CACHE_DIR`` overrides it), each file checked
against a published SHA-256 (:data:`SOURCES`). A download is written to a temporary file
in that folder and given its name only once its checksum matches, so the cache never
holds a partial or different file; a file already there is used without any request.

Images are unrolled column-major, as every nnlearn dataset: ``x.reshape(s, s, order="F")``
shows one upright. ``size=20`` resamples each 28x28 image with :func:`resample_digits`,
the step that made :func:`nnlearn.datasets.load_digits20`, so the course's 400-25-10
networks and pretrained weights apply; those arrays are cached, keyed by the checksums.

:func:`read_idx` reads any IDX images file of unsigned bytes (``*-idx3-ubyte``, gzipped
or not) with its labels (``*-idx1-ubyte``), checking each header against the data.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import math
import os
import re
import sys
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

import numpy as np

from .cache import cache_dir
from .errors import DataError, ParameterError
from .files import atomic_write, first_line, read_npz, regular_file

__all__ = [
    "load_mnist",
    "load_fashion_mnist",
    "read_idx",
    "is_idx_path",
    "resample_digits",
    "Source",
    "SOURCES",
    "SIZES",
    "SUBSETS",
    "MAX_IDX_BYTES",
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
#: The most pixels (bytes) an IDX file may hold; its float64 array takes 8 times as much.
#: A header is checked against it before anything is decompressed.
MAX_IDX_BYTES = 2**30

# IDX: two zero bytes, the type (0x08: unsigned byte), the number of dimensions; then
# each dimension as a big-endian 32-bit integer, then the values.
_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801
_KINDS = {_IMAGES_MAGIC: "images", _LABELS_MAGIC: "labels"}
_IDX_NAME = re.compile(r"^(?P<stem>.*)(?P<sep>[-.])idx(?P<ndim>[13])-ubyte(?P<gz>\.gz)?$", re.IGNORECASE)
_GZIP_MAGIC = b"\x1f\x8b"
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


def is_idx_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named as an IDX file of unsigned bytes (``*-idx3-ubyte``, ``*.idx1-ubyte.gz``, ...)."""
    return _IDX_NAME.match(Path(path).name) is not None


def _labels_beside(images_path: Path) -> list[Path]:
    """The names the labels file of an IDX images file has in MNIST's naming, likeliest first.

    ``train-images-idx3-ubyte.gz`` goes with ``train-labels-idx1-ubyte.gz`` (or the same
    uncompressed); Kaggle's copies use a dot: ``train-images.idx3-ubyte``.
    """
    match = _IDX_NAME.match(images_path.name)
    if match is None or match["ndim"] != "3":
        return []
    stem = match["stem"]
    at = stem.lower().rfind("images")
    if at >= 0:
        stem = stem[:at] + "labels" + stem[at + len("images") :]
    name = f"{stem}{match['sep']}idx1-ubyte"
    gz = match["gz"] or ""
    other = "" if gz else ".gz"
    return [images_path.with_name(name + gz), images_path.with_name(name + other)]


def _read_into(f: io.BufferedIOBase, buffer: np.ndarray) -> int:
    """Fill ``buffer`` (bytes) from ``f`` until it is full or the file ends; the count read."""
    view, filled = buffer.data.cast("B"), 0
    while filled < len(view):
        count = f.readinto(view[filled:])
        if not count:
            break
        filled += count
    return filled


def _read_idx_file(path: str | os.PathLike, magic: int) -> np.ndarray:
    """The array of unsigned bytes an IDX file holds, in its header's shape.

    The header is checked against the data: a file with fewer or more bytes than its
    dimensions call for is a :class:`DataError`, as is a damaged gzip stream. A gzipped
    file (recognised by its first bytes, whatever its name) is decompressed no further
    than the header's size and one byte, and that size is bounded (:data:`MAX_IDX_BYTES`)
    before anything is read: a few compressed bytes cannot fill the memory.
    """
    kind = _KINDS[magic]
    path = regular_file(path, DataError, f"IDX {kind} file", MAX_IDX_BYTES)
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    compressed = False
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) if compressed else contextlib.nullcontext(raw) as f:
                header = f.read(header_size)
                found = int.from_bytes(header[:4], "big") if len(header) >= 4 else None
                if found != magic:
                    raise DataError(_wrong_magic(path, magic, found))
                if len(header) < header_size:
                    raise DataError(f"{path}: truncated IDX {kind} file (its header ends after {len(header)} bytes)")
                shape = tuple(int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
                count = math.prod(shape)
                if count > MAX_IDX_BYTES:
                    raise DataError(
                        f"{path}: the header claims {' x '.join(map(str, shape))} = {count:,} bytes of {kind}, more "
                        f"than an IDX file may hold ({MAX_IDX_BYTES:,}); refused"
                    )
                if not compressed:
                    # Checked before reading: a file of the wrong size is never loaded.
                    size = os.fstat(raw.fileno()).st_size
                    if size != header_size + count:
                        raise DataError(_wrong_size(path, kind, shape, header_size + count, f"the file has {size:,}"))
                # One byte more than the header calls for, to notice data after the end.
                values = np.empty(count + 1, dtype=np.uint8)
                filled = _read_into(f, values)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        damaged = "truncated or damaged gzip data: " if compressed else ""
        raise DataError(f"{path}: not a readable IDX {kind} file ({damaged}{first_line(exc)})") from None
    if filled != count:
        told = "more" if filled > count else f"{header_size + filled:,}"
        raise DataError(_wrong_size(path, kind, shape, header_size + count, f"it decompresses to {told}"))
    return values[:count].reshape(shape)


def _wrong_magic(path, magic, found):
    kind = _KINDS[magic]
    if found in _KINDS:
        other = _KINDS[found]
        hint = "; give the images file (*-idx3-ubyte), its labels are read from beside it" if other == "labels" else ""
        return f"{path}: an IDX {other} file, not {kind}{hint}"
    what = "too short for an IDX header" if found is None else f"magic number 0x{found:08x}"
    return f"{path}: not an IDX {kind} file of unsigned bytes ({what}; expected 0x{magic:08x})"


def _wrong_size(path, kind, shape, expected, actual):
    return (
        f"{path}: truncated or malformed IDX {kind} file: its header says {' x '.join(map(str, shape))} "
        f"({expected:,} bytes with the header) but {actual} bytes"
    )


def _read_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike | None, labels: bool | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Upright images (m, rows, cols) of unsigned bytes and int64 labels (or None); see :func:`read_idx`."""
    images = _read_idx_file(images_path, _IMAGES_MAGIC)
    if images.shape[0] == 0 or min(images.shape[1:]) == 0:
        raise DataError(f"{images_path}: no images, or images of no pixels (shape {images.shape})")
    if labels is False:
        return images, None
    if labels_path is None:
        candidates = _labels_beside(Path(images_path))
        labels_path = next((path for path in candidates if os.path.lexists(path)), None)
        if labels_path is None:
            if labels is None:
                return images, None
            expected = f"{candidates[0].name} or {candidates[1].name}" if candidates else "a *-labels-idx1-ubyte file"
            raise DataError(f"{images_path}: no labels file beside it ({expected})")
    y = _read_idx_file(labels_path, _LABELS_MAGIC)
    if len(y) != len(images):
        raise DataError(f"{images_path}: {len(images):,} images but {labels_path} has {len(y):,} labels")
    return images, y.astype(np.int64)


def _unroll(images: np.ndarray) -> np.ndarray:
    """Images (m, rows, cols) of bytes as rows of [0, 1] floats, column-major (nnlearn's layout)."""
    m, rows, cols = images.shape
    return images.transpose(0, 2, 1).reshape(m, rows * cols) / 255.0


@overload
def read_idx(
    images_path: str | os.PathLike, labels_path: str | os.PathLike | None = ..., *, labels: Literal[True] = ...
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def read_idx(
    images_path: str | os.PathLike, labels_path: str | os.PathLike | None = ..., *, labels: bool | None
) -> tuple[np.ndarray, np.ndarray | None]: ...
def read_idx(
    images_path: str | os.PathLike, labels_path: str | os.PathLike | None = None, *, labels: bool | None = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an IDX images file (MNIST's format) and its labels.

    Only IDX files of unsigned bytes are read: images with magic number 0x00000803 (three
    dimensions: count, rows, columns), labels with 0x00000801. Either may be gzipped. Each
    header is checked against its file (a file shorter or longer than its dimensions call
    for is refused), and the two counts against each other.

    Parameters
    ----------
    images_path : str or Path
        A ``*-idx3-ubyte`` file, or ``*-idx3-ubyte.gz``.
    labels_path : str or Path, optional
        Its labels. By default the file beside it named as MNIST names them:
        ``train-images-idx3-ubyte[.gz]`` goes with ``train-labels-idx1-ubyte[.gz]``.
    labels : bool or None
        True: the labels must be there. None: read when the file is there, else None.
        False: not read (None).

    Returns
    -------
    X : ndarray, shape (m, rows * cols), float64
        Pixel values scaled to [0, 1], each image unrolled column-major:
        ``X[i].reshape(rows, cols, order="F")`` is upright.
    y : ndarray, shape (m,), int64, or None

    Raises
    ------
    DataError
        A file is missing, not a regular file, not IDX of the right kind, truncated,
        longer than its header says, or the counts differ.
    """
    images, y = _read_pair(images_path, labels_path, labels)
    return _unroll(images), y


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
    images, y = _read_pair(images_path, labels_path, True)
    assert y is not None  # labels=True: read or refused
    if images.shape[1:] != (_MNIST_SIDE, _MNIST_SIDE):
        raise DataError(f"{images_path}: images of {images.shape[1]}x{images.shape[2]}, not {dataset}'s 28x28")
    if cached is None:
        return _unroll(images), y
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
        28: MNIST's own images. 20: each resampled as :func:`nnlearn.datasets.load_digits20`
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
