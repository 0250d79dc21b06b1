"""The objective J and its gradient, from the fast kernel's sums.

J = (1/M) sum_i w_i loss_i + lam/(2M) sum_l sum_{j, k>=1} theta_l[j, k]^2, with M the
number of examples (or their total weight); the bias columns are not regularised.

NumPy arrays go through the fast kernel; arrays of another array API library (PyTorch,
CuPy: :mod:`nnlearn.core.arrayapi`) through the reference backpropagation, computed by
their library on their device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from .arrayapi import namespace_of
from .backprop import cost_and_gradient as reference
from .kernels import data_term, loss_sum
from .network import Network

__all__ = ["regularization", "total_weight", "from_sums", "cost", "cost_and_gradient"]


def _sum_of_squares(thetas):
    xp = namespace_of(*thetas)
    if xp is np:
        return sum(float(np.sum(np.square(theta[:, 1:]))) for theta in thetas)
    return sum(float(xp.sum(theta[:, 1:] ** 2)) for theta in thetas)


def regularization(thetas: Sequence[np.ndarray], lam: float, m: float) -> tuple[float, list[np.ndarray]]:
    """The penalty lam/(2m) sum theta^2 over non-bias weights, and its gradient.

    Returns
    -------
    penalty : float
    grads : list of ndarray, shapes of ``thetas``; lam/m theta with column 0 zeroed
    """
    scale = lam / m
    grads = []
    for theta in thetas:
        grad = theta * scale
        grad[:, 0] = 0
        grads.append(grad)
    return 0.5 * scale * _sum_of_squares(thetas), grads


def total_weight(X: np.ndarray, sample_weight: ArrayLike | None = None) -> float:
    """m, the number of examples, or the sum of their weights when weighted."""
    if sample_weight is None:
        return X.shape[0]
    xp = namespace_of(sample_weight)
    return float(np.sum(sample_weight) if xp is np else xp.sum(sample_weight))


def cost(
    thetas: Sequence[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    lam: float = 0.0,
    sample_weight: np.ndarray | None = None,
    *,
    network: Network | None = None,
) -> float:
    """Regularised cost J(theta) by feedforward alone (no gradient).

    Parameters as for :func:`cost_and_gradient`; returns J, a float. Arrays of another
    library than NumPy get the reference's J (with its gradient, unused).
    """
    if namespace_of(X, Y, sample_weight, *thetas) is not np:
        return reference(thetas, X, Y, lam, sample_weight, network=network)[0]
    m = total_weight(X, sample_weight)
    return loss_sum(thetas, X, Y, sample_weight, network=network) / m + 0.5 * lam / m * _sum_of_squares(thetas)


def cost_and_gradient(
    thetas: Sequence[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    lam: float = 0.0,
    sample_weight: np.ndarray | None = None,
    *,
    network: Network | None = None,
) -> tuple[float, list[np.ndarray]]:
    """Regularised cost J and its gradient by backpropagation (the fast kernel).

    Parameters
    ----------
    thetas : list of ndarray, shapes (s_{l+1}, s_l + 1)
    X : ndarray, shape (m, n)
    Y : ndarray, shape (m, K), one-hot
    lam : float
        Regularisation strength lambda (bias columns are not regularised).
    sample_weight : ndarray of shape (m,), optional
        m becomes the sum of the weights.
    network : Network, optional
        Its activation and output (None: the course's sigmoid network).

    Returns
    -------
    J : float
    grads : list of ndarray, shapes of ``thetas``, in the dtype of the inputs

    Arrays of another array API library than NumPy (all of one) are computed by the
    reference backpropagation on their device, and the gradients come back as its arrays.
    """
    if namespace_of(X, Y, sample_weight, *thetas) is not np:
        return reference(thetas, X, Y, lam, sample_weight, network=network)
    loss, grads = data_term(thetas, X, Y, sample_weight, network=network)
    return from_sums(loss, grads, thetas, lam, total_weight(X, sample_weight))


def from_sums(
    loss_sum: float, grad_sums: list[np.ndarray], thetas: Sequence[np.ndarray], lam: float, m: float
) -> tuple[float, list[np.ndarray]]:
    """J and its gradient from the data term's sums over all m examples (or total weight).

    ``grad_sums`` (as :func:`~nnlearn.core.kernels.data_term` returns them, summed over
    shards) are divided by m and the penalty's gradient added, in place; returns
    ``(J, grads)``.
    """
    penalty, penalty_grads = regularization(thetas, lam, m)
    for grad, penalty_grad in zip(grad_sums, penalty_grads):
        grad /= m
        grad += penalty_grad
    return loss_sum / m + penalty, grad_sums
