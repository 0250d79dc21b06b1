"""The network's mathematics: pure functions on NumPy arrays.

Conventions are the course notebook's, generalised to any number of layers:

* ``layer_sizes`` = (s_1, ..., s_L): input units, hidden units per layer, output units K.
* ``thetas`` is a list of L - 1 weight matrices; ``theta`` for layer l has shape
  (s_{l+1}, s_l + 1) and holds the bias weights in column 0.
* ``X`` has shape (m, n) with n = s_1 and no bias column; ``Y`` is one-hot, shape (m, K).

The objective is the regularised cross-entropy of independent sigmoid outputs,

    J = (1/m) sum_i sum_k [-y_ik log(h_ik) - (1 - y_ik) log(1 - h_ik)]
        + lam/(2m) sum_l sum_{j, k>=1} theta_l[j, k]^2,

and its gradient is computed by vectorised backpropagation. The bias column is never
built: ``a @ theta[:, 1:].T + theta[:, 0]`` is the notebook's ``[1, a] @ theta.T``
without copying ``a``. The data term is also offered unnormalised
(:func:`data_term`) so that sums over shards of the examples can be added up, and
:func:`from_sums` makes J and its gradient of the totals.

This module imports nothing from the rest of the package.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

__all__ = [
    "sigmoid",
    "sigmoid_gradient",
    "theta_shapes",
    "total_weight",
    "layer_sizes_of",
    "init_random",
    "init_debug",
    "debug_matrix",
    "pack",
    "unpack",
    "forward",
    "output_preactivation",
    "data_term",
    "from_sums",
    "regularization",
    "cost",
    "cost_and_gradient",
]


def sigmoid(z):
    """Logistic function g(z) = 1 / (1 + exp(-z)), elementwise, any shape; overflow-free
    (``scipy.special.expit``)."""
    return expit(z)


def sigmoid_gradient(z):
    """Derivative of the sigmoid, elementwise, any shape: g'(z) = g(z) (1 - g(z)); 0.25 at z = 0."""
    a = expit(z)
    return a * (1 - a)


def theta_shapes(layer_sizes):
    """Shapes (s_{l+1}, s_l + 1) of the weight matrices of a network, a list of L - 1 tuples."""
    sizes = tuple(int(s) for s in layer_sizes)
    return [(s_out, s_in + 1) for s_in, s_out in zip(sizes[:-1], sizes[1:])]


def layer_sizes_of(thetas):
    """Layer sizes (s_1, ..., s_L) read off a list of weight matrices."""
    return (thetas[0].shape[1] - 1,) + tuple(theta.shape[0] for theta in thetas)


def init_random(layer_sizes, epsilon=0.12, rng=None, dtype=np.float64):
    """Random weights, uniform in [-epsilon, epsilon], to break the symmetry.

    Parameters
    ----------
    layer_sizes : sequence of int
    epsilon : float or "auto"
        Half-width of the interval. ``"auto"`` uses the course's suggestion
        sqrt(6) / sqrt(s_l + s_{l+1}) for each layer.
    rng : None, int or numpy.random.Generator
        Seed or generator (``numpy.random.default_rng`` semantics).

    Returns
    -------
    thetas : list of ndarray, shapes (s_{l+1}, s_l + 1)
    """
    rng = np.random.default_rng(rng)
    thetas = []
    for s_out, s_in_plus_1 in theta_shapes(layer_sizes):
        eps = np.sqrt(6.0) / np.sqrt(s_in_plus_1 - 1 + s_out) if epsilon == "auto" else epsilon
        theta = rng.uniform(-eps, eps, size=(s_out, s_in_plus_1))
        thetas.append(theta.astype(dtype, copy=False))
    return thetas


def debug_matrix(shape):
    """The course's deterministic test matrix: sin(1..count) / 10, filled column-major.

    This is Octave's ``reshape(sin(1:numel(W)), size(W)) / 10``.
    """
    count = int(np.prod(shape))
    return np.sin(np.arange(1, count + 1)).reshape(shape, order="F") / 10


def init_debug(layer_sizes):
    """Deterministic weights for gradient checking, one :func:`debug_matrix` per layer."""
    return [debug_matrix(shape) for shape in theta_shapes(layer_sizes)]


def pack(thetas, order="C"):
    """Unroll weight matrices into one vector of shape (p,), p = sum of their sizes.

    ``order="C"`` is the notebook's ``np.r_[theta1.ravel(), theta2.ravel()]``;
    ``order="F"`` is Octave's ``[Theta1(:); Theta2(:)]``.
    """
    return np.concatenate([np.ravel(theta, order=order) for theta in thetas])


