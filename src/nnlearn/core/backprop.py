"""The reference: feedforward, cost and backpropagation, written to be read.

This is the notebook's algorithm for any depth and any registered activation and
output, in its names: ``a1`` = X, ``z2`` = [1, a1] Theta1', ``a2`` = g(z2), ...,
``delta3`` = dJ/dz3 at the output, ``delta2`` = delta3 Theta2(:, 2:) .* g'(z2), and
``Delta`` the accumulated gradients. Layer l of the notebook is ``a[l - 1]`` here.

It builds the bias columns and keeps every intermediate: no memory tricks. The fast
kernel (:mod:`nnlearn.core.kernels`) computes the same numbers and is tested against
this module for every activation, output, dtype and depth. It calls the registry entries'
array API forms (:mod:`nnlearn.core.activations`) with the arrays' namespace, so PyTorch
or CuPy arrays are computed by their library on their device
(:mod:`nnlearn.core.arrayapi`), NumPy arrays by NumPy, as always.

The objective, with example weights w_i (all 1 unweighted) and M = sum_i w_i, is

    J = (1/M) sum_i w_i loss(z_L[i], y_i) + lam/(2M) sum_l sum_{j, k>=1} Theta_l[j, k]^2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .activations import ACTIVATIONS, OUTPUTS, Activation, Output
from .arrayapi import namespace_of
from .network import Network, layer_sizes_of

__all__ = ["feedforward", "cost_and_gradient", "data_sums"]


def _with_bias(xp, a):
    """[1, a]: a column of ones before ``a``."""
    if xp is np:
        return np.hstack([np.ones((a.shape[0], 1), dtype=a.dtype), a])
    return xp.concat([xp.ones((a.shape[0], 1), dtype=a.dtype, device=a.device), a], axis=1)


def _kinds(xp, network) -> tuple[Activation, Output]:
    """The network's registry entries; for arrays other than NumPy's, only those with array API forms."""
    kinds = ACTIVATIONS[network.activation], OUTPUTS[network.output]
    for kind, what in zip(kinds, ("activation", "output")):
        if xp is not np and not kind.array_api:
            raise TypeError(f"the {what} {kind.name!r} has no array API form; give NumPy arrays for it")
    return kinds


def _feedforward(xp, thetas, X, g):
    a = [X]
    for Theta in thetas[:-1]:
        z = _with_bias(xp, a[-1]) @ Theta.T
        a.append(g.xp_function(xp, z))
    return a, _with_bias(xp, a[-1]) @ thetas[-1].T


def feedforward(thetas: Sequence[Any], X: Any, *, network: Network | None = None) -> tuple[list[Any], Any]:
    """Hidden activations [a1, a2, ..., a_{L-1}] (no bias columns) and the output logits z_L.

    ``network`` gives the activation (None: the course's sigmoid network). Arrays of any
    array API library, all of one (:mod:`nnlearn.core.arrayapi`).
    """
    xp = namespace_of(X, *thetas)
    network = network or Network(layer_sizes_of(thetas))
    return _feedforward(xp, thetas, X, _kinds(xp, network)[0])


def _sums(xp, thetas, X, Y, sample_weight, network) -> tuple[Any, Any, list[Any]]:
    """(w, sum_i w_i loss_i, [Delta_l]): the example weights and the unnormalised sums."""
    g, h = _kinds(xp, network)
    if sample_weight is not None:
        w = sample_weight
    elif xp is np:
        w = np.ones(X.shape[0], dtype=X.dtype)
    else:
        w = xp.ones(X.shape[0], dtype=X.dtype, device=X.device)
    a, zL = _feedforward(xp, thetas, X, g)
    loss_sum = w @ h.xp_loss(xp, zL, Y)
    delta = h.xp_delta(xp, zL, Y) * w[:, None]  # the output layer's delta, "delta3" in the notebook
    Delta: list[Any] = [None] * len(thetas)  # filled from the output layer down
    for l in reversed(range(len(thetas))):
        Delta[l] = delta.T @ _with_bias(xp, a[l])
        if l > 0:
            delta = (delta @ thetas[l][:, 1:]) * g.xp_derivative(xp, a[l])
    return w, loss_sum, Delta


def data_sums(
    thetas: Sequence[Any],
    X: Any,
    Y: Any,
    sample_weight: Any | None = None,
    *,
    network: Network | None = None,
) -> tuple[Any, list[Any]]:
    """sum_i w_i loss_i and the gradients' sums [Delta_l], unnormalised, by plain backpropagation.

    What :func:`nnlearn.core.kernels.data_term` returns, computed by the reference in the
    arrays' own library and device: a 0-d array and arrays of the shapes of ``thetas``.
    """
    xp = namespace_of(X, Y, sample_weight, *thetas)
    _, loss_sum, Delta = _sums(xp, thetas, X, Y, sample_weight, network or Network(layer_sizes_of(thetas)))
    return loss_sum, Delta


def cost_and_gradient(
    thetas: Sequence[Any],
    X: Any,
    Y: Any,
    lam: float = 0.0,
    sample_weight: Any | None = None,
    *,
    network: Network | None = None,
) -> tuple[float, list[Any]]:
    """J and its gradient by plain backpropagation: the reference the fast kernel must equal.

    Parameters
    ----------
    thetas : list of arrays, shapes (s_{l+1}, s_l + 1)
    X : array, shape (m, s_1)
    Y : array, shape (m, K), one-hot
    lam : float
    sample_weight : array, shape (m,), optional
    network : Network, optional
        Its activation and output (None: sigmoid and sigmoid, the course's).

    NumPy arrays, or all the arrays of one other array API library (PyTorch, CuPy), which
    computes on its device: the gradients come back as its arrays.

    Returns
    -------
    J : float
    grads : list of arrays, shapes of ``thetas``
    """
    xp = namespace_of(X, Y, sample_weight, *thetas)
    network = network or Network(layer_sizes_of(thetas))
    w, loss_sum, Delta = _sums(xp, thetas, X, Y, sample_weight, network)
    M = xp.sum(w)
    penalty = sum(xp.sum(Theta[:, 1:] ** 2) for Theta in thetas)
    J = loss_sum / M + lam / (2 * M) * penalty
    grads = []
    for D, Theta in zip(Delta, thetas):
        grad = D / M
        grad[:, 1:] += lam / M * Theta[:, 1:]
        grads.append(grad)
    return float(J), grads
