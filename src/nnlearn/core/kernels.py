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

The built-in activations and outputs have special forms here (:data:`_HIDDEN`,
:data:`_OUTPUT`); any other registered kind runs through its registry entry, as the
reference does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import expit

from .activations import ACTIVATIONS, OUTPUTS
from .network import Network, layer_sizes_of

__all__ = ["data_term", "forward", "output_preactivation", "loss_sum"]


def _kinds(thetas, network):
    network = network or Network(layer_sizes_of(thetas))
    return ACTIVATIONS[network.activation], OUTPUTS[network.output]


# Which way round the hidden layers' products run. The arrays are (m, s) either way;
# float64 hidden activations are kept in Fortran order, computed as (theta a')'; in
# float32 a theta' was as fast or faster (docs/benchmarks.md).
_COLUMN_MAJOR_HIDDEN = (np.dtype(np.float64),)


def _affine(a, theta):
    """z = [1, a] @ theta.T without building the bias column; shape (m, s_{l+1}), C order."""
    z = a @ theta[:, 1:].T
    z += theta[:, 0]
    return z


def _hidden_affine(a, theta, column_major):
    """As :func:`_affine`, for a hidden layer: in Fortran order when ``column_major``."""
    if not column_major:
        return _affine(a, theta)
    z = theta[:, 1:] @ a.T  # (s_{l+1}, m), C order: z.T is (m, s_{l+1}) in F order
    z += theta[:, :1]
    return z.T


def _product_like(a, b, like):
    """a @ b, in the memory order of ``like`` (an array of the same shape)."""
    if like.flags.f_contiguous and not like.flags.c_contiguous:
        return (b.T @ a.T).T
    return a @ b


def _sigmoid_in_place(z):
    """g(z) written over ``z``, as 0.5 tanh(z/2) + 0.5.

    The identity is exact in real numbers; in floating point it agrees with ``expit`` to
    an ulp of 1 (absolute), never overflows, and is several times faster than ``expit``
    because NumPy vectorises ``tanh``. Use it where absolute accuracy is what counts:
    activations feeding a matrix product and a_L - y; :func:`forward` keeps ``expit``
    for the output probabilities.
    """
    z *= 0.5
    np.tanh(z, out=z)
    z *= 0.5
    z += 0.5
    return z


def _back_sigmoid(delta, theta, a):
    """delta_l = (delta_{l+1} theta_l[:, 1:]) .* a_l (1 - a_l), overwriting ``a``.

    Written as (delta_{l+1} (-theta_l[:, 1:])) .* a_l .* (a_l - 1) so that every step
    is in place: the signs cancel exactly, and no (m, s_l) temporary is made.
    """
    delta = _product_like(delta, np.negative(theta[:, 1:]), a)
    delta *= a
    a -= 1
    delta *= a
    return delta


def _back_tanh(delta, theta, a):
    """delta_l = (delta_{l+1} theta_l[:, 1:]) .* (1 - a_l^2), as (delta (-theta)) .* (a^2 - 1), over ``a``."""
    delta = _product_like(delta, np.negative(theta[:, 1:]), a)
    a *= a
    a -= 1
    delta *= a
    return delta


def _back_relu(delta, theta, a):
    """delta_l = (delta_{l+1} theta_l[:, 1:]) .* [a_l > 0]; sign(a) is that indicator for a >= 0."""
    delta = _product_like(delta, theta[:, 1:], a)
    delta *= np.sign(a, out=a)
    return delta


def _relu_in_place(z):
    return np.maximum(z, 0, out=z)


def _tanh_in_place(z):
    return np.tanh(z, out=z)


#: Special forms of the built-in activations: (g over z in place, backward step over a).
_HIDDEN = {
    ACTIVATIONS["sigmoid"]: (_sigmoid_in_place, _back_sigmoid),
    ACTIVATIONS["tanh"]: (_tanh_in_place, _back_tanh),
    ACTIVATIONS["relu"]: (_relu_in_place, _back_relu),
}


def _activate(g, z):
    special = _HIDDEN.get(g)
    return special[0](z) if special else g.function(z)


def _backward(g, delta, theta, a):
    special = _HIDDEN.get(g)
    if special:
        return special[1](delta, theta, a)
    return _product_like(delta, theta[:, 1:], a) * g.derivative(a)


