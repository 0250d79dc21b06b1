"""How nnlearn uses the machine's cores.

The data term of the cost is a sum over examples (:func:`nnlearn.core.data_term`), so
its examples can be cut into contiguous shards, one per core, evaluated in threads of
this process and added up. NumPy releases the GIL in matrix products and element-wise
loops, so the shards run side by side, each with OpenBLAS on one thread.

Why not let OpenBLAS use the cores itself: it shares only the matrix products, and its
idle threads spin, so on a busy machine its threads ran slower than one thread, where
the shards' threads sleep while they wait. The measurements behind every choice here
are in ``docs/benchmarks.md`` (section "Threads"); part C of ``benchmarks/`` times the
settings side by side on the machine at hand.

The shards' sums are added in a fixed order, so results are reproducible for a given
number of shards; that number depends on the threads allowed (and may change the last
bits of a result, as a different thread count does in many BLAS libraries).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np
from threadpoolctl import ThreadpoolController

from ..core import Network, NetworkLike, data_term, total_weight
from ._dataterm import Objective, full_objective
from ._products import products

__all__ = [
    "make_objective",
    "MIN_SHARD_WORK",
    "add_in_order",
    "ShardedDataTerm",
    "blas_threads",
    "default_threads",
    "handoff_seconds",
    "shard_bounds",
    "shard_count",
]

# The least work a shard gets, in examples times weights (each weight is used in about
# three multiply-adds per example). Below it a shard's fixed costs (a thread hand-off and
# a dozen small NumPy calls) outweigh what another core saves: the measured break-even
# is in docs/benchmarks.md.
MIN_SHARD_WORK = 3_000_000


@functools.lru_cache(maxsize=1)
def _controller():
    return ThreadpoolController()


def blas_threads(limit):
    """A context that limits the BLAS thread pools to ``limit`` threads (None: unchanged)."""
    return nullcontext() if limit is None else _controller().limit(limits=limit, user_api="blas")


def default_threads():
    """The threads nnlearn uses when not told: the BLAS pools' current thread count.

    OpenBLAS starts with one thread per core it may run on (or ``OPENBLAS_NUM_THREADS``),
    and ``threadpoolctl.threadpool_limits`` lowers it, so a caller's limit is obeyed.
    """
    counts = [lib["num_threads"] for lib in _controller().info() if lib["user_api"] == "blas"]
    return max(counts, default=0) or os.cpu_count() or 1


def _allowed_cpus():
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


@functools.cache
def _pool(workers):
    """``workers`` threads; one per processor, each pinned to its own, when they are as many.

    Linux's scheduler often woke an unpinned worker on the processor of the thread that
    woke it, and the shards then took turns on one core for many calls
    (docs/benchmarks.md). The calling thread only waits. Fewer workers than processors
    stay unpinned: pinned, every process using a few of them (say scikit-learn's
    ``n_jobs`` workers, each allowed 2 threads) would crowd the same ones.
    """
    cpus, numbers = _allowed_cpus(), itertools.count()

    def pin():
        if len(cpus) == workers:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, {cpus[next(numbers)]})  # this thread only

    return ThreadPoolExecutor(workers, thread_name_prefix="nnlearn", initializer=pin)


if hasattr(os, "register_at_fork"):
    # A forked child inherits the pools but not their threads: it must make its own.
    os.register_at_fork(after_in_child=_pool.cache_clear)


def _nothing():
    return None


def handoff_seconds(workers: int, repeats: int = 20) -> float:
    """The least time, over ``repeats`` tries, to hand ``workers`` empty tasks to the shards'
    pool and collect them: what sharding a call costs besides the work itself."""
    pool, best = _pool(workers), float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for future in [pool.submit(_nothing) for _ in range(workers)]:
            future.result()
        best = min(best, time.perf_counter() - start)
    return best


def shard_count(m: int, network: NetworkLike, threads: int | None = None) -> int:
    """How many shards ``m`` examples get with ``threads`` threads (None: :func:`default_threads`):
    one per thread, or fewer so that each has at least ``MIN_SHARD_WORK``; at least one."""
    threads = default_threads() if threads is None else int(threads)
    return max(1, min(threads, m * Network.of(network).n_weights // MIN_SHARD_WORK))


def add_in_order(results):
    """The sum of data terms' ``(loss_sum, grads)``, added in the order given (in place, into
    the first's): the same order every call, so the same bits (also for a cluster's
    partitions)."""
    loss_sum, grads = results[0]
    for part_loss, part_grads in results[1:]:
        loss_sum += part_loss
        for grad, part_grad in zip(grads, part_grads):
            grad += part_grad
    return loss_sum, grads


def shard_bounds(m: int, shards: int) -> np.ndarray:
    """Boundaries of ``shards`` contiguous slices of ``m`` examples, as even as can be: shape (shards + 1,)."""
    return np.linspace(0, m, shards + 1).round().astype(int)


class ShardedDataTerm:
    """:func:`~nnlearn.core.data_term` over all of ``X``, in parallel shards of examples.

    Parameters
    ----------
    X : ndarray, shape (m, n)
    Y : ndarray, shape (m, K)
    network : Network or sequence of int
        Its kinds, and its number of weights for the work per example.
    sample_weight : ndarray of shape (m,), optional
    threads : int, optional
        Threads to use; None: :func:`default_threads`. There are as many shards, or
        fewer, so that each has at least ``MIN_SHARD_WORK`` examples times weights; at
        least one (:func:`shard_count`).
    blas : str
        The library of the products with ``X`` (:mod:`nnlearn.compute._products`).

    Calling it with ``thetas`` returns ``(loss_sum, grad_sums)`` as ``data_term`` does,
    the shards' sums added in shard order: a :class:`nnlearn.compute._dataterm.DataTerm`, with
    its ``network``, ``m`` (examples or their total weight) and ``dtype``.
    """

    def __init__(self, X, Y, network, sample_weight=None, threads=None, blas="numpy"):
        self.network = Network.of(network)
        self.matmul = products(blas)
        self.m = total_weight(X, sample_weight)
        self.dtype = X.dtype
        count = shard_count(X.shape[0], self.network, threads)
        bounds = shard_bounds(X.shape[0], count)
        self.shards = [
            (X[i:j], Y[i:j], None if sample_weight is None else sample_weight[i:j])
            for i, j in itertools.pairwise(bounds)
        ]

    def __call__(self, thetas):
        with blas_threads(1):
            if len(self.shards) == 1:
                return data_term(thetas, *self.shards[0], network=self.network, matmul=self.matmul)
            pool = _pool(len(self.shards))
            futures = [
                pool.submit(data_term, thetas, *shard, network=self.network, matmul=self.matmul)
                for shard in self.shards
            ]
            results = [future.result() for future in futures]
        return add_in_order(results)


def make_objective(X, Y, lam: float, network: NetworkLike, sample_weight=None, threads: int | None = None) -> Objective:
    """``fun(x) -> (J, grad)`` over all examples, summed on this machine's cores in shards.

    ``network`` is a :class:`~nnlearn.core.Network` (or layer sizes: the course's
    network); ``threads`` None means :func:`default_threads`.
    """
    return full_objective(ShardedDataTerm(X, Y, network, sample_weight, threads), lam)
