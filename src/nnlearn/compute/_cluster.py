"""The data term on a Dask cluster: full-batch training past one machine.

The course's objective is a sum over examples, so it distributes exactly: the examples
are cut into partitions that live on the cluster's workers, every evaluation sends the
weights out, each partition returns its unnormalised sums (:func:`nnlearn.core.data_term`),
and the client adds them in partition order, never in order of arrival, so that a result
does not depend on timing. The optimiser runs on the client, as Spark MLlib's
MultilayerPerceptronClassifier does with treeAggregate.

How an evaluation travels: each worker holds its partitions in a Dask actor
(:class:`nnlearn.compute._partitions.Partitions`), which the client calls directly, without
the scheduler in the path: a call took 2.1 ms here where a task's round trip took 12-20
ms. Actors have no recovery of their own, so this module gives them one: when a worker
is lost, its partitions are made again on the workers left (NumPy partitions sent again
from the client's copy, a shard directory's chunks read again from their files) and the
evaluation is repeated. The sums are the same wherever a partition is computed, so a
lost worker changes no bit of the result.

With partitions at the same boundaries as :class:`nnlearn.compute._threads.ShardedDataTerm`'s
shards, the sums are bit for bit those of one machine: each partition is computed by the
same kernel on one BLAS thread, in the same forms, and the sums are added in the same order.

What cannot be recovered ends in nnlearn's words: before a run, :class:`ClusterError`
(nothing Dask answers at the address, no workers, workers without this nnlearn); during
one, :class:`ClusterLost` (the scheduler, or every worker, went away), which carries the
weights reached so far.

Dask is an optional dependency: ``pip install "nnlearn[cluster]"``.
"""

from __future__ import annotations

import itertools
import socket
import struct
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .._version import __version__
from ..core import Network, pack, total_weight
from ..datasets._check import check_dataset
from ..errors import ClusterError, DataError, ExamplesLost, ParameterError, first_line
from ._partitions import Partitions, hand_over
from ._threads import add_in_order, shard_bounds

__all__ = [
    "ClusterDataTerm",
    "ClusterError",
    "ClusterLost",
    "WorkerLost",
    "check_workers",
    "connect",
    "data_term_on",
    "local_cluster",
    "predict",
    "require_dask",
    "score",
]

#: Seconds to wait for a scheduler's first answer, and for workers when there are none.
ANSWER_SECONDS = 5.0
WORKER_SECONDS = 10.0
#: The bytes of examples a message to a worker carries when its partition is sent, and how
#: many such messages to each partition may be on their way at once.
PIECE_BYTES = 8 << 20
PIECES_IN_FLIGHT = 2
#: Seconds between checks that a worker still computing a call is still there.
POLL_SECONDS = 1.0
#: How many times an evaluation is repeated after workers were lost.
RETRIES = 5


class ClusterLost(ExamplesLost):
    """The cluster went away during a run: its scheduler, or every worker.

    ``model`` holds the weights reached before (:class:`nnlearn.errors.ExamplesLost`).
    """


class WorkerLost(UserWarning):
    """A worker went away during a run; its partitions were made again on the others."""


def require_dask():
    """Import ``distributed``, or say in one line how to install it."""
    try:
        import dask.array  # noqa: F401
        import distributed
    except ImportError:
        raise ParameterError(
            'training on a cluster needs Dask: pip install "nnlearn[cluster]" (dask and distributed)'
        ) from None
    return distributed


def local_cluster(workers: int) -> Any:
    """A ``distributed.LocalCluster`` of ``workers`` processes on 127.0.0.1, one thread each."""
    distributed = require_dask()
    return distributed.LocalCluster(
        # ":0": no dashboard on Dask's fixed port, which a second cluster on this machine
        # would find taken (and warn about)
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    )


