"""``nnlearn shard``: lay a dataset out as shards that each worker of a cluster reads itself.

Data files are read a block of rows at a time (:func:`nnlearn.datasets._streams.read_blocks`)
and each block written as it comes, so a dataset larger than the memory is laid out in the
memory of a few shards; a ``.mat`` file and the built-in datasets are loaded whole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..datasets._builtin import DATASETS, load_data
from ..errors import ParameterError
from ._common import emit, note_saved, refuse_overwriting_inputs, writing

SUMMARY = "write a dataset as a directory of .npy shards for training on a Dask cluster"
EXAMPLES = """\
  nnlearn shard digits20 digits-shards --rows-per-shard 1250
  nnlearn shard train-images-idx3-ubyte.gz /shared/mnist-shards --rows-per-shard 10000
  nnlearn train --data digits-shards --cluster tcp://scheduler:8786 --optimizer lbfgs

A data file is read a block of rows at a time and each shard written as it comes, so the
memory taken is that of a few shards however large the file (.npz, CSV, IDX, a shard
directory); a .mat file and the built-in datasets are loaded whole. X keeps the file's
dtype (float32 stays float32, IDX bytes stay bytes, CSV gives float64)."""

DEFAULT_ROWS = 10_000


def add_arguments(p):
    p.add_argument(
        "data",
        metavar="DATA",
        help=f"dataset name ({' or '.join(DATASETS)}), a .mat, .npz or .csv file (label last), an IDX images "
        "file (*-idx3-ubyte[.gz], its labels beside it) or a shard directory",
    )
    p.add_argument("out", metavar="OUT", help="a new directory for the shards (at a path the workers see)")
    p.add_argument(
        "--rows-per-shard",
        type=int,
        default=DEFAULT_ROWS,
        metavar="N",
        help=f"examples in each shard, the unit a worker loads and keeps, and about the most held in memory "
        f"at once while writing (default: {DEFAULT_ROWS:,})",
    )
    p.add_argument("--force", action="store_true", help="replace an existing shard directory (never anything else)")


def run(args):
    from ..datasets._shards import row_blocks, write_blocks
    from ..datasets._streams import Blocks, read_blocks

    if args.rows_per_shard < 1:
        raise ParameterError(f"--rows-per-shard must be an integer >= 1, got {args.rows_per_shard}")
    refuse_overwriting_inputs([("DATA", args.data)], [("OUT", args.out)])
    stream = None if args.data in DATASETS else read_blocks(args.data, args.rows_per_shard)
    if stream is None:  # a built-in dataset, small enough to load whole (or a name load_data explains)
        X, y = load_data(args.data)
        stream = Blocks(row_blocks(X, y, args.rows_per_shard))
    with writing(f"the shards into {args.out}"):
        manifest = write_blocks(
            stream.blocks, args.out, overwrite=args.force, X_divisor=stream.X_divisor, source=args.data
        )
    note_saved(args, "the shards", args.out)
    count = len(manifest["shards"])
    rows = sum(shard["rows"] for shard in manifest["shards"])
    features = manifest["n_features"]
    result = {
        "data": args.data,
        "out": str(Path(args.out)),
        "shards": count,
        "rows": rows,
        "features": features,
        "dtype": np.dtype(manifest["X_dtype"]).name,
    }
    emit(
        args,
        result,
        f"{rows:,} examples of {features} features from {args.data} in {count} shards of at most "
        f"{args.rows_per_shard:,} rows: {Path(args.out)}",
    )
    return 0
