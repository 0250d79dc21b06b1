"""``nnlearn shard``: lay a dataset out as shards that each worker of a cluster reads itself."""

from __future__ import annotations

from ..datasets._builtin import load_data
from ..errors import ParameterError
from ._common import DATA_HELP, emit

SUMMARY = "write a dataset as a directory of .npy shards for training on a Dask cluster"
EXAMPLES = """\
  nnlearn shard digits20 digits-shards --rows-per-shard 1250
  nnlearn train --data digits-shards --cluster tcp://scheduler:8786 --optimizer lbfgs"""

DEFAULT_ROWS = 10_000


def add_arguments(p):
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    p.add_argument("out", metavar="OUT", help="a new directory for the shards (at a path the workers see)")
    p.add_argument(
        "--rows-per-shard",
        type=int,
        default=DEFAULT_ROWS,
        metavar="N",
        help=f"examples in each shard, the unit a worker loads and keeps (default: {DEFAULT_ROWS:,})",
    )
    p.add_argument("--force", action="store_true", help="replace an existing shard directory (never anything else)")


def run(args):
    from ..datasets._shards import write_shards

    if args.rows_per_shard < 1:
        raise ParameterError(f"--rows-per-shard must be an integer >= 1, got {args.rows_per_shard}")
    X, y = load_data(args.data)
    path = write_shards(X, y, args.out, args.rows_per_shard, overwrite=args.force)
    count = -(-X.shape[0] // args.rows_per_shard)
    result = {"data": args.data, "out": str(path), "shards": count, "rows": int(X.shape[0]), "features": X.shape[1]}
    emit(
        args,
        result,
        f"{X.shape[0]:,} examples of {X.shape[1]} features from {args.data} in {count} shards of at most "
        f"{args.rows_per_shard:,} rows: {path}",
    )
    return 0