def check_address(cluster: str) -> str:
    """``cluster`` stripped, if it can be a scheduler's address; else ParameterError, before
    anything connects (``nnlearn train`` checks it with its other options)."""
    address = cluster.strip()
    try:
        from distributed.comm.addressing import parse_address, parse_host_port

        parse_host_port(parse_address(address)[1])
    except ValueError as exc:
        raise ParameterError(
            f"{cluster!r} is not a scheduler address ({first_line(exc)}): use tcp://host:port"
        ) from None
    return address


def _probe(address: str, seconds: float | None = None) -> None:
    """Refuse a TCP address where no Dask scheduler answers, before Dask connects to it.

    A Dask server speaks first: on accepting a connection it sends its handshake, a
    message whose first 8 bytes are its length (little-endian). An HTTP server (the
    dashboard's port) says nothing until asked, and Dask's client would wait on it for
    minutes; another server's bytes would be read as a length of petabytes.
    """
    from distributed.comm.addressing import parse_address, parse_host_port

    seconds = ANSWER_SECONDS if seconds is None else seconds
    scheme, location = parse_address(address)
    if scheme != "tcp":
        return
    host, port = parse_host_port(location)
    try:
        with socket.create_connection((host, port), timeout=seconds) as sock:
            sock.settimeout(seconds)
            head = b""
            while len(head) < 8:
                more = sock.recv(8 - len(head))
                if not more:
                    raise ClusterError(f"{address} closed the connection: it is not a Dask scheduler")
                head += more
    except TimeoutError:
        raise ClusterError(
            f"no Dask scheduler answers at {address}: something accepted the connection but said nothing in "
            f"{seconds:g} s (a web server, such as the dashboard's port? a scheduler listens on 8786 by default)"
        ) from None
    except OSError as exc:
        raise ClusterError(f"cannot reach a Dask scheduler at {address} ({exc.strerror or first_line(exc)})") from None
    (length,) = struct.unpack("<Q", head)
    if not 0 < length < 1 << 20:
        raise ClusterError(f"{address} answered, but not as a Dask scheduler does: it is another kind of server")


