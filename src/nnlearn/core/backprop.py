"""The reference: feedforward, cost and backpropagation, written to be read.

This is the notebook's algorithm for any depth and any registered activation and
output, in its names: ``a1`` = X, ``z2`` = [1, a1] Theta1', ``a2`` = g(z2), ...,
``delta3`` = dJ/dz3 at the output, ``delta2`` = delta3 Theta2(:, 2:) .* g'(z2), and
``Delta`` the accumulated gradients. Layer l of the notebook is ``a[l - 1]`` here.

It builds the bias columns and keeps every intermediate: no memory tricks. The fast
kernel (:mod:`nnlearn.core.kernels`) computes the same numbers and is tested against
this module for every activation, output, dtype and depth.

The objective, with example weights w_i (all 1 unweighted) and M = sum_i w_i, is

    J = (1/M) sum_i w_i loss(z_L[i], y_i) + lam/(2M) sum_l sum_{j, k>=1} Theta_l[j, k]^2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .activations import ACTIVATIONS, OUTPUTS
from .network import Network, layer_sizes_of

__all__ = ["feedforward", "cost_and_gradient"]


def _with_bias(a):
    """[1, a]: a column of ones before ``a``."""
    return np.hstack([np.ones((a.shape[0], 1), dtype=a.dtype), a])


def feedforward(
    thetas: Sequence[np.ndarray], X: np.ndarray, *, network: Network | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """Hidden activations [a1, a2, ..., a_{L-1}] (no bias columns) and the output logits z_L.

    ``network`` gives the activation (None: the course's sigmoid network).
    """
    g = ACTIVATIONS[(network or Network(layer_sizes_of(thetas))).activation]
    a = [X]
    for Theta in thetas[:-1]:
        z = _with_bias(a[-1]) @ Theta.T
        a.append(g.function(z))
    return a, _with_bias(a[-1]) @ thetas[-1].T


def cost_and_gradient(
    thetas: Sequence[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    lam: float = 0.0,
    sample_weight: np.ndarray | None = None,
    *,
    network: Network | None = None,
) -> tuple[float, list[np.ndarray]]:
    """J and its gradient by plain backpropagation: the reference the fast kernel must equal.

    Parameters
    ----------
    thetas : list of ndarray, shapes (s_{l+1}, s_l + 1)
    X : ndarray, shape (m, s_1)
    Y : ndarray, shape (m, K), one-hot
    lam : float
    sample_weight : ndarray, shape (m,), optional
    network : Network, optional
        Its activation and output (None: sigmoid and sigmoid, the course's).

    Returns
    -------
    J : float
    grads : list of ndarray, shapes of ``thetas``
    """
    network = network or Network(layer_sizes_of(thetas))
    g, h = ACTIVATIONS[network.activation], OUTPUTS[network.output]
    w = np.ones(X.shape[0], dtype=X.dtype) if sample_weight is None else sample_weight
    M = np.sum(w)
    a, zL = feedforward(thetas, X, network=network)
    penalty = sum(np.sum(Theta[:, 1:] ** 2) for Theta in thetas)
    J = w @ h.loss(zL, Y) / M + lam / (2 * M) * penalty
    delta = h.delta(zL, Y) * w[:, None]  # the output layer's delta, "delta3" in the notebook
    Delta: list[Any] = [None] * len(thetas)  # filled from the output layer down
    for l in reversed(range(len(thetas))):
        Delta[l] = delta.T @ _with_bias(a[l])
        if l > 0:
            delta = (delta @ thetas[l][:, 1:]) * g.derivative(a[l])
    grads = []
    for D, Theta in zip(Delta, thetas):
        grad = D / M
        grad[:, 1:] += lam / M * Theta[:, 1:]
        grads.append(grad)
    return float(J), grads
