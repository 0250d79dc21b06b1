"""Checks of a run's inputs that are not settings: example weights, memory, a cluster.

The settings are checked by their declaration (:mod:`nnlearn.training._settings`); these
look at what comes with them, before any work starts.
"""

from __future__ import annotations

import numbers
import os

import numpy as np
from numpy.typing import ArrayLike

from ..core import Network, NetworkLike
from ..errors import DataError, ParameterError
from ..optim import FULL_BATCH, MINI_BATCH

__all__ = ["check_sample_weight", "check_memory", "check_cluster_parameter", "check_cluster_optimizer", "is_client"]

#: Bytes a training run needs per weight (copies of the weights and gradients, and the
#: optimisers' memories: L-BFGS keeps 20 vectors) and per unit activation of an example.
BYTES_PER_WEIGHT, BYTES_PER_ACTIVATION = 8 * 32, 8 * 4


def check_cluster_optimizer(optimizer: str) -> None:
    """Only the full-batch optimisers train on a cluster: their data term distributes exactly."""
    if optimizer in MINI_BATCH:
        raise ParameterError(
            f"the mini-batch optimiser {optimizer!r} runs on one machine; on a cluster use a full-batch one "
            f"({', '.join(FULL_BATCH)}), whose data term distributes exactly"
        )


def is_client(cluster: object) -> bool:
    """Whether ``cluster`` is a live ``distributed.Client`` (told without importing Dask)."""
    kinds = type(cluster).__mro__
    return any(kind.__module__.startswith("distributed.") and kind.__name__ == "Client" for kind in kinds)


def check_cluster_parameter(cluster: object, optimizer: str) -> None:
    """The estimator's cluster: a ``distributed.Client``, ``"current"``, a scheduler address
    or a local worker count, with a full-batch optimiser."""
    address = isinstance(cluster, str) and cluster.strip() != ""
    count = isinstance(cluster, numbers.Integral) and not isinstance(cluster, bool) and int(cluster) >= 1
    if not (address or count or is_client(cluster)):
        raise ParameterError(
            "cluster must be a distributed.Client, 'current', a Dask scheduler address or a number of local "
            f"worker processes >= 1, got {cluster!r}"
        )
    check_cluster_optimizer(optimizer)


def check_sample_weight(sample_weight: ArrayLike | None, m: int, dtype=np.float64) -> np.ndarray | None:
    """Validate example weights: None, or m finite numbers >= 0 with a positive sum."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (m,):
        raise DataError(f"sample_weight must have one weight per example, shape ({m},); got {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise DataError("sample_weight must be finite and >= 0")
    if not weights.sum() > 0:
        raise DataError("sample_weight sums to 0: at least one example must have a positive weight")
    return weights.astype(dtype)


def check_memory(network: NetworkLike, m: int) -> None:
    """Refuse a network whose training would not fit in this machine's memory."""
    network = Network.of(network)
    layer_sizes, weights = network.layer_sizes, network.n_weights
    needed = BYTES_PER_WEIGHT * weights + BYTES_PER_ACTIVATION * m * sum(layer_sizes[1:])
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > available:
        raise ParameterError(
            f"a {'-'.join(map(str, layer_sizes))} network ({weights:,} weights) on {m:,} examples needs "
            f"about {needed / 2**30:,.0f} GiB to train; this machine has {available / 2**30:,.0f} GiB"
        )
