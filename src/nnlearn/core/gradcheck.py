"""Gradient checking: backpropagation against central differences.

The course checks its gradient on a tiny network (3 inputs, 5 hidden units, 3 labels,
m = 5) whose weights and data come from :func:`nnlearn.core.debug_matrix`; a correct
implementation agrees to about 1e-11. :func:`check_directional` does the same on a full
size network in a handful of cost evaluations, along random directions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike

from .network import Network, NetworkLike, debug_matrix, init_debug, layer_sizes_of, pack, unpack
from .objective import cost, cost_and_gradient

__all__ = ["numerical_gradient", "debug_problem", "check_gradients", "check_directional"]

EPSILON = 1e-4


def numerical_gradient(fun: Callable[[np.ndarray], float], theta: ArrayLike, epsilon: float = EPSILON) -> np.ndarray:
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


def debug_problem(network: NetworkLike = (3, 5, 3), m: int = 5) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The course's checkNNGradients setup: debug weights, X = debug_matrix((m, n)),
    y = 1 + mod(1..m, K) one-hot encoded; ``network`` is a Network or its layer sizes.

    Returns
    -------
    thetas : list of ndarray
    X : ndarray, shape (m, n)
    Y : ndarray, shape (m, K)
    """
    network = Network.of(network)
    n, K = network.layer_sizes[0], network.layer_sizes[-1]
    X = debug_matrix((m, n))
    y = 1 + np.arange(1, m + 1) % K
    Y = (y[:, None] == np.arange(1, K + 1)).astype(np.float64)
    return init_debug(network), X, Y


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """norm(a - b) / norm(a + b), the course's measure of agreement."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(a + b))


@overload
def check_gradients(
    network: NetworkLike = ..., lam: float = ..., m: int = ..., return_columns: Literal[False] = ...
) -> float: ...
@overload
def check_gradients(
    network: NetworkLike = ..., lam: float = ..., m: int = ..., *, return_columns: Literal[True]
) -> tuple[float, np.ndarray, np.ndarray]: ...
@overload
def check_gradients(
    network: NetworkLike = ..., lam: float = ..., m: int = ..., return_columns: bool = ...
) -> float | tuple[float, np.ndarray, np.ndarray]: ...
def check_gradients(
    network: NetworkLike = (3, 5, 3), lam: float = 0.0, m: int = 5, return_columns: bool = False
) -> float | tuple[float, np.ndarray, np.ndarray]:
    """Compare backpropagation with :func:`numerical_gradient` on the debug network.

    ``network`` is a :class:`~nnlearn.core.Network` (any activation and output) or layer
    sizes (the course's sigmoid network); the fast kernel's gradient is checked.

    Returns
    -------
    difference : float
        norm(numgrad - grad) / norm(numgrad + grad); below 1e-9 when backpropagation is right.
    numgrad, grad : ndarray, shape (p,)
        Only with ``return_columns=True``: the two columns the course prints side by side.
    """
    network = Network.of(network)
    thetas, X, Y = debug_problem(network, m)
    _, grads = cost_and_gradient(thetas, X, Y, lam, network=network)
    grad = pack(grads)
    numgrad = numerical_gradient(lambda v: cost(unpack(v, network), X, Y, lam, network=network), pack(thetas))
    difference = relative_difference(numgrad, grad)
    return (difference, numgrad, grad) if return_columns else difference


def check_directional(
    thetas: Sequence[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    lam: float = 0.0,
    n_directions: int = 8,
    rng: int | np.random.Generator | None = 0,
    epsilon: float = EPSILON,
    *,
    network: Network | None = None,
) -> float:
    """Gradient check along random unit directions, for networks of any size.

    The directional derivative grad . d is compared with the central difference of J
    along d, for ``n_directions`` random directions: 2 cost evaluations each, so the
    full 400-25-10 network on 5000 examples is checked in well under a second.

    Returns
    -------
    difference : float
        Relative difference of the two vectors of directional derivatives.
    """
    network = network or Network(layer_sizes_of(thetas))
    theta = pack(thetas).astype(np.float64)
    _, grads = cost_and_gradient(thetas, X, Y, lam, network=network)
    grad = pack(grads)
    rng = np.random.default_rng(rng)
    analytic, numeric = [], []
    for _ in range(n_directions):
        d = rng.standard_normal(theta.size)
        d /= np.linalg.norm(d)
        J_plus = cost(unpack(theta + epsilon * d, network), X, Y, lam, network=network)
        J_minus = cost(unpack(theta - epsilon * d, network), X, Y, lam, network=network)
        numeric.append((J_plus - J_minus) / (2 * epsilon))
        analytic.append(grad @ d)
    return relative_difference(np.array(numeric), np.array(analytic))
