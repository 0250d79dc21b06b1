"""Whether a resumed run can be exact: what its weights depend on besides the settings.

A run reaches the uninterrupted run's weights bit for bit only with the same data, the
same place its cost is summed (the threads' shards, or a cluster's partitions), and the
same BLAS, NumPy and nnlearn. :func:`exactness_record` records those; a run resumed from
a :class:`~nnlearn.training.Continuation` compares its own record with the one it
continues (:func:`compare_exactness`) and says what differs. A run resumed with a
difference stays inexact: the records of its later states carry a note of it
(:data:`NOT_EXACT_SINCE`), which every later resume repeats.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .._version import __version__
from ..datasets._builtin import DATASETS
from ..datasets._shards import MANIFEST
from ..optim import MINI_BATCH

__all__ = [
    "EXACT",
    "NOT_EXACT_SINCE",
    "EXACT_MEANING",
    "exactness_record",
    "compare_exactness",
    "difference_lines",
    "data_digest",
]

#: Keys of a checkpoint's settings that record what a resumed run's exactness depends on.
#: Later nnlearn versions may add keys with this prefix (a compute plan);
#: :func:`compare_exactness` compares every one it finds.
EXACT = "exact."
#: Set once a run was resumed with a difference, and carried by every later checkpoint
#: of the run, so that each later resume still says so: when, and what changed
#: ("iteration 12: the data changed; BLAS ... -> ..."), one entry per such resume.
NOT_EXACT_SINCE = "exact.not_exact_since"
#: What a difference in each recorded key means for the resumed run.
EXACT_MEANING = {
    "exact.data_sha256": (
        "the data",
        "the resumed run goes on with other examples than the run it continues, so it will not end "
        "where that run would have",
    ),
    "exact.shards": (
        "the partitions of examples the cost is summed in",
        "the costs and gradients are sums over other partitions, which differ in their last bits, so the "
        "resumed run ends near, not at, the uninterrupted run's weights (cg and lbfgs replays will report "
        "the mismatch)",
    ),
    "exact.cluster": (
        "the machines the cost is summed on",
        "their BLAS and NumPy may round differently, so the resumed run may end near, not at, the "
        "uninterrupted run's weights",
    ),
    "exact.blas": (
        "the BLAS library",
        "its kernels round differently, so the run will not reach the uninterrupted run's weights bit for bit",
    ),
    "exact.numpy": ("the NumPy version", "its arithmetic may round differently in the last bits"),
    "exact.nnlearn": ("the nnlearn version", "its computations may differ, however slightly"),
}
# Where the sums are computed: compared together (:func:`_layout`), as one difference.
_LAYOUT_KEYS = ("exact.shards", "exact.bounds", "exact.cluster")
# Recorded for the messages, compared through what it decides (the shards).
# The cluster's workers and partitions' rows, which say what ran: a run elsewhere has other
# workers' addresses, and its partitions are compared through exact.shards and exact.bounds.
_EXACT_INFORMATION = {"exact.threads", "exact.workers", "exact.partition_rows", NOT_EXACT_SINCE}
# What a record written before a key existed ran with: on this machine, in even slices.
_EXACT_BEFORE = {"exact.cluster": "none", "exact.bounds": "even"}
# Short names of the other keys for the note in NOT_EXACT_SINCE.
_LABELS = {"exact.blas": "BLAS", "exact.numpy": "NumPy", "exact.nnlearn": "nnlearn"}
# The note stays well below what a checkpoint's text setting may hold (nnlearn.persist._schema.MAX_TEXT).
_MAX_NOTE = 2000


def exactness_record(data, X, y, X_train, network, optimizer, *, cluster=None, client=None, resumed=None):
    """What a resumed run must find unchanged to reach the uninterrupted run's weights exactly.

    Parameters
    ----------
    data, X, y : the data as given (a path or a built-in dataset's name) and loaded
    X_train : ndarray or dask array
        The training part, which the sums run over.
    network : Network
    optimizer : str
    cluster : int or str, optional
        ``--cluster``: N local worker processes, or a scheduler address.
    client : distributed.Client, optional
        The cluster's client, where one is connected already; without it a scheduler
        address is asked for its workers' threads on a connection of its own.
    resumed : Continuation, optional
        The run resumed (:class:`nnlearn.training.Continuation`): a difference from its
        record is noted in :data:`NOT_EXACT_SINCE` with the iteration it had reached, and a
        note its record holds is carried on.

    Returns
    -------
    dict
        Flat ``exact.*`` keys (a checkpoint's settings hold JSON scalars): the nnlearn,
        NumPy and BLAS versions, the threads, where the cost is summed (how many
        partitions, cut how, on which cluster: "none", "local N" or an address; with a
        client, also its workers and the partitions' rows, which are not compared), the
        SHA-256 of the data (the file's bytes, or a built-in dataset's arrays), and,
        once the run was resumed with a difference, :data:`NOT_EXACT_SINCE`.
    """
    from threadpoolctl import threadpool_info

    from ..compute._threads import ShardedDataTerm, default_threads

    threads = default_threads()
    ran_on: dict[str, str] = {}
    if cluster is None:
        where, bounds = "none", "even"
        # Batches run on one thread (nnlearn.training._train); the full-batch data term cuts the
        # examples into shards as ShardedDataTerm does (it only slices them here).
        shards = (
            1 if optimizer in MINI_BATCH else len(ShardedDataTerm(X_train, X_train, network, threads=threads).shards)
        )
    else:
        where = f"local {cluster}" if isinstance(cluster, int) else str(cluster)
        shards, bounds = _partitions(X_train, cluster, client)
        if client is not None:
            from ..compute._cluster import partition_bounds

            cut = partition_bounds(X_train, shards)
            ran_on = {
                "exact.workers": " ".join(sorted(client.nthreads())),
                "exact.partition_rows": " ".join(str(j - i) for i, j in zip(cut, cut[1:])),
            }
    blas = sorted(
        f"{lib.get('internal_api')} {lib.get('version')} {lib.get('architecture') or ''}".strip()
        for lib in threadpool_info()
        if lib.get("user_api") == "blas"
    )
    record = {
        "exact.nnlearn": __version__,
        "exact.numpy": np.__version__,
        "exact.blas": "; ".join(blas) or "unknown",
        "exact.threads": threads,
        "exact.shards": shards,
        "exact.bounds": bounds,
        "exact.cluster": where,
        "exact.data_sha256": data_digest(data, X, y),
        **ran_on,
    }
    if resumed is not None:
        note = _carried_note(dict(resumed.exactness), record, resumed.n_iter)
        if note:
            record[NOT_EXACT_SINCE] = note
    return record


def _partitions(X_train, cluster, client):
    """How many partitions nnlearn.compute._cluster.ClusterDataTerm cuts the examples into, and how.

    A shard directory's Dask array keeps its row chunks ("chunks"); NumPy data is cut
    into as many even slices as the workers have threads ("even": the boundaries of
    ShardedDataTerm's shards), at most one per example.
    """
    if type(X_train).__module__.startswith("dask."):
        return len(X_train.chunks[0]), "chunks"
    if client is not None:
        threads = sum(client.nthreads().values())
    elif isinstance(cluster, int):
        threads = cluster  # nnlearn.compute._cluster.local_cluster: one thread per worker process
    else:
        # Only the scheduler knows its workers' threads. Asked on a connection of its own:
        # the run connects after its record is made, and the notice of the run's time
        # needs the count as a number.
        from ..compute._cluster import connect

        client, close = connect(cluster)
        try:
            threads = sum(client.nthreads().values())
        finally:
            close()
    return min(max(1, threads), X_train.shape[0]), "even"


def data_digest(data, X, y):
    """SHA-256 of the examples a run trains on.

    ``data`` None: of the arrays themselves (dtype, shape, values; a Dask array by its
    name, which its chunks' sources and checksums determine). Given, as ``nnlearn train``
    knew its data before: a built-in dataset's arrays, a shard directory's manifest or a
    file's bytes.
    """
    digest = hashlib.sha256()
    if data is None or data in DATASETS:
        for array in (X, y):
            if type(array).__module__.startswith("dask."):
                digest.update(f"{array.dtype.str}{array.shape}{array.name}".encode())
                continue
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
    elif Path(data).is_dir():  # a shard directory: its manifest holds every shard's SHA-256
        digest.update((Path(data) / MANIFEST).read_bytes())
    else:
        with open(data, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def compare_exactness(saved, now):
    """How the resumed checkpoint's record (``saved``) differs from this run's (``now``).

    Returns
    -------
    list of dict
        ``{"what", "then", "now", "meaning"}`` per difference; one entry with ``what``
        "record" when the checkpoint has no record (an older nnlearn wrote it), and one
        with ``what`` "history" (``then``: the note) when an earlier resume of the run
        already differed (:data:`NOT_EXACT_SINCE`).
    """
    return [difference for difference, _ in _differences(saved, now)]


def _differences(saved, now):
    """compare_exactness's entries, each with its short form for the note (None: none)."""
    recorded = {key: value for key, value in saved.items() if key.startswith(EXACT)}
    if not recorded:
        meaning = (
            "the checkpoint does not record what exactness depends on (an older nnlearn wrote it): whether the "
            "resumed run reaches the uninterrupted run's weights cannot be checked"
        )
        return [({"what": "record", "then": None, "now": None, "meaning": meaning}, None)]
    recorded = {**_EXACT_BEFORE, **recorded}
    current = {key: value for key, value in now.items() if key.startswith(EXACT)}
    differences = []
    note = _one_line(recorded.get(NOT_EXACT_SINCE))
    if note:
        meaning = f"this run has not been exact since {note}"
        differences.append(({"what": "history", "then": note, "now": None, "meaning": meaning}, None))
    layout = _layout_difference(recorded, current)
    if layout is not None:
        differences.append(layout)
    skipped = _EXACT_INFORMATION.union(_LAYOUT_KEYS)
    for key in sorted(set(recorded) | set(current)):
        if key in skipped or recorded.get(key) == current.get(key):
            continue
        what, meaning = EXACT_MEANING.get(
            key, (key[len(EXACT) :], "this nnlearn cannot tell what that means for the resumed run")
        )
        then, here = recorded.get(key), current.get(key)
        if key == "exact.data_sha256":
            label = "the data changed"
        else:
            label = f"{_LABELS.get(key, key[len(EXACT) :])} {_short(then)} -> {_short(here)}"
        differences.append(({"what": what, "then": then, "now": here, "meaning": meaning}, label))
    return differences


def _layout(record):
    """Where a record's sums were computed: the machines (None: this one), the cut, the partitions."""
    cluster = record.get("exact.cluster")
    machines = None if cluster == "none" or str(cluster).startswith("local ") else cluster
    return machines, record.get("exact.bounds"), record.get("exact.shards")


def _layout_difference(recorded, current):
    """The difference in where the sums are computed, or None.

    Local shards and a local cluster's partitions at the same boundaries give the same
    sums bit for bit (nnlearn.compute._cluster); a scheduler elsewhere may have other libraries.
    """
    then, now = _layout(recorded), _layout(current)
    if then == now:
        return None
    key = "exact.shards" if then[1:] != now[1:] else "exact.cluster"
    what, meaning = EXACT_MEANING[key]
    before, after = _where(recorded), _where(current)
    difference = {"what": what, "then": before, "now": after, "meaning": meaning}
    return difference, f"summed in {before} -> {after}"


def _where(record):
    """Where a record's sums were computed, in words: "2 shards on 2 threads",
    "3 partitions on a local cluster of 3 workers"."""
    shards, cluster, threads = record.get("exact.shards"), record.get("exact.cluster"), record.get("exact.threads")
    if cluster == "none":
        if threads is None:
            return _count(shards, "shard")
        # A shard runs on one thread; small data have fewer shards than threads.
        on = _count(threads, "thread") if threads == shards else f"{shards} of {_count(threads, 'thread')}"
        return f"{_count(shards, 'shard')} on {on}"
    cut = ", the shard directory's chunks," if record.get("exact.bounds") == "chunks" else ""
    workers = str(cluster).removeprefix("local ")
    place = f"a local cluster of {_count(workers, 'worker')}" if workers != cluster else f"the cluster at {cluster}"
    return f"{_count(shards, 'partition')}{cut} on {place}"


def _count(n, word):
    return f"{n} {word}" + ("" if str(n) == "1" else "s")


def _carried_note(resumed, record, resumed_at):
    """The NOT_EXACT_SINCE of a run resumed from ``resumed`` with ``record``: the note it
    carries, with this resume's differences added."""
    old = _one_line(resumed.get(NOT_EXACT_SINCE)) or None
    changes = [label for _, label in _differences(resumed, record) if label]
    if not changes:
        return old
    entry = f"iteration {resumed_at}: {'; '.join(changes)}"
    note = entry if old is None else f"{old}, then {entry}"
    if len(note) > _MAX_NOTE:  # many resumes: the first (since when) and the latest are kept
        note = f"{old.split(', then ')[0]}, ..., then {entry}" if old is not None else note
        note = note if len(note) <= _MAX_NOTE else note[: _MAX_NOTE - 3] + "..."
    return note


def _one_line(note):
    """A note as one line: a checkpoint's text settings may hold line feeds, a warning may not."""
    return " ".join(note.split()) if isinstance(note, str) else ""


def difference_lines(path, differences):
    for d in differences:
        if d["what"] in ("record", "history"):
            yield f"resuming {path}: {d['meaning']}"
        else:
            then, now = _short(d["then"]), _short(d["now"])
            yield f"resuming {path}: {d['what']} differ: {then} then, {now} now; {d['meaning']}"


def _short(value):
    text = str(value)
    return text[:12] + "..." if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text