def unpack(vector, layer_sizes, order="C"):
    """Inverse of :func:`pack`: a vector of shape (p,) back to the weight matrices.

    Returns views into ``vector`` (copies for ``order="F"``), shapes :func:`theta_shapes`.
    """
    vector = np.asarray(vector)
    shapes = theta_shapes(layer_sizes)
    needed = sum(rows * cols for rows, cols in shapes)
    if vector.shape != (needed,):
        raise ValueError(
            f"vector has shape {vector.shape} but layer sizes {tuple(layer_sizes)} need {needed} weights"
        )
    thetas, start = [], 0
    for shape in shapes:
        stop = start + shape[0] * shape[1]
        thetas.append(vector[start:stop].reshape(shape, order=order))
        start = stop
    return thetas


# Which way round the hidden layers' products run. The arrays are (m, s) either way;
# float64 hidden activations are kept in Fortran order (examples down contiguous
# columns), computed as (theta a')': on 2500 digits and 25 hidden units OpenBLAS ran
# that product 11% (AVX2 kernel) and 20% (AVX-512) faster than a theta' in float64,
# while in float32 a theta' was as fast or 30% faster (docs/benchmarks.md).
_COLUMN_MAJOR_HIDDEN = (np.dtype(np.float64),)


def _affine(a, theta):
    """z = [1, a] @ theta.T without building the bias column; shape (m, s_{l+1}), C order."""
    z = a @ theta[:, 1:].T
    z += theta[:, 0]
    return z


