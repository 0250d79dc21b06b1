"""Gradient checking: backpropagation against central differences.

The course checks its gradient on a tiny network (3 inputs, 5 hidden units, 3 labels,
m = 5) whose weights and data come from :func:`nnlearn.core.debug_matrix`; a correct
implementation agrees to about 1e-11. :func:`check_directional` does the same on a full
size network in a handful of cost evaluations, along random directions.
"""

from __future__ import annotations

import numpy as np

from .core import (
    cost,
    cost_and_gradient,
    debug_matrix,
    init_debug,
    layer_sizes_of,
    pack,
    unpack,
)

__all__ = ["numerical_gradient", "debug_problem", "check_gradients", "check_directional"]

EPSILON = 1e-4


def numerical_gradient(fun, theta, epsilon=EPSILON):
    """Central differences (J(theta + e_i eps) - J(theta - e_i eps)) / (2 eps) for every i.

    Parameters
    ----------
    fun : callable
        Maps a weight vector of shape (p,) to the scalar J.
    theta : ndarray, shape (p,)
    """
    theta = np.array(theta, dtype=np.float64)
    numgrad = np.empty_like(theta)
    for i in range(theta.size):
        saved = theta[i]
        theta[i] = saved + epsilon
        loss_plus = fun(theta)
        theta[i] = saved - epsilon
        loss_minus = fun(theta)
        theta[i] = saved
        numgrad[i] = (loss_plus - loss_minus) / (2 * epsilon)
    return numgrad


def debug_problem(layer_sizes=(3, 5, 3), m=5):
    """The course's checkNNGradients setup: debug weights, X = debug_matrix((m, n)),
    y = 1 + mod(1..m, K) one-hot encoded.

    Returns
    -------
    thetas : list of ndarray
    X : ndarray, shape (m, n)
    Y : ndarray, shape (m, K)
    """
    n, K = layer_sizes[0], layer_sizes[-1]
    X = debug_matrix((m, n))
    y = 1 + np.arange(1, m + 1) % K
    Y = (y[:, None] == np.arange(1, K + 1)).astype(np.float64)
    return init_debug(layer_sizes), X, Y


def relative_difference(a, b):
    """norm(a - b) / norm(a + b), the course's measure of agreement."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(a + b))


def check_gradients(layer_sizes=(3, 5, 3), lam=0.0, m=5, return_columns=False):
    """Compare backpropagation with :func:`numerical_gradient` on the debug network.

    Returns
    -------
    difference : float
        norm(numgrad - grad) / norm(numgrad + grad); below 1e-9 when backpropagation is right.
    numgrad, grad : ndarray, shape (p,)
        Only with ``return_columns=True``: the two columns the course prints side by side.
    """
    thetas, X, Y = debug_problem(layer_sizes, m)
    _, grads = cost_and_gradient(thetas, X, Y, lam)
    grad = pack(grads)
    numgrad = numerical_gradient(lambda v: cost(unpack(v, layer_sizes), X, Y, lam), pack(thetas))
    difference = relative_difference(numgrad, grad)
    return (difference, numgrad, grad) if return_columns else difference


def check_directional(thetas, X, Y, lam=0.0, n_directions=8, rng=0, epsilon=EPSILON):
    """Gradient check along random unit directions, for networks of any size.

    The directional derivative grad . d is compared with the central difference of J
    along d, for ``n_directions`` random directions: 2 cost evaluations each, so the
    full 400-25-10 network on 5000 examples is checked in well under a second.

    Returns
    -------
    difference : float
        Relative difference of the two vectors of directional derivatives.
    """
    layer_sizes = layer_sizes_of(thetas)
    theta = pack(thetas).astype(np.float64)
    _, grads = cost_and_gradient(thetas, X, Y, lam)
    grad = pack(grads)
    rng = np.random.default_rng(rng)
    analytic, numeric = [], []
    for _ in range(n_directions):
        d = rng.standard_normal(theta.size)
        d /= np.linalg.norm(d)
        J_plus = cost(unpack(theta + epsilon * d, layer_sizes), X, Y, lam)
        J_minus = cost(unpack(theta - epsilon * d, layer_sizes), X, Y, lam)
        numeric.append((J_plus - J_minus) / (2 * epsilon))
        analytic.append(grad @ d)
    return relative_difference(np.array(numeric), np.array(analytic))