def connect(cluster: Any, timeout: float = 10.0) -> tuple[Any, Callable[[], None]]:
    """A ``distributed.Client`` for ``cluster``, checked, and what closes what nnlearn made for it.

    Parameters
    ----------
    cluster : distributed.Client, str or int
        A client (used as it is, and left open), ``"current"`` (this process's default
        client, ``distributed.get_client()``), a scheduler address
        (``"tcp://host:8786"``), or a number of worker processes for a local cluster on
        127.0.0.1 (one thread each).
    timeout : float
        Seconds to wait for a scheduler at an address.

    Raises
    ------
    ClusterError
        When nothing Dask answers at the address, or the workers cannot run nnlearn
        (:func:`check_workers`).
    """
    distributed = require_dask()
    if isinstance(cluster, str) and cluster.strip() == "current":
        try:
            cluster = distributed.get_client()
        except ValueError:
            raise ClusterError(
                'cluster="current": this process has no Dask client; make one first (distributed.Client(...))'
            ) from None
    if isinstance(cluster, distributed.Client):
        if cluster.status != "running":
            raise ClusterError(f"the Dask client given is {cluster.status}, not running")
        check_workers(cluster)
        return cluster, lambda: None
    if isinstance(cluster, (int, np.integer)) and not isinstance(cluster, bool):
        if cluster < 1:
            raise ParameterError(f"a local cluster needs at least 1 worker process, got {cluster}")
        local = local_cluster(int(cluster))
        client = distributed.Client(local, set_as_default=False)

        def close():
            client.close()
            local.close()

        return client, close
    if isinstance(cluster, str):
        address = check_address(cluster)
        _probe(address)
        try:
            client = distributed.Client(address, timeout=f"{timeout}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"cannot reach a Dask scheduler at {address} ({first_line(exc)})") from None
        try:
            check_workers(client)
        except BaseException:
            client.close()
            raise
        return client, client.close
    raise ParameterError(
        f"cluster must be a distributed.Client, a scheduler address, 'current' or a worker count, got {cluster!r}"
    )


#: Evaluated on each worker: imports what the partitions need, and says its version.
_WORKER_VERSION = "__import__('nnlearn.compute._partitions').__version__"


def check_workers(client: Any, seconds: float | None = None) -> dict[str, int]:
    """The cluster's workers and their threads, once each has shown it runs this nnlearn.

    Raises
    ------
    ClusterError
        When no worker joins within ``seconds`` (default :data:`WORKER_SECONDS`), or one
        cannot import nnlearn or has another version (one line naming the worker and what
        it lacks).
    """
    seconds = WORKER_SECONDS if seconds is None else seconds
    address = client.scheduler.address
    try:
        client.wait_for_workers(1, timeout=seconds)
    except (TimeoutError, OSError):
        raise ClusterError(
            f"the Dask scheduler at {address} has no workers (waited {seconds:g} s); start some with "
            f"`dask worker {address} --nthreads 1`"
        ) from None
    versions = client.run(eval, _WORKER_VERSION, on_error="return")
    for worker, version in sorted(versions.items()):
        if isinstance(version, BaseException):
            raise ClusterError(
                f"the worker {worker} cannot import nnlearn ({type(version).__name__}: {first_line(version)}); "
                f'install nnlearn {__version__} there: pip install "nnlearn[cluster]=={__version__}"'
            )
        if version != __version__:
            raise ClusterError(
                f"the worker {worker} has nnlearn {version}, this process {__version__}: every worker needs the "
                "same version (its computations may differ)"
            )
    return dict(client.nthreads())


class ClusterTerms:
    """Makes a run's :class:`ClusterDataTerm` on one client (for :func:`nnlearn.training._train.fit`),
    and keeps the last one made, for what it says of the run (:meth:`ClusterDataTerm.record`)."""

    #: The examples are not in this process's memory (nnlearn.training._train.fit).
    remote = True

    def __init__(self, client: Any, where: str):
        self.client, self.where = client, where
        self.last: ClusterDataTerm | None = None

    def __call__(self, X, Y, network, sample_weight=None, blas="numpy"):
        if self.last is not None:
            self.last.close()
        self.last = ClusterDataTerm(self.client, X, Y, network, sample_weight, where=self.where, blas=blas)
        return self.last

    def record(self) -> dict[str, Any]:
        return {} if self.last is None else self.last.record()


def describe(cluster: Any, client: Any) -> str:
    """How a run names its cluster: ``"local N"`` for a local cluster of N workers (made
    here, or a ``LocalCluster``'s client), else the scheduler's address."""
    if isinstance(cluster, (int, np.integer)) and not isinstance(cluster, bool):
        return f"local {int(cluster)}"
    local: Any = getattr(client, "cluster", None)
    if type(local).__name__ == "LocalCluster":
        return f"local {len(local.workers)}"
    return str(client.scheduler.address)


@contextmanager
def data_term_on(cluster: Any) -> Iterator[ClusterTerms]:
    """A data-term factory for :func:`nnlearn.training._train.fit` on ``cluster`` (see :func:`connect`);
    a client or local cluster nnlearn made for it is closed on leaving."""
    client, close = connect(cluster)
    terms = ClusterTerms(client, describe(cluster, client))
    try:
        yield terms
    finally:
        if terms.last is not None:
            terms.last.close()
        close()


def check_cluster_dataset(X: Any, y: Any, source: str = "data") -> tuple[Any, np.ndarray]:
    """:func:`nnlearn.datasets.check_dataset` for data that may be a Dask array.

    A Dask ``X`` stays on the cluster: its shape and dtype are checked here and its values
    on the workers (:class:`ClusterDataTerm`); ``y`` is small and comes to the client.
    """
    if not _is_dask(X):
        return check_dataset(X, y, source)
    if _is_dask(y):
        y = y.compute()
    if X.ndim != 2 or X.dtype.kind not in "fiub":
        raise DataError(f"{source}: X must be a 2-D numeric Dask array, got {X.ndim}-D {X.dtype}")
    if np.shape(y)[0] != X.shape[0]:
        raise DataError(f"{source}: X has {X.shape[0]} rows but y has {np.shape(y)[0]} labels")
    _, y = check_dataset(np.zeros((X.shape[0], 1)), y, source)
    return X.rechunk({1: -1}), y


def _is_dask(array) -> bool:
    return type(array).__module__.startswith("dask.")


def partition_bounds(X: Any, threads: int) -> list[int]:
    """Where :class:`ClusterDataTerm` cuts ``X``: a Dask array at its row chunks (a shard
    directory's shards), NumPy rows in as many even slices as the workers have threads
    (the boundaries of :class:`~nnlearn.compute._threads.ShardedDataTerm`'s shards), at most
    one per example."""
    if _is_dask(X):
        return [int(b) for b in np.concatenate([[0], np.cumsum(X.chunks[0])])]
    return [int(b) for b in shard_bounds(X.shape[0], min(max(1, threads), X.shape[0]))]


def _failed(exc: BaseException) -> bool:
    """Whether an actor's call failed because its worker went away (rather than raised)."""
    import asyncio

    from distributed.client import FutureCancelledError

    if isinstance(exc, (OSError, asyncio.CancelledError, FutureCancelledError, asyncio.TimeoutError)):
        return True
    return isinstance(exc, RuntimeError) and "Worker holding Actor was lost" in str(exc)


class _Holder:
    """One actor on one worker and the partitions it holds."""

    def __init__(self, future: Any, worker: str, indices: list[int]):
        self.future, self.worker, self.indices = future, worker, indices
        self.actor: Any = None


class ClusterDataTerm:
    """:func:`~nnlearn.core.data_term` over all examples, in partitions on a Dask cluster.

    A :class:`nnlearn.compute._dataterm.DataTerm`: ``network``, ``m`` and ``dtype``, and a call
    with ``thetas`` that returns the sums of all partitions, added in partition order.

    Parameters
    ----------
    client : distributed.Client
    X : ndarray or dask array, shape (m, n)
        Dask arrays keep their row chunks as partitions (each loaded on a worker).
    Y : ndarray, shape (m, K)
        One-hot labels (small beside X); cut to X's partitions and sent once.
    network : Network or sequence of int
    sample_weight : ndarray, shape (m,), optional
    partitions : int, optional
        For NumPy ``X``: how many (default: the workers' threads, so that the boundaries
        are those of :class:`~nnlearn.compute._threads.ShardedDataTerm` with as many threads).
    where : str, optional
        How the run names the cluster (:func:`describe`); default: the scheduler's address.
    blas : str
        The library of the products with the examples, on the workers
        (:mod:`nnlearn.compute._products`; each worker needs it installed).

    Raises
    ------
    DataError
        When the examples hold NaN or infinite values (found where they are).
    ClusterLost
        From a call, when the scheduler or every worker went away.
    """

    def __init__(
        self, client, X, Y, network, sample_weight=None, *, partitions: int | None = None, where=None, blas="numpy"
    ):
        self.client, self.blas = client, blas
        self.where = where or str(client.scheduler.address)
        self.network = Network.of(network)
        self.dtype = np.dtype(X.dtype)
        self.m = total_weight(Y, sample_weight)
        threads = partitions if partitions is not None else sum(client.nthreads().values())
        self.bounds = partition_bounds(X, threads)
        pairs = list(itertools.pairwise(self.bounds))
        chunks = [X.blocks[i] for i in range(len(pairs))] if _is_dask(X) else [X[i:j] for i, j in pairs]
        self._sources = [
            (chunk, Y[i:j], None if sample_weight is None else sample_weight[i:j])
            for chunk, (i, j) in zip(chunks, pairs)
        ]
        self.lost: list[str] = []
        self.workers: list[str] = []
        self._holders: list[_Holder] = []
        self._place(list(range(len(pairs))), sorted(client.nthreads()))

    # Where the partitions live.

    def _place(self, indices: list[int], workers: list[str]) -> None:
        """Make an actor on each of ``workers`` holding its share of partitions ``indices``
        (contiguous runs, in order), and hand them their data on the worker."""
        shares = [
            indices[len(indices) * k // len(workers) : len(indices) * (k + 1) // len(workers)]
            for k in range(len(workers))
        ]
        made = []
        for worker, share in zip(workers, shares):
            if share:
                future = self.client.submit(
                    Partitions,
                    self.network,
                    self.dtype,
                    self.blas,
                    actor=True,
                    workers=[worker],
                    allow_other_workers=False,
                    pure=False,
                )
                made.append(_Holder(future, worker, share))
        for holder in made:
            holder.actor = holder.future.result()
        # NumPy partitions go to their actors in direct calls, to every worker at once; a
        # Dask array's chunks are read on their worker and handed to its actor there.
        calls, handed, pieces = [], [], []
        with self.client.as_current():
            for holder in made:
                for index in holder.indices:
                    X, Y, weights = self._sources[index]
                    if not _is_dask(X):
                        calls.append(holder.actor.reserve(index, self.bounds[index], X.shape, Y, weights))
                        step = max(1, PIECE_BYTES // max(1, X.shape[1] * X.itemsize))
                        pieces.append(
                            [(holder, index, start, X[start : start + step]) for start in range(0, X.shape[0], step)]
                        )
                        continue
                    there = [holder.worker]
                    X_future = self.client.compute(X, workers=there, allow_other_workers=False)
                    Y_future = self.client.scatter(Y, workers=there, direct=True, hash=False)
                    w_future = (
                        None
                        if weights is None
                        else self.client.scatter(weights, workers=there, direct=True, hash=False)
                    )
                    task = self.client.submit(
                        hand_over,
                        holder.actor,
                        index,
                        self.bounds[index],
                        X_future,
                        Y_future,
                        w_future,
                        workers=there,
                        allow_other_workers=False,
                        pure=False,
                    )
                    handed.append((task, X_future, Y_future, w_future))
        try:
            for call in calls:
                call.result()
            self._send(pieces)
            self.client.gather([task for task, *_ in handed])
        finally:
            for futures in handed:
                for future in futures:
                    if future is not None:
                        future.release()
        self._holders.extend(made)
        self.workers = sorted({holder.worker for holder in self._holders})

    def _send(self, pieces: list[list[tuple[_Holder, int, int, np.ndarray]]]) -> None:
        """Send the NumPy partitions' pieces to their actors, all partitions at once and a
        few pieces of each in flight."""
        in_flight: list[list[Any]] = [[] for _ in pieces]
        with self.client.as_current():
            for round_ in itertools.zip_longest(*pieces):
                for queue, piece in zip(in_flight, round_):
                    if piece is None:
                        continue
                    holder, index, start, rows = piece
                    queue.append(holder.actor.fill(index, start, rows))
                    if len(queue) > PIECES_IN_FLIGHT:
                        queue.pop(0).result()
        for queue in in_flight:
            for call in queue:
                call.result()

    def _check_scheduler(self) -> None:
        if self.client.status != "running":
            raise ClusterLost(f"lost the Dask scheduler at {self.where}")

    def _live_workers(self, gone: set[str]) -> list[str]:
        """The workers to make lost partitions on: the scheduler's, less ``gone``; waits
        :data:`WORKER_SECONDS` for one (a nanny restarting its worker) before giving up."""
        deadline = time.monotonic() + WORKER_SECONDS
        while True:
            self._check_scheduler()
            try:
                workers = sorted(set(self.client.nthreads(callback_timeout=ANSWER_SECONDS)) - gone)
            except (OSError, TimeoutError):
                raise ClusterLost(f"lost the Dask scheduler at {self.where}") from None
            if workers:
                return workers
            if time.monotonic() > deadline:
                raise ClusterLost(
                    f"lost every worker of the Dask cluster at {self.where} (none came back in {WORKER_SECONDS:g} s)"
                )
            time.sleep(0.2)

    def _recover(self, failed: list[_Holder]) -> None:
        """Make the partitions of ``failed`` holders again on the workers left, and say so once."""
        gone = {holder.worker for holder in failed}
        indices = sorted(i for holder in failed for i in holder.indices)
        for holder in failed:
            holder.future.release()
            self._holders.remove(holder)
        workers = self._live_workers(gone)
        rows = sum(self.bounds[i + 1] - self.bounds[i] for i in indices)
        self.lost.extend(sorted(gone))
        warnings.warn(
            f"lost the Dask worker{'s' if len(gone) > 1 else ''} {', '.join(sorted(gone))}; "
            f"{'its' if len(gone) == 1 else 'their'} {rows:,} examples were sent again to "
            f"{', '.join(workers)} and the evaluation repeated (the result is unchanged)",
            WorkerLost,
            stacklevel=2,
        )
        self._place(indices, workers)

    # The data term.

    def __call__(self, thetas: Sequence[np.ndarray]) -> tuple[Any, list[np.ndarray]]:
        x = pack(list(thetas))
        for attempt in itertools.count():
            self._check_scheduler()
            results: dict[int, Any] = {}
            failed = []
            with self.client.as_current():  # an actor calls through the current client
                calls = [(holder, self._call(holder, x)) for holder in self._holders]
            for holder, call in calls:
                try:
                    results.update(self._wait(holder, call))
                except Exception as exc:
                    if not _failed(exc):
                        raise
                    failed.append(holder)
            if not failed:
                return add_in_order([results[i] for i in range(len(self._sources))])
            self._check_scheduler()
            if attempt >= RETRIES:
                raise ClusterLost(f"workers of the Dask cluster at {self.where} kept going away ({RETRIES} times)")
            try:
                self._recover(failed)
            except ClusterLost:
                raise
            except Exception as exc:  # a worker went away while the partitions were being made again
                if not _failed(exc):
                    raise
        raise AssertionError("unreachable")

    def _wait(self, holder: _Holder, call: Any) -> dict[int, Any]:
        """The result of a holder's call; an OSError as soon as its worker is known lost
        (Dask would wait for a lost actor's task to be run again, which it never is here)."""
        if isinstance(call, BaseException):
            raise call
        while True:
            try:
                return call.result(timeout=POLL_SECONDS)
            except TimeoutError:  # still computing, or its worker gone: ask the scheduler
                if call.done():
                    continue
                self._check_scheduler()
                if holder.future.status != "finished":
                    raise OSError(f"lost the worker {holder.worker}") from None

    @staticmethod
    def _call(holder: _Holder, x: np.ndarray) -> Any:
        """A holder's sums at ``x`` under way, or what stopped the call from starting (Dask
        refuses a call to an actor whose worker it knows is lost)."""
        try:
            return holder.actor.sums(x)
        except Exception as exc:
            return exc

    def record(self) -> dict[str, Any]:
        """What the run ran on, for a model's history: the cluster, its workers, the partitions' rows."""
        return {
            "cluster": self.where,
            "cluster_workers": self.workers,
            "cluster_partitions": [j - i for i, j in itertools.pairwise(self.bounds)],
            "cluster_lost_workers": len(self.lost),
        }

    def close(self):
        """Let the cluster forget this term's partitions."""
        for holder in self._holders:
            holder.future.release()
        self._holders = []


def _predict_block(X, model):
    return model.predict(X)


def predict(model: Any, X: Any, client: Any = None) -> np.ndarray:
    """``model.predict(X)``; for a Dask ``X`` computed by ``client``'s workers where its
    chunks are, so that only the labels come to this process."""
    if not _is_dask(X):
        return model.predict(X)
    labels = X.map_blocks(_predict_block, model=model, drop_axis=1, dtype=model.classes.dtype)
    return np.asarray(client.compute(labels).result() if client is not None else labels.compute())


def score(model: Any, X: Any, y: np.ndarray, client: Any = None) -> float:
    """Accuracy of ``model`` on (X, y), computed on ``client``'s workers for a Dask ``X``."""
    return float(np.mean(predict(model, X, client) == np.asarray(y)))