def _feedforward(thetas, X, g):
    """Activations a_1 = X, ..., a_{L-1} (no bias columns) and the output pre-activation z_L."""
    column_major = X.dtype in _COLUMN_MAJOR_HIDDEN  # read at each call: a test flips it
    activations = [X]
    for theta in thetas[:-1]:
        activations.append(_activate(g, _hidden_affine(activations[-1], theta, column_major)))
    return activations, _affine(activations[-1], thetas[-1])


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
    activations.append(expit(z, out=z) if h is OUTPUTS["sigmoid"] else h.function(z))
    return activations


def output_preactivation(thetas: Sequence[np.ndarray], X: np.ndarray, *, network: Network | None = None) -> np.ndarray:
    """z_L, the output units' weighted inputs (logits), shape (m, K).

    Ranking or normalising outputs from z_L stays exact where h(z_L) rounds to 0 or 1.
    """
    return _feedforward(thetas, X, _kinds(thetas, network)[0])[1]


def _log1p_exp_minus_abs(z):
    """log(1 + exp(-|z|)), a new array: the part of softplus that needs care."""
    t = np.abs(z)
    np.negative(t, out=t)
    np.exp(t, out=t)
    return np.log1p(t, out=t)


def _sigmoid_loss(z, Y, sample_weight):
    """sum_i w_i sum_k [softplus(z_ik) - y_ik z_ik], without per-example sums when w = 1.

    -y log g(z) - (1 - y) log(1 - g(z)) equals softplus(z) - y z, and softplus(z) =
    max(z, 0) + log1p(exp(-|z|)) is finite for any finite z. Unweighted, the three parts
    are summed separately: no (m, K) temporary for ``Y * z`` and none for the total.
    """
    if sample_weight is not None:
        softplus = _log1p_exp_minus_abs(z)
        softplus += np.maximum(z, 0)
        softplus -= Y * z
        return softplus.sum(axis=1) @ sample_weight
    return _log1p_exp_minus_abs(z).sum() + np.maximum(z, 0).sum() - np.vdot(Y, z)


def _sigmoid_delta(z, Y):
    """a_L - y, over ``z``."""
    delta = _sigmoid_in_place(z)
    delta -= Y
    return delta


def _softmax_loss_and_delta(z, Y, sample_weight):
    """sum_i w_i [logsumexp(z_i) - y_i . z_i] and delta = softmax(z) - Y, over ``z``."""
    yz = np.einsum("ij,ij->i", Y, z) if sample_weight is not None else np.vdot(Y, z)
    zmax = z.max(axis=1, keepdims=True)
    z -= zmax
    np.exp(z, out=z)
    total = z.sum(axis=1, keepdims=True)
    lse = np.log(total)
    lse += zmax
    z /= total
    z -= Y
    if sample_weight is not None:
        return (lse[:, 0] - yz) @ sample_weight, z
    return lse.sum() - yz, z


def _loss_and_delta(h, z, Y, sample_weight):
    """The loss summed over examples and the output delta (unweighted), consuming ``z``."""
    if h is OUTPUTS["sigmoid"]:
        loss = _sigmoid_loss(z, Y, sample_weight)
        return loss, _sigmoid_delta(z, Y)
    if h is OUTPUTS["softmax"]:
        return _softmax_loss_and_delta(z, Y, sample_weight)
    terms = h.loss(z, Y)
    return (terms.sum() if sample_weight is None else terms @ sample_weight), h.delta(z, Y)


def loss_sum(
    thetas: Sequence[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    network: Network | None = None,
) -> float:
    """sum_i w_i loss_i by feedforward alone: the data term of J without its gradient."""
    g, h = _kinds(thetas, network)
    _, z = _feedforward(thetas, X, g)
    if h is OUTPUTS["sigmoid"]:
        return float(_sigmoid_loss(z, Y, sample_weight))
    terms = h.loss(z, Y)
    return float(terms.sum() if sample_weight is None else terms @ sample_weight)


def data_term(
    thetas: Sequence[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    network: Network | None = None,
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

    Returns
    -------
    loss_sum : float
        sum_i w_i loss_i.
    grad_sums : list of ndarray, shapes of ``thetas``
        sum_i w_i dloss_i / dtheta, before division by m and without regularisation.
    """
    g, h = _kinds(thetas, network)
    activations, z = _feedforward(thetas, X, g)
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
        grad[:, 1:] = delta.T @ a
        grads[l] = grad
        if l > 0:
            delta = _backward(g, delta, thetas[l], a)
    return float(loss), grads
