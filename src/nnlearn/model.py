"""A trained network: its weights, the labels of its outputs, how it was trained, and its file.

nnlearn's model file is an archive (:mod:`nnlearn.archive`) of kind "nnlearn-model":

* ``theta1`` ... ``thetaN``: the weight matrices;
* ``classes``: the label of each output unit (numbers or strings, never objects);
* ``meta``: ``lam``, ``network`` (``{"activation": ..., "output": ...}``, since format
  2) and the training ``history``.

Format 1 files (nnlearn 0.1) have no ``network``: they are the course's sigmoid network
and load as such. A kind of activation or output this nnlearn does not know is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .archive import read_archive, write_archive
from .core import ACTIVATIONS, OUTPUTS, Network, cost, forward, layer_sizes_of, one_hot, output_preactivation
from .errors import DataError, ModelFileError, ShapeError

__all__ = ["Model", "save_model", "load_model", "FORMAT"]

FORMAT = "nnlearn-model"


@dataclass(eq=False)
class Model:
    """A trained feedforward network.

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
    network : Network
        Its layer sizes, hidden activation and output; None when constructing means the
        course's sigmoid network of the weights' sizes.
    """

    thetas: list[np.ndarray]
    classes: np.ndarray
    lam: float = 0.0
    history: dict[str, Any] = field(default_factory=dict)
    network: Network = None  # type: ignore[assignment]  # None becomes the course's network

    def __post_init__(self) -> None:
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
            raise ShapeError(f"{self.classes.size} class labels for {self.thetas[-1].shape[0]} output units")
        sizes = layer_sizes_of(self.thetas)
        if self.network is None:
            self.network = Network(sizes)
        if not isinstance(self.network, Network) or self.network.layer_sizes != sizes:
            raise ShapeError(f"the network {self.network!r} does not match the weights' layer sizes {sizes}")

    def __repr__(self) -> str:
        return f"Model({self.network.describe()}, {self.dtype}, classes {self.classes.tolist()}, lambda {self.lam:g})"

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """(s_1, ..., s_L): inputs, hidden units per layer, outputs."""
        return self.network.layer_sizes

    @property
    def dtype(self) -> np.dtype:
        return self.thetas[0].dtype

    def _check_X(self, X):
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim == 1:
            X = X[None, :]
        n = self.layer_sizes[0]
        if X.ndim != 2 or X.shape[1] != n:
            raise ShapeError(f"the model takes {n} features per example; the data have shape {X.shape}")
        return X

    def outputs(self, X: ArrayLike) -> np.ndarray:
        """The output units' activations h_theta(X), shape (m, K), each in (0, 1)."""
        return forward(self.thetas, self._check_X(X), network=self.network)[-1]

    def _logits(self, X):
        return output_preactivation(self.thetas, self._check_X(X), network=self.network)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, shape (m, K), rows summing to 1.

        For a softmax output these are its outputs. The course's sigmoid outputs are
        independent units (a one-vs-all reading) whose values need not add up to 1:
        they are divided by their row sum, which keeps their order, hence the
        prediction. It is done on log g(z) so that saturated outputs (all rounding to 0
        or 1) still give finite probabilities.
        """
        return OUTPUTS[self.network.output].proba(self._logits(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The label of the most active output unit for each example, shape (m,)."""
        return self.classes[np.argmax(self._logits(X), axis=1)]

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """Accuracy: the fraction of examples predicted right."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def cost(self, X: ArrayLike, y: ArrayLike, lam: float | None = None) -> float:
        """The regularised cost J on (X, y); ``lam`` defaults to the training lambda."""
        try:
            _, Y = one_hot(y, self.classes)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        lam = self.lam if lam is None else lam
        return cost(self.thetas, self._check_X(X), Y.astype(self.dtype), lam, network=self.network)

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Save to an ``.npz`` model file (see :func:`save_model`)."""
        return save_model(self, path, overwrite=overwrite)


def save_model(model: Model, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``model`` to ``path`` atomically; refuse to replace a file unless ``overwrite``."""
    if model.classes.dtype.kind not in "iufbU":
        raise ModelFileError(f"class labels of dtype {model.classes.dtype} cannot be saved safely")
    arrays = {f"theta{l}": theta for l, theta in enumerate(model.thetas, start=1)}
    arrays["classes"] = model.classes
    network = {"activation": model.network.activation, "output": model.network.output}
    meta = {"lam": float(model.lam), "network": network, "history": model.history}
    return write_archive(path, FORMAT, arrays, meta, overwrite)


def load_model(path: str | os.PathLike) -> Model:
    """Read a model written by :func:`save_model`.

    Raises
    ------
    ModelFileError
        The file is missing, not an nnlearn model, of a newer format version, altered
        since it was written, or holds arrays that would need unpickling.
    """
    arrays, meta = read_archive(path, FORMAT)
    names = [f"theta{l}" for l in range(1, len(arrays))]
    if set(arrays) != {*names, "classes"}:
        raise ModelFileError(f"{path}: a model file holds theta1 ... thetaN and classes, not {sorted(arrays)}")
    thetas = [arrays[n] for n in names]
    try:
        network = _read_network(path, meta, thetas)
        return Model(thetas, arrays["classes"], meta["lam"], meta["history"], network=network)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise ModelFileError(f"{path}: inconsistent model file ({exc})") from None


def _read_network(path, meta, thetas):
    """The network a model file describes: format 1 is the course's sigmoid network."""
    if meta["format_version"] < 2:
        return Network(layer_sizes_of(thetas))
    kinds = meta.get("network")
    if not isinstance(kinds, dict) or not all(isinstance(kinds.get(k), str) for k in ("activation", "output")):
        raise ModelFileError(f"{path}: the model file does not say its network's activation and output")
    activation, output = kinds["activation"], kinds["output"]
    if activation not in ACTIVATIONS:
        raise ModelFileError(
            f"{path}: unknown activation {activation!r} (this nnlearn knows {', '.join(ACTIVATIONS)}); "
            "a newer nnlearn may read it"
        )
    if output not in OUTPUTS:
        raise ModelFileError(
            f"{path}: unknown output {output!r} (this nnlearn knows {', '.join(OUTPUTS)}); a newer nnlearn may read it"
        )
    return Network(layer_sizes_of(thetas), activation, output)
