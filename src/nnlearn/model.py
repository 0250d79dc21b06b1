"""A trained network: its weights, the labels of its outputs, and how it was trained."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import log_expit, softmax

from .core import cost, forward, layer_sizes_of, output_preactivation
from .datasets import one_hot
from .errors import ShapeError

__all__ = ["Model"]


@dataclass(eq=False)
class Model:
    """A feedforward sigmoid network.

    Attributes
    ----------
    thetas : list of ndarray
        One weight matrix per layer, shape (s_{l+1}, s_l + 1), bias in column 0.
    classes : ndarray, shape (K,)
        The label each output unit stands for: output unit k predicts ``classes[k]``.
    lam : float
        The regularisation strength it was trained with.
    history : dict
        How it was trained: ``cost`` (J after each iteration), ``optimizer``,
        ``n_iter``, ``n_evals``, ``seed``, ``seconds``, ... (JSON-compatible values).
    """

    thetas: list
    classes: np.ndarray
    lam: float = 0.0
    history: dict = field(default_factory=dict)

    def __post_init__(self):
        self.thetas = [np.asarray(theta) for theta in self.thetas]
        self.classes = np.asarray(self.classes)
        if not self.thetas:
            raise ShapeError("a model needs at least one weight matrix")
        for l, theta in enumerate(self.thetas, start=1):
            if theta.ndim != 2 or theta.dtype not in (np.float32, np.float64):
                raise ShapeError(f"Theta{l} must be a 2-D float32 or float64 matrix, got {theta.ndim}-D {theta.dtype}")
            if not np.all(np.isfinite(theta)):
                raise ShapeError(f"Theta{l} contains NaN or infinite weights")
        if self.classes.ndim != 1:
            raise ShapeError(f"class labels must be a 1-D array, got shape {self.classes.shape}")
        if not (isinstance(self.lam, (int, float)) and np.isfinite(self.lam) and self.lam >= 0):
            raise ShapeError(f"lambda must be a finite number >= 0, got {self.lam!r}")
        if not isinstance(self.history, dict):
            raise ShapeError(f"history must be a dict, got {type(self.history).__name__}")
        for l, (prev, theta) in enumerate(zip(self.thetas, self.thetas[1:]), start=2):
            if theta.shape[1] != prev.shape[0] + 1:
                raise ShapeError(
                    f"Theta{l} has {theta.shape[1]} columns but Theta{l - 1} has "
                    f"{prev.shape[0]} rows; they must differ by the bias column"
                )
        if self.classes.shape != (self.thetas[-1].shape[0],):
            raise ShapeError(
                f"{self.classes.size} class labels for {self.thetas[-1].shape[0]} output units"
            )

    @property
    def layer_sizes(self):
        """(s_1, ..., s_L): inputs, hidden units per layer, outputs."""
        return layer_sizes_of(self.thetas)

    @property
    def dtype(self):
        return self.thetas[0].dtype

    def _check_X(self, X):
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim == 1:
            X = X[None, :]
        n = self.layer_sizes[0]
        if X.ndim != 2 or X.shape[1] != n:
            raise ShapeError(f"the model takes {n} features per example; the data have shape {X.shape}")
        return X

    def outputs(self, X):
        """The output units' sigmoid activations h_theta(X), shape (m, K), each in (0, 1)."""
        return forward(self.thetas, self._check_X(X))[-1]

    def predict_proba(self, X):
        """Class probabilities, shape (m, K): the sigmoid outputs divided by their row sum.

        The output units are independent sigmoids (the course's one-vs-all reading), so
        their values need not add up to 1; normalising them keeps their order, hence
        the prediction, and gives rows that sum to 1. It is done on log g(z) so that
        saturated outputs (all rounding to 0 or 1) still give finite probabilities.
        """
        return softmax(log_expit(output_preactivation(self.thetas, self._check_X(X))), axis=1)

    def predict(self, X):
        """The label of the most active output unit for each example, shape (m,)."""
        return self.classes[np.argmax(output_preactivation(self.thetas, self._check_X(X)), axis=1)]

    def score(self, X, y):
        """Accuracy: the fraction of examples predicted right."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def cost(self, X, y, lam=None):
        """The regularised cost J on (X, y); ``lam`` defaults to the training lambda."""
        _, Y = one_hot(y, self.classes)
        return cost(self.thetas, self._check_X(X), Y.astype(self.dtype), self.lam if lam is None else lam)

    def save(self, path, overwrite=False):
        """Save to an ``.npz`` model file (see :func:`nnlearn.modelio.save_model`)."""
        from .modelio import save_model

        return save_model(self, path, overwrite=overwrite)
