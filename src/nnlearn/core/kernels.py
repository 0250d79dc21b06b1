"""The fast kernel: the reference's numbers (:mod:`nnlearn.core.backprop`) with less work.

What it does differently, each choice measured in ``docs/benchmarks.md``:

* no bias column: ``a @ theta[:, 1:].T + theta[:, 0]`` is ``[1, a] @ theta.T`` without
  copying ``a``;
* every step in place, on arrays it owns, with no (m, s) temporaries where one can be
  avoided (the sigmoid as 0.5 tanh(z/2) + 0.5, the loss summed in parts);
* float64 hidden layers in Fortran order (examples down contiguous columns), float32 ones
  in C order: one fixed choice per dtype, so the same inputs always give the same bits;
* the data term unnormalised (:func:`data_term`), so that sums over shards of the
  examples can be added up (:func:`nnlearn.core.objective.from_sums`).

A kind's in-place forms are its registry entry's ``kernel``
(:mod:`nnlearn.core.activations`); a kind without them runs through its entry's NumPy
forms, as the reference does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .activations import ACTIVATIONS, OUTPUTS
from .network import Network, layer_sizes_of

__all__ = ["data_term", "forward", "output_preactivation", "loss_sum", "loss_sum_and_logits"]


def _kinds(thetas, network):
    network = network or Network(layer_sizes_of(thetas))
    return ACTIVATIONS[network.activation], OUTPUTS[network.output]


# Which way round the hidden layers' products run. The arrays are (m, s) either way;
# float64 hidden activations are kept in Fortran order, computed as (theta a')'; in
# float32 a theta' was as fast or faster (docs/benchmarks.md).
_COLUMN_MAJOR_HIDDEN = (np.dtype(np.float64),)


def _affine(a, theta, matmul=np.matmul):
    """z = [1, a] @ theta.T without building the bias column; shape (m, s_{l+1}), C order."""
    z = matmul(a, theta[:, 1:].T)
    z += theta[:, 0]
    return z


def _hidden_affine(a, theta, column_major, matmul=np.matmul):
    """As :func:`_affine`, for a hidden layer: in Fortran order when ``column_major``."""
    if not column_major:
        return _affine(a, theta, matmul)
    z = matmul(theta[:, 1:], a.T)  # (s_{l+1}, m), C order: z.T is (m, s_{l+1}) in F order
    z += theta[:, :1]
    return z.T


def _product_like(a, b, like):
    """a @ b, in the memory order of ``like`` (an array of the same shape)."""
    if like.flags.f_contiguous and not like.flags.c_contiguous:
        return (b.T @ a.T).T
    return a @ b


def _activate(g, z):
    """g(z), over ``z`` where the kind has an in-place form."""
    return g.kernel.activate(z) if g.kernel is not None else g.function(z)


def _backward(g, delta, theta, a):
    """delta_l from delta_{l+1}, over ``a`` where the kind has an in-place form."""
    if g.kernel is None:
        return _product_like(delta, theta[:, 1:], a) * g.derivative(a)
    weights = np.negative(theta[:, 1:]) if g.kernel.negated else theta[:, 1:]
    return g.kernel.backward(_product_like(delta, weights, a), a)


def _feedforward(thetas, X, g, matmul=None):
    """Activations a_1 = X, ..., a_{L-1} (no bias columns) and the output pre-activation z_L.

    ``matmul`` (default ``@``) computes the product with ``X``, the first layer's.
    """
    column_major = X.dtype in _COLUMN_MAJOR_HIDDEN  # read at each call: a test flips it
    first = matmul or np.matmul
    activations = [X]
    for l, theta in enumerate(thetas[:-1]):
        z = _hidden_affine(activations[-1], theta, column_major, first if l == 0 else np.matmul)
        activations.append(_activate(g, z))
    return activations, _affine(activations[-1], thetas[-1], first if len(thetas) == 1 else np.matmul)


def forward(thetas: Sequence[np.ndarray], X: np.ndarray, *, network: Network | None = None) -> list[np.ndarray]:
    """Feedforward pass.

    Parameters
    ----------
    thetas : list of ndarray, shapes (s_{l+1}, s_l + 1)
    X : ndarray, shape (m, s_1)
    network : Network, optional
        Its activation and output (None: the course's sigmoid network).

    Returns
    -------
    activations : list of ndarray
        a_1 = X, a_2, ..., a_L, each of shape (m, s_l) without a bias column;
        a_L = h_theta(X) are the output units' activations.
    """
    g, h = _kinds(thetas, network)
    activations, z = _feedforward(thetas, X, g)
    activations.append(h.kernel.function(z) if h.kernel is not None and h.kernel.function else h.function(z))
    return activations


def output_preactivation(thetas: Sequence[np.ndarray], X: np.ndarray, *, network: Network | None = None) -> np.ndarray:
    """z_L, the output units' weighted inputs (logits), shape (m, K).

    Ranking or normalising outputs from z_L stays exact where h(z_L) rounds to 0 or 1.
    """
    return _feedforward(thetas, X, _kinds(thetas, network)[0])[1]


def _loss_sum(h, z, Y, sample_weight):
    """sum_i w_i loss_i from the logits, the kernel's own way where the kind has one."""
    if h.kernel is not None and h.kernel.loss_sum is not None:
        return h.kernel.loss_sum(z, Y, sample_weight)
    terms = h.loss(z, Y)
    return terms.sum() if sample_weight is None else terms @ sample_weight


def _loss_and_delta(h, z, Y, sample_weight):
    """The loss summed over examples and the output delta (unweighted), consuming ``z``."""
    if h.kernel is not None:
        return h.kernel.loss_and_delta(z, Y, sample_weight)
    return _loss_sum(h, z, Y, sample_weight), h.delta(z, Y)


def loss_sum(
    thetas: Sequence[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    network: Network | None = None,
) -> float:
    """sum_i w_i loss_i by feedforward alone: the data term of J without its gradient."""
    return loss_sum_and_logits(thetas, X, Y, sample_weight, network=network)[0]


def loss_sum_and_logits(
    thetas: Sequence[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    network: Network | None = None,
) -> tuple[float, np.ndarray]:
    """sum_i w_i loss_i and z_L, from one feedforward: what a held-out part is scored by."""
    g, h = _kinds(thetas, network)
    _, z = _feedforward(thetas, X, g)
    return float(_loss_sum(h, z, Y, sample_weight)), z


def data_term(
    thetas: Sequence[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    network: Network | None = None,
    matmul: Any = None,
) -> tuple[float, list[np.ndarray]]:
    """Unnormalised data part of the cost and its gradient, summed over the given examples.

    Summing the results over disjoint slices of the examples and dividing by the total m
    (or total sample weight) gives the data part of the cost and its gradient.

    Parameters
    ----------
    thetas : list of ndarray, shapes (s_{l+1}, s_l + 1)
    X : ndarray, shape (m, n)
    Y : ndarray, shape (m, K)
    sample_weight : ndarray of shape (m,), optional
        Weight of each example; a weight of 2 counts like the row given twice.
    network : Network, optional
        Its activation and output (None: the course's sigmoid network).
    matmul : callable, optional
        ``matmul(a, b) -> a @ b`` for the two products with ``X`` (the first layer's, and
        its gradient's): another BLAS library than NumPy's (:mod:`nnlearn.compute`).

    Returns
    -------
    loss_sum : float
        sum_i w_i loss_i.
    grad_sums : list of ndarray, shapes of ``thetas``
        sum_i w_i dloss_i / dtheta, before division by m and without regularisation.
    """
    g, h = _kinds(thetas, network)
    activations, z = _feedforward(thetas, X, g, matmul)
    loss, delta = _loss_and_delta(h, z, Y, sample_weight)
    if sample_weight is not None:
        delta *= sample_weight[:, None]
    # The bias gradients are column sums of delta; a matrix-vector product with ones is
    # faster than delta.sum(axis=0) walking a C-ordered (m, s) array.
    ones = np.ones(X.shape[0], dtype=delta.dtype)
    grads: list[Any] = [None] * len(thetas)  # filled from the output layer down
    for l in range(len(thetas) - 1, -1, -1):
        a = activations[l]
        grad = np.empty_like(thetas[l])
        grad[:, 0] = ones @ delta
        grad[:, 1:] = delta.T @ a if l > 0 or matmul is None else matmul(delta.T, a)
        grads[l] = grad
        if l > 0:
            delta = _backward(g, delta, thetas[l], a)
    return float(loss), grads
