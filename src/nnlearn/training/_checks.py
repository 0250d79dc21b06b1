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
from ..errors import DataError, ParameterError, ShapeError
from ..optim import FULL_BATCH, MINI_BATCH

__all__ = [
    "check_sample_weight",
    "check_memory",
    "check_cluster_parameter",
    "check_cluster_optimizer",
    "is_client",
    "random_state_of",
    "check_warm_shape",
]

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
    """Validate example weights: None, or m finite numbers >= 0 whose sum ``dtype`` carries.

    A weight counts its example that many times (2: as if the example were given twice):
    the cost is sum_i w_i loss_i / sum_i w_i plus lam / (2 sum_i w_i) times the penalty,
    as scikit-learn's MLPClassifier has it. So the weights' scale matters when lam > 0 (it
    sets the data's weight against the penalty), and nnlearn does not normalise them:
    ordinary weights train bit for bit as they always did. Their sum must lie within
    [sqrt(tiny), sqrt(max)] of ``dtype`` (about 1.5e-154 to 1.3e154 in float64, 1.1e-19
    to 1.8e19 in float32): beyond it the weighted sums, or the penalty's factor
    lam / (2 sum_i w_i), under- or overflow, and training ends in "diverged" or in noise
    (uniform weights of 1e-300 made lam = 1 a penalty of 1e296 times the usual). Such
    weights are refused, with the mend: divide them by their mean.

    Returns
    -------
    ndarray, shape (m,), in ``dtype``; None for None.
    """
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (m,):
        raise DataError(f"sample_weight must have one weight per example, shape ({m},); got {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise DataError("sample_weight must be finite and >= 0")
    total = float(weights.sum())
    if not total > 0:
        raise DataError("sample_weight sums to 0: at least one example must have a positive weight")
    low, high = weight_sums(dtype)
    if not low <= total <= high:
        raise DataError(
            f"sample_weight sums to {total:.3g}, outside what {np.dtype(dtype).name} training computes with "
            f"({low:.2g} to {high:.2g}); divide the weights by their mean (their scale only sets the data's "
            "weight against lam)"
        )
    return weights.astype(dtype)


def weight_sums(dtype) -> tuple[float, float]:
    """The least and the greatest sum of example weights that training in ``dtype`` takes."""
    info = np.finfo(dtype)
    return float(np.sqrt(np.float64(info.tiny))), float(np.sqrt(np.float64(info.max)))


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


def random_state_of(random_state: object) -> np.random.RandomState:
    """The estimator's ``random_state`` as scikit-learn takes it: None, an int or a
    ``numpy.random.RandomState``. A ``numpy.random.Generator``, which scikit-learn cannot
    draw from, is a ParameterError saying how to make an int seed of it."""
    from sklearn.utils import check_random_state

    if isinstance(random_state, np.random.Generator):
        raise ParameterError(
            "random_state must be None, an int or a numpy.random.RandomState, as scikit-learn takes it, not a "
            "numpy.random.Generator; give an int seed drawn from it, such as int(rng.integers(2**32))"
        )
    try:
        return check_random_state(random_state)
    except ValueError:
        shown = " ".join(repr(random_state).split())
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ParameterError(f"random_state must be None, an int or a numpy.random.RandomState, got {shown}") from None


def check_warm_shape(before: Network, now: Network, hidden: tuple[int, ...], going_on: str, afresh: str) -> None:
    """Going on from a fit (``going_on``: "warm_start", "partial_fit") needs a network of its
    layer sizes; else a ShapeError naming both and how to start afresh (``afresh``)."""
    if now.layer_sizes != before.layer_sizes:
        raise ShapeError(
            f"{going_on} goes on from the previous fit's {'-'.join(map(str, before.layer_sizes))} network, but "
            f"hidden_layer_sizes={tuple(hidden)!r} on {now.layer_sizes[0]} features make a "
            f"{'-'.join(map(str, now.layer_sizes))} one: {afresh} to start afresh with the new shape"
        )
