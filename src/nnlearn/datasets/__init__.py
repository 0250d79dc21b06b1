"""Data in: the built-in digits, data files of every usual format, MNIST, shards and images.

==================  ==============================================================
``_builtin``        the built-in datasets; :func:`load_data` (by name or file); split
``_files``          ``.mat``, ``.npz`` and CSV files, and their size limits
``_idx``            IDX files, MNIST's format, each header checked against its data
``_mnist``          MNIST and Fashion-MNIST, downloaded once and pinned by checksum
``_shards``         ``.npy`` shards and their manifest, for a cluster's workers
``_streams``        a data file read block by block, for ``nnlearn shard``
``_images``         an image file or its bytes -> the model's input
``_check``          data checked where they enter, with one set of messages
``_cache``          where downloads and converted datasets are kept
==================  ==============================================================
"""

from ._builtin import DATASETS, image_side, load_data, load_digits8, load_digits20, split
from ._cache import cache_dir
from ._check import check_dataset, check_features
from ._files import load_csv, load_mat, load_npz
from ._idx import read_idx
from ._images import FRAMINGS, image_bytes_to_input, image_to_input
from ._mnist import load_fashion_mnist, load_mnist, resample_digits
from ._shards import load_shards, write_shards

__all__ = [
    "load_digits20",
    "load_digits8",
    "load_data",
    "split",
    "image_side",
    "DATASETS",
    "load_mat",
    "load_npz",
    "load_csv",
    "read_idx",
    "load_mnist",
    "load_fashion_mnist",
    "resample_digits",
    "write_shards",
    "load_shards",
    "image_to_input",
    "image_bytes_to_input",
    "FRAMINGS",
    "check_dataset",
    "check_features",
    "cache_dir",
]
