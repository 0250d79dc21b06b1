"""Hidden activations and output layers, registered as data.

A hidden activation is an :class:`Activation`: its function g and its derivative g'
written from the layer's *output* a = g(z), as backpropagation has a at hand. An output
layer is an :class:`Output`: its activations h(z_L), its per-example loss from the logits
z_L, its delta dloss/dz_L, and how its activations become class probabilities.

A new kind is one entry in :data:`ACTIVATIONS` or :data:`OUTPUTS`; the reference
backpropagation (:mod:`nnlearn.core.backprop`) and the fast kernel
(:mod:`nnlearn.core.kernels`) serve every entry, the kernel with special in-place forms
for the built-in ones. Activations whose derivative cannot be written from their output
(GELU, SiLU: g' needs z itself) are out of scope for this design.

This follows scikit-learn's ``neural_network/_base.py`` (``ACTIVATIONS``,
``DERIVATIVES``), with a kind's pieces kept side by side in one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, log_expit, logsumexp, softmax

__all__ = ["Activation", "Output", "ACTIVATIONS", "OUTPUTS", "sigmoid", "sigmoid_gradient"]


def sigmoid(z: ArrayLike) -> np.ndarray:
    """Logistic function g(z) = 1 / (1 + exp(-z)), elementwise, any shape; overflow-free
    (``scipy.special.expit``)."""
    return expit(z)


def sigmoid_gradient(z: ArrayLike) -> np.ndarray:
    """Derivative of the sigmoid, elementwise, any shape: g'(z) = g(z) (1 - g(z)); 0.25 at z = 0."""
    a = expit(z)
    return a * (1 - a)


@dataclass(frozen=True)
class Activation:
    """A hidden layer's activation: ``function(z) -> a`` and ``derivative(a) -> g'(z)``.

    Both are elementwise on arrays of any shape. ``derivative`` receives the output
    a = g(z), never z: activations whose derivative needs z are not expressible here.
    """

    function: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Output:
    """An output layer and its loss, all functions of the logits z_L, shape (m, K).

    Attributes
    ----------
    function : callable
        ``function(z) -> h``: the output activations h_theta(x), shape (m, K).
    loss : callable
        ``loss(z, Y) -> l``: each example's loss, shape (m,), finite for any finite z.
    delta : callable
        ``delta(z, Y) -> dl/dz``, shape (m, K): the output layer's delta.
    proba : callable
        ``proba(z) -> P``: class probabilities, rows summing to 1.
    """

    function: Callable[[np.ndarray], np.ndarray]
    loss: Callable[[np.ndarray, np.ndarray], np.ndarray]
    delta: Callable[[np.ndarray, np.ndarray], np.ndarray]
    proba: Callable[[np.ndarray], np.ndarray]


def _sigmoid_loss(z, Y):
    # -y log g(z) - (1 - y) log(1 - g(z)) = softplus(z) - y z: finite where g(z) rounds to 0 or 1.
    return np.sum(np.logaddexp(0, z) - Y * z, axis=1)


def _softmax_loss(z, Y):
    # -sum_k y_k log softmax(z)_k = logsumexp(z) - y . z for a one-hot row y.
    return logsumexp(z, axis=1) - np.sum(Y * z, axis=1)


#: Hidden activations by name: the course's sigmoid, tanh and the rectifier.
ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(expit, lambda a: a * (1 - a)),
    "tanh": Activation(np.tanh, lambda a: 1 - a * a),
    "relu": Activation(lambda z: np.maximum(z, 0), lambda a: (a > 0).astype(a.dtype)),
}

#: Output layers by name. For both, delta = h - y exactly: the output's derivative
#: cancels against its loss's (sigmoid units under per-unit cross-entropy; softmax under
#: multinomial cross-entropy with one-hot y). That holds only for these pairings.
OUTPUTS: dict[str, Output] = {
    # The course's independent sigmoid units, one per class. As probabilities their
    # values are normalised to sum 1 per row (on log g(z), so that saturated units stay
    # finite): the order, hence the prediction, is kept, but this is not a calibration.
    "sigmoid": Output(
        function=expit,
        loss=_sigmoid_loss,
        delta=lambda z, Y: expit(z) - Y,
        proba=lambda z: softmax(log_expit(z), axis=1),
    ),
    # Multinomial cross-entropy, as scikit-learn's MLPClassifier uses for several classes.
    "softmax": Output(
        function=lambda z: softmax(z, axis=1),
        loss=_softmax_loss,
        delta=lambda z, Y: softmax(z, axis=1) - Y,
        proba=lambda z: softmax(z, axis=1),
    ),
}
