"""The data term on a Dask cluster: full-batch training past one machine.

The course's objective is a sum over examples, so it distributes exactly: the examples
are cut into partitions that live on the cluster's workers, every evaluation sends the
weights out, each partition returns its unnormalised sums (:func:`nnlearn.core.data_term`),
and the client adds them in partition order, never in order of arrival, so that a result
does not depend on timing. The optimiser runs on the client, as Spark MLlib's
MultilayerPerceptronClassifier does with treeAggregate.

Where the partitions come from:

* NumPy arrays are cut on the client and sent once (``Client.scatter``). Scattered data
  has no recipe the scheduler could rerun, so when a worker holding a partition is lost,
  :class:`ClusterDataTerm` sends that partition again from the client's copy.
* Dask arrays (:func:`nnlearn.datasets._builtin.load_shards`) are loaded chunk by chunk by tasks on
  the workers and kept there; a lost chunk is recomputed from its source by the scheduler.

With partitions at the same boundaries as :class:`nnlearn.compute._threads.ShardedDataTerm`'s
shards, the sums are bit for bit those of one machine: each partition is computed by the
same kernel on one BLAS thread, with the same fixed forms of its products, and the sums are
added in the same order.

Dask is an optional dependency: ``pip install "nnlearn[cluster]"``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..core import Network, data_term, total_weight
from ..datasets._check import check_dataset
from ..errors import DataError, ExamplesLost, ParameterError, first_line
from ._threads import add_in_order, blas_threads, shard_bounds

__all__ = [
    "ClusterDataTerm",
    "ClusterLost",
    "connect",
    "data_term_on",
    "local_cluster",
    "predict",
    "require_dask",
    "score",
    "split_rows",
]

#: How often an evaluation is retried after partitions were lost with their worker.
RETRIES = 5


class ClusterLost(ExamplesLost):
    """The cluster cannot be reached any more (its scheduler went away)."""


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
    """A ``distributed.LocalCluster`` of ``workers`` processes on 127.0.0.1, one thread each.

    The nanny's default ``MALLOC_TRIM_THRESHOLD_`` is left unset in the workers: it made
    NumPy's large temporaries slower there (docs/cluster.md).
    """
    import dask

    distributed = require_dask()
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return distributed.LocalCluster(
            # ":0": no dashboard on Dask's fixed port, which a second cluster on this machine
            # would find taken (and warn about)
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        )


def connect(cluster: Any, timeout: float = 10.0) -> tuple[Any, Callable[[], None]]:
    """A ``distributed.Client`` for ``cluster``, and what closes what nnlearn made for it.

    Parameters
    ----------
    cluster : distributed.Client, str or int
        A client (used as it is), a scheduler address (``"tcp://host:8786"``), or a number
        of worker processes for a local cluster on 127.0.0.1 (one thread each).
    timeout : float
        Seconds to wait for a scheduler at an address.
    """
    distributed = require_dask()
    if isinstance(cluster, distributed.Client):
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
        try:  # an address that cannot be one is refused before a client exists to clean up
            from distributed.comm import parse_address
            from distributed.comm.addressing import parse_host_port

            parse_host_port(parse_address(cluster)[1])
        except ValueError as exc:
            raise ParameterError(
                f"{cluster!r} is not a scheduler address ({first_line(exc)}): use tcp://host:port"
            ) from None
        try:
            client = distributed.Client(cluster, timeout=f"{timeout}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:  # ValueError: not an address at all
            raise ClusterLost(f"cannot reach a Dask scheduler at {cluster} ({first_line(exc)})") from None
        return client, client.close
    raise ParameterError(
        f"cluster must be a distributed.Client, a scheduler address or a worker count, got {cluster!r}"
    )


@contextmanager
def data_term_on(cluster: Any) -> Iterator[Callable[..., ClusterDataTerm]]:
    """A data-term factory for :func:`nnlearn.training._train.fit` on ``cluster`` (see :func:`connect`);
    a client or local cluster nnlearn made for it is closed on leaving."""
    client, close = connect(cluster)

    def make(X, Y, network, sample_weight=None):
        return ClusterDataTerm(client, X, Y, network, sample_weight)

    try:
        yield make
    finally:
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


def _all_finite(X):
    return bool(np.all(np.isfinite(X)))


def _partition_sums(X, Y, sample_weight, thetas, network):
    """One partition's unnormalised sums, on one BLAS thread (as the local shards)."""
    with blas_threads(1):
        return data_term(thetas, X, Y, sample_weight, network=network)