def _hidden_affine(a, theta):
    """As :func:`_affine`, for a hidden layer: in Fortran order where that is faster."""
    if a.dtype not in _COLUMN_MAJOR_HIDDEN:
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
    an ulp of 1 (absolute), never overflows, and is 3-8x faster than ``expit`` here
    because NumPy vectorises ``tanh``. Use it where absolute accuracy is what counts:
    activations feeding a matrix product and a_L - y; :func:`forward` keeps ``expit``
    for the output probabilities.
    """
    z *= 0.5
    np.tanh(z, out=z)
    z *= 0.5
    z += 0.5
    return z


def _feedforward(thetas, X):
    """Activations a_1 = X, ..., a_{L-1} (no bias columns) and the output pre-activation z_L."""
    activations = [X]
    for theta in thetas[:-1]:
        activations.append(_sigmoid_in_place(_hidden_affine(activations[-1], theta)))
    return activations, _affine(activations[-1], thetas[-1])


def forward(thetas, X):
    """Feedforward pass.

    Parameters
    ----------
    thetas : list of ndarray, shapes (s_{l+1}, s_l + 1)
    X : ndarray, shape (m, s_1)

    Returns
    -------
    activations : list of ndarray
        a_1 = X, a_2, ..., a_L, each of shape (m, s_l) without a bias column;
        a_L = h_theta(X) are the output units' sigmoid activations.
    """
    activations, z = _feedforward(thetas, X)
    activations.append(expit(z, out=z))
    return activations


def output_preactivation(thetas, X):
    """z_L, the output units' weighted inputs, shape (m, K): h_theta(X) = g(z_L).

    Ranking or normalising outputs from z_L stays exact where g(z_L) rounds to 0 or 1.
    """
    return _feedforward(thetas, X)[1]


def _log1p_exp_minus_abs(z):
    """log(1 + exp(-|z|)), a new array: the part of softplus that needs care."""
    t = np.abs(z)
    np.negative(t, out=t)
    np.exp(t, out=t)
    return np.log1p(t, out=t)


def _cross_entropy_terms(z, Y):
    """Per-example cross-entropy of sigmoid outputs, from the pre-activation z, shape (m,).

    -y log g(z) - (1 - y) log(1 - g(z)) equals softplus(z) - y z, and
    softplus(z) = max(z, 0) + log1p(exp(-|z|)) is finite for any finite z, so saturated
    units cost what they should instead of log(0).
    """
    softplus = _log1p_exp_minus_abs(z)
    softplus += np.maximum(z, 0)
    softplus -= Y * z
    return softplus.sum(axis=1)


def _cross_entropy_sum(z, Y, sample_weight):
    """sum_i w_i sum_k [softplus(z_ik) - y_ik z_ik], without per-example sums when w = 1.

    Unweighted, the three parts are summed separately: no (m, K) temporary for
    ``Y * z`` (a dot product instead) and none for the total.
    """
    if sample_weight is not None:
        return _cross_entropy_terms(z, Y) @ sample_weight
    return _log1p_exp_minus_abs(z).sum() + np.maximum(z, 0).sum() - np.vdot(Y, z)


def _backpropagate(delta, theta, a):
    """delta_l = (delta_{l+1} theta_l[:, 1:]) .* a_l (1 - a_l), overwriting ``a``.

    Written as (delta_{l+1} (-theta_l[:, 1:])) .* a_l .* (a_l - 1) so that every step
    is in place: the signs cancel exactly, and no (m, s_l) temporary is made.
    """
    delta = _product_like(delta, np.negative(theta[:, 1:]), a)
    delta *= a
    a -= 1
    delta *= a
    return delta


def data_term(thetas, X, Y, sample_weight=None):
    """Unnormalised data part of the cost and its gradient, summed over the given examples.

    Summing the results over disjoint slices of the examples and dividing by the total m
    (or total sample weight) gives the data part of :func:`cost_and_gradient`.

    Parameters
    ----------
    thetas : list of ndarray, shapes (s_{l+1}, s_l + 1)
    X : ndarray, shape (m, n)
    Y : ndarray, shape (m, K)
    sample_weight : ndarray of shape (m,), optional
        Weight of each example; a weight of 2 counts like the row given twice.

    Returns
    -------
    loss_sum : float
        sum_i w_i sum_k [softplus(z_ik) - y_ik z_ik].
    grad_sums : list of ndarray, shapes of ``thetas``
        sum_i w_i dloss_i / dtheta, before division by m and without regularisation.
    """
    activations, z = _feedforward(thetas, X)
    loss_sum = _cross_entropy_sum(z, Y, sample_weight)
    # For sigmoid outputs under cross-entropy, dJ/dz_L = a_L - y exactly (the sigmoid's
    # derivative cancels); this holds only for that pairing of activation and loss.
    delta = _sigmoid_in_place(z)
    delta -= Y
    if sample_weight is not None:
        delta *= sample_weight[:, None]
    # The bias gradients are column sums of delta; a matrix-vector product with ones
    # takes them 4x faster than delta.sum(axis=0) walking a C-ordered (m, s) array.
    ones = np.ones(X.shape[0], dtype=delta.dtype)
    grads = [None] * len(thetas)
    for l in range(len(thetas) - 1, -1, -1):
        a = activations[l]
        grad = np.empty_like(thetas[l])
        grad[:, 0] = ones @ delta
        grad[:, 1:] = delta.T @ a
        grads[l] = grad
        if l > 0:
            delta = _backpropagate(delta, thetas[l], a)
    return float(loss_sum), grads


def _sum_of_squares(thetas):
    return sum(float(np.sum(np.square(theta[:, 1:]))) for theta in thetas)


def regularization(thetas, lam, m):
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


def total_weight(X, sample_weight=None):
    """m, the number of examples, or the sum of their weights when weighted."""
    return X.shape[0] if sample_weight is None else float(np.sum(sample_weight))


def cost(thetas, X, Y, lam=0.0, sample_weight=None):
    """Regularised cross-entropy J(theta) by feedforward alone (no gradient).

    Parameters as for :func:`cost_and_gradient`; returns J, a float.
    """
    _, z = _feedforward(thetas, X)
    loss_sum = _cross_entropy_sum(z, Y, sample_weight)
    m = total_weight(X, sample_weight)
    return float(loss_sum) / m + 0.5 * lam / m * _sum_of_squares(thetas)


def cost_and_gradient(thetas, X, Y, lam=0.0, sample_weight=None):
    """Regularised cost J and its gradient by backpropagation.

    Parameters
    ----------
    thetas : list of ndarray, shapes (s_{l+1}, s_l + 1)
    X : ndarray, shape (m, n)
    Y : ndarray, shape (m, K), one-hot
    lam : float
        Regularisation strength lambda (bias columns are not regularised).
    sample_weight : ndarray of shape (m,), optional
        m becomes the sum of the weights.

    Returns
    -------
    J : float
    grads : list of ndarray, shapes of ``thetas``, in the dtype of the inputs
    """
    loss_sum, grads = data_term(thetas, X, Y, sample_weight)
    return from_sums(loss_sum, grads, thetas, lam, total_weight(X, sample_weight))


def from_sums(loss_sum, grad_sums, thetas, lam, m):
    """J and its gradient from the data term's sums over all m examples (or total weight).

    ``grad_sums`` (as :func:`data_term` returns them, summed over shards) are divided by m
    and the penalty's gradient added, in place; returns ``(J, grads)``.
    """
    penalty, penalty_grads = regularization(thetas, lam, m)
    for grad, penalty_grad in zip(grad_sums, penalty_grads):
        grad /= m
        grad += penalty_grad
    return loss_sum / m + penalty, grad_sums
