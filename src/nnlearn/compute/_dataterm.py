"""What the optimisers minimise: J and its gradient over flat weight vectors.

The data part of J is a sum over examples, and where the examples live is a *data term*:
any object with the :class:`DataTerm` interface. Today's is
:class:`nnlearn.compute._threads.ShardedDataTerm` (this machine's cores); a cluster or another
array backend is one more module with the same interface. :func:`full_objective` turns a
data term into ``fun(x) -> (J, grad)``; the optimisers and :func:`nnlearn.train` never
know which data term they got.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from ..core import Network, NetworkLike, data_term, from_sums, pack, regularization, total_weight, unpack
from ..core.kernels import loss_sum_and_logits

__all__ = ["DataTerm", "Objective", "full_objective", "batch_objective", "held_out"]

#: ``fun(x) -> (J, grad)`` over flat float64 weight vectors.
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


class DataTerm(Protocol):
    """The examples of a training run, wherever they live.

    Attributes
    ----------
    network : Network
        The network whose cost it computes.
    m : float
        The number of examples, or their total weight.
    dtype : numpy.dtype
        The precision it computes in.
    """

    network: Network
    m: float
    dtype: np.dtype

    def __call__(self, thetas: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        """Unnormalised sums over all its examples: ``(sum_i w_i loss_i, [sum_i w_i dloss_i/dtheta_l])``,
        as :func:`nnlearn.core.data_term` returns them for one slice."""
        ...


def full_objective(term: DataTerm, lam: float) -> Objective:
    """``fun(x) -> (J, grad)``: the regularised cost over all of ``term``'s examples.

    ``x`` is a flat float64 vector; the work is done in the term's dtype and the gradient
    comes back as float64.
    """
    network, dtype = term.network, term.dtype

    def objective(x):
        thetas = unpack(x.astype(dtype, copy=False), network)
        J, grads = from_sums(*term(thetas), thetas, lam, term.m)
        return J, pack(grads).astype(np.float64, copy=False)

    return objective


def batch_objective(X, Y, lam, network: NetworkLike, sample_weight=None, blas: str = "numpy"):
    """``fun(x, rows) -> (J_B, grad)``: a mini-batch's share of the full objective.

    J_B = m/(b M) sum_{i in rows} w_i l_i + lam/(2M) sum theta^2 with b = len(rows) and
    M = sum of all the weights (m when unweighted): the batch's mean loss, scaled so that
    its expectation over random batches is the full data term, plus the full penalty
    (see :mod:`nnlearn.optim._minibatch`). Computes in X's dtype, returns a float64 gradient;
    ``blas`` is the library of the products with the batch's rows (:mod:`nnlearn.compute._products`).
    """
    from ._products import products

    matmul = products(blas)
    network = Network.of(network)
    dtype, m = X.dtype, X.shape[0]
    total = total_weight(X, sample_weight)

    def objective(x, rows):
        thetas = unpack(x.astype(dtype, copy=False), network)
        weights = None if sample_weight is None else sample_weight[rows]
        loss_sum, grads = data_term(thetas, X[rows], Y[rows], weights, network=network, matmul=matmul)
        penalty, penalty_grads = regularization(thetas, lam, total)
        scale = m / (rows.size * total)
        for grad, penalty_grad in zip(grads, penalty_grads):
            grad *= scale
            grad += penalty_grad
        return loss_sum * scale + penalty, pack(grads).astype(np.float64, copy=False)

    return objective


def held_out(X, Y, network: Network, sample_weight=None):
    """``measure(x) -> (loss, accuracy)`` on a held-out part: its (weighted) mean loss, without
    the penalty, and the (weighted) fraction of its rows whose largest logit is ``Y``'s one
    (ties to the first, as ``predict`` has them)."""
    labels = np.argmax(Y, axis=1)
    total = total_weight(X, sample_weight)

    def measure(x):
        thetas = unpack(x.astype(X.dtype, copy=False), network)
        loss, z = loss_sum_and_logits(thetas, X, Y, sample_weight, network=network)
        return loss / total, float(np.average(np.argmax(z, axis=1) == labels, weights=sample_weight))

    return measure
