"""``--cluster`` for the verbs that train: the option's value, the client, the data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..datasets._builtin import load_data
from ..datasets._shards import MANIFEST
from ..errors import ParameterError

#: The most local worker processes ``--cluster N`` starts: a few per core at most.
MAX_LOCAL_WORKERS = 4 * (os.cpu_count() or 1)


def cluster_argument(value: str) -> int | str:
    """``--cluster``: a number of local worker processes, or a scheduler address."""
    text = value.strip()
    if text.isdigit():
        if int(text) < 1:
            raise ParameterError(f"--cluster {value}: a local cluster needs at least 1 worker process")
        if int(text) > MAX_LOCAL_WORKERS:
            raise ParameterError(
                f"--cluster {value}: this machine has {os.cpu_count()} cores; a local cluster of more than "
                f"{MAX_LOCAL_WORKERS} worker processes would only crowd them (for more, start a scheduler and "
                "workers on other machines and give its address)"
            )
        return int(text)
    if not text or text.startswith("-"):
        raise ParameterError(f"--cluster {value!r}: give a scheduler address (tcp://host:8786) or a number of workers")
    return text


@contextmanager
def clustered(args: Any) -> Iterator[Any]:
    """The run's Dask client (None without ``--cluster``), closed afterwards if nnlearn made it."""
    if args.cluster is None:
        yield None
        return
    from ..compute._cluster import connect

    client, close = connect(args.cluster)
    try:
        yield client
    finally:
        close()


def cluster_data(args: Any) -> tuple[Any, Any]:
    """The training data: with ``--cluster``, a shard directory stays a Dask array, whose
    chunks the workers will read (only its labels, small, are read here); anything else is
    loaded here."""
    if args.cluster is not None and (Path(args.data) / MANIFEST).is_file():
        from ..datasets._shards import load_shards

        X, y = load_shards(args.data)
        return X, y.compute(scheduler="threads")
    return load_data(args.data)
