"""``--cluster`` for the verbs that train: the option's value, the client, the data."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..datasets._builtin import load_data
from ..datasets._shards import MANIFEST
from ..errors import ParameterError
from ._monitor import say

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
    """The run's Dask client (None without ``--cluster``), checked, and closed afterwards if
    nnlearn made it. Dask's own log lines are kept quiet meanwhile: what goes wrong is said
    in nnlearn's words (:func:`worker_warnings`, and the errors of :mod:`nnlearn.compute._cluster`)."""
    if args.cluster is None:
        yield None
        return
    from ..compute._cluster import connect

    with _quiet_dask():
        client, close = connect(args.cluster)
        try:
            yield client
        finally:
            close()


#: The loggers Dask's client speaks through (Dask configures levels on several of them).
_DASK_LOGGERS = ("distributed", "tornado", "asyncio")


@contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's log lines (reconnection attempts, tracebacks of cancelled tasks) kept off
    stderr: a fault is said in nnlearn's words instead."""
    import distributed  # noqa: F401  (configures its loggers first, so that they are all here)

    names = [
        name
        for name in logging.root.manager.loggerDict
        if any(name == prefix or name.startswith(prefix + ".") for prefix in _DASK_LOGGERS)
    ]
    loggers = [logging.getLogger(name) for name in sorted({*names, *_DASK_LOGGERS})]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextmanager
def worker_warnings(prefix: str) -> Iterator[None]:
    """Say each lost worker (:class:`nnlearn.compute._cluster.WorkerLost`) in one line, as it happens."""
    from ..compute._cluster import WorkerLost

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, WorkerLost):
            say(f"{prefix}: warning: {message}")
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", WorkerLost)
        warnings.showwarning = show
        yield


def ran_on(history: dict[str, Any]) -> dict[str, Any]:
    """The cluster a model was trained on, from its history, for ``--json``: nothing without one."""
    if "cluster" not in history:
        return {}
    return {
        "cluster": {
            "address": history["cluster"],
            "workers": history.get("cluster_workers", []),
            "partition_rows": history.get("cluster_partitions", []),
            "lost_workers": history.get("cluster_lost_workers", 0),
        }
    }


def cluster_lines(result: dict[str, Any]) -> list[str]:
    """The text summary's lines on the cluster a run used (none without one)."""
    cluster = result.get("cluster")
    if cluster is None:
        return []
    rows = cluster["partition_rows"]
    lines = [
        f"cluster          {cluster['address']}: {len(cluster['workers'])} "
        f"worker{'s' if len(cluster['workers']) != 1 else ''} ({', '.join(cluster['workers'])})",
        f"partitions       {len(rows)} of {', '.join(f'{n:,}' for n in rows)} rows",
    ]
    if cluster["lost_workers"]:
        lines.append(f"lost workers     {cluster['lost_workers']} (their partitions were made again; same result)")
    return lines


def cluster_data(args: Any) -> tuple[Any, Any]:
    """The training data: with ``--cluster``, a shard directory stays a Dask array, whose
    chunks the workers will read (only its labels, small, are read here); anything else is
    loaded here."""
    if args.cluster is not None and (Path(args.data) / MANIFEST).is_file():
        from ..datasets._shards import load_shards

        X, y = load_shards(args.data)
        return X, y.compute(scheduler="threads")
    return load_data(args.data)