def _is_dask(array) -> bool:
    return type(array).__module__.startswith("dask.")


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
    """

    def __init__(
        self,
        client,
        X,
        Y,
        network,
        sample_weight=None,
        *,
        partitions: int | None = None,
    ):
        self.client = client
        self.network = Network.of(network)
        self.dtype = np.dtype(X.dtype)
        self.m = total_weight(Y, sample_weight)
        if _is_dask(X):
            bounds = np.concatenate([[0], np.cumsum(X.chunks[0])])
            chunks = [X.blocks[i] for i in range(len(X.chunks[0]))]
        else:
            if partitions is None:
                partitions = max(1, sum(client.nthreads().values()))
            bounds = shard_bounds(X.shape[0], min(partitions, X.shape[0]))
            chunks = [X[i:j] for i, j in itertools.pairwise(bounds)]
        self.bounds = [int(b) for b in bounds]
        weights = [None if sample_weight is None else sample_weight[i:j] for i, j in itertools.pairwise(self.bounds)]
        self._sources = [
            (chunk, Y[i:j], w) for chunk, (i, j), w in zip(chunks, itertools.pairwise(self.bounds), weights)
        ]
        self._placed: list[tuple[Any, Any, Any]] = [self._place(source) for source in self._sources]
        if _is_dask(X):
            checks = [client.submit(_all_finite, placed[0], pure=False) for placed in self._placed]
            for index, finite in enumerate(client.gather(checks)):
                if not finite:
                    i, j = self.bounds[index], self.bounds[index + 1]
                    raise DataError(f"the training data's rows {i} to {j - 1} hold NaN or infinite values")

    def _place(self, source):
        """Futures of one partition's (X, Y, sample_weight) on the cluster."""
        X, Y, w = source
        X_future = self.client.compute(X) if _is_dask(X) else self.client.scatter(X, hash=False)
        Y_future = self.client.scatter(Y, hash=False)
        w_future = None if w is None else self.client.scatter(w, hash=False)
        return X_future, Y_future, w_future

    def _replace_lost(self) -> bool:
        """Send again every partition whose data went with a lost worker; True if any did."""
        lost = [
            i for i, placed in enumerate(self._placed) if any(f is not None and f.status != "finished" for f in placed)
        ]
        for index in lost:
            self._placed[index] = self._place(self._sources[index])
        return bool(lost)

    def __call__(self, thetas: Sequence[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        thetas = list(thetas)
        for attempt in itertools.count():
            try:
                futures = [
                    self.client.submit(_partition_sums, *placed, thetas, self.network, pure=False)
                    for placed in self._placed
                ]
                results = self.client.gather(futures)
                break
            except Exception as exc:
                if self.client.status not in ("running", "connecting"):
                    raise ClusterLost(f"lost the Dask scheduler ({type(exc).__name__})") from None
                # A worker went away with partitions that were sent to it: send them
                # again and retry. Any other error is the computation's own: raise it.
                if attempt >= RETRIES or not self._replace_lost():
                    raise
        return add_in_order(results)

    def close(self):
        """Let the cluster forget this term's partitions."""
        for placed in self._placed:
            for future in placed:
                if future is not None:
                    future.release()
        self._placed = []


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


def split_rows(X: Any, y: np.ndarray, test_size: float, seed: int) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """A stratified split of a Dask ``X`` by row masks made from the labels on the client.

    The rows keep their order (and so their chunks); only the masks and the labels are
    made here.
    """
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(y))
    train_rows, _ = train_test_split(rows, test_size=test_size, random_state=seed, stratify=y)
    train = np.zeros(len(y), dtype=bool)
    train[train_rows] = True
    return X[train], X[~train], y[train], y[~train]
