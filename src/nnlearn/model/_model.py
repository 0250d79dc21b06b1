"""A trained network: its weights, the labels of its outputs, how it was trained, and its file.

nnlearn's model file is an archive (:mod:`nnlearn.persist._archive`) of kind "nnlearn-model":

* ``theta1`` ... ``thetaN``: the weight matrices;
* ``classes``: the label of each output unit (numbers or strings, never objects);
* ``meta``: ``lam``, ``network`` (``{"activation": ..., "output": ...}``, since format
  2) and the training ``history``.

Format 1 files (nnlearn 0.1) have no ``network``: they are the course's sigmoid network
and load as such. A kind of activation or output this nnlearn does not know is refused.

The document is checked against :data:`SCHEMAS` (one per format version) before anything
is read from it, so that a loaded model's ``history`` holds what :data:`HISTORY_FIELDS`
says, which every reader of it may rely on: known keys have their types and ranges;
other keys (a newer nnlearn's, a user's) hold a JSON scalar (null, true/false, a finite
number, a string without control characters) or a list of them, nothing nested. A
recorded data file (``history["data"]``) is a string to show: nothing in nnlearn opens a
file because a model file names it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..core import ACTIVATIONS, OUTPUTS, Network, cost, forward, layer_sizes_of, one_hot, output_preactivation
from ..errors import DataError, ModelFileError, ShapeError
from ..persist._archive import document, read_archive, write_archive
from ..persist._schema import (
    MAX_NAME,
    Check,
    SchemaError,
    array,
    boolean,
    either,
    integer,
    nullable,
    number,
    record,
    text,
)

__all__ = ["Model", "save_model", "load_model", "FORMAT", "HISTORY_FIELDS", "SCHEMAS", "MAX_COST", "MAX_ARRAY_BYTES"]

FORMAT = "nnlearn-model"

_COUNT = integer(0, 2**53)  # iterations, evaluations: exact in any JSON reader
_NAME = text(MAX_NAME)  # optimizer, dtype, kinds: one short line
_SCALAR = either(
    nullable(boolean()),
    number(),
    text(free=True),
    wanted="null, true, false, a finite number or a string without control characters",
)

#: The most bytes a model file's weights and classes may hold, checked on the arrays'
#: headers before any is inflated: a network of 268 million float64 weights, far beyond
#: what nnlearn trains, and a bound on what a crafted file of a few megabytes (deflated
#: zeros) can make a reader allocate.
MAX_ARRAY_BYTES = 2 * 2**30

#: The largest cost a model's history may record: only an absurd lambda (whose penalty
#: nears overflow, see nnlearn.training._fitting) gives more.
MAX_COST = 1e100

#: The forms of the kernel's products that nnlearn 0.2's planner recorded in a model's
#: history and in checkpoints: read in files of that version, never written now.
PLAN_RECORD = record(
    {
        "hidden_order": text(choices=("C", "F")),
        "gradient": text(choices=("delta' a", "(a' delta)'")),
        "pad": integer(1, 64),
        "shards": nullable(integer(1, 2**16)),
    }
)

#: What a model's ``history`` may hold under each key nnlearn writes (all optional).
HISTORY_FIELDS: dict[str, Check] = {
    # Cross-entropies plus a penalty: never negative. A run whose cost stops being finite
    # ends in a TrainingError and keeps no model (nnlearn.training._fitting), so no model nnlearn
    # saves records NaN or inf; the bound keeps what report prints and plots of a history
    # (plots.plot_cost_history) within ordinary float arithmetic.
    "cost": array(number(0, MAX_COST)),
    "optimizer": _NAME,
    "max_iter": integer(1, 2**53),
    "n_iter": _COUNT,
    "n_evals": _COUNT,
    "message": text(free=True),
    "stop_reason": nullable(text()),
    "interrupted": boolean(),
    "seed": nullable(integer(0, 2**64 - 1)),
    "dtype": _NAME,
    "blas": _NAME,  # the library of the products with the examples (nnlearn.compute._products)
    "epsilon_init": either(number(0, open_low=True), _NAME, wanted='a number > 0 or a name such as "auto"'),
    "seconds": number(0, 1e10),
    "batch_size": integer(1, 2**53),
    "learning_rate": nullable(number(0, open_low=True)),
    "validation_scores": array(number()),
    "validation_losses": array(number(0, MAX_COST)),  # the full-batch optimizers' early stopping
    # Shown, never opened: see nnlearn.cli._common.evaluation_data.
    "data": text(),
    "test_size": number(0, 1, open_high=True),
    "split_seed": integer(0, 2**32 - 1),  # scikit-learn's random_state takes no more
    "framing": nullable(_NAME),
    "source": text(),
    "plan": PLAN_RECORD,
    # The Dask cluster a run used (nnlearn.compute._cluster.ClusterDataTerm.record).
    "cluster": text(),
    "cluster_workers": array(text()),
    "cluster_partitions": array(integer(0, 2**53)),
    "cluster_lost_workers": _COUNT,
}
# Keys a newer nnlearn (or a user) adds: scalars or flat lists of them, so that whatever
# prints a history prints short, plain values, and the document stays shallow.
HISTORY = record(
    HISTORY_FIELDS,
    optional=HISTORY_FIELDS,
    extra=either(_SCALAR, array(_SCALAR), wanted="a JSON scalar or a list of them"),
)


def _kind(registry: Mapping[str, object], what: str) -> Check:
    """A kind of layer this nnlearn knows; another may be a newer nnlearn's."""
    name = text(MAX_NAME)

    def check(value: Any, where: str) -> None:
        name(value, where)  # a short one-line string, safe to quote
        if value not in registry:
            raise SchemaError(
                f"unknown {what} {value!r} (this nnlearn knows {', '.join(registry)}); a newer nnlearn may read it, "
                f"or register the kind first (nnlearn.core.register_{what})"
            )

    return check


_KINDS = record({"activation": _kind(ACTIVATIONS, "activation"), "output": _kind(OUTPUTS, "output")})


def _network(value: Any, where: str) -> None:
    """``{"activation": NAME, "output": NAME}``, both kinds this nnlearn knows."""
    if not (
        isinstance(value, dict)
        and set(value) == {"activation", "output"}
        and all(isinstance(kind, str) for kind in value.values())
    ):
        raise SchemaError(
            f"the file does not say its network's activation and output ({where} must be an object of "
            "two names, activation and output)"
        )
    _KINDS(value, where)


_FIELDS = {"lam": number(0), "history": HISTORY}
#: The model document of each format version: format 1 (nnlearn 0.1) has no network.
SCHEMAS: dict[int, Check] = {
    1: document(_FIELDS),
    2: document(
        {**_FIELDS, "network": _network},
        about={"network": "its network's activation and output", "history": "how it was trained"},
    ),
}


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
        """Class probabilities, shape (m, K), rows summing to 1, in the model's dtype.

        For a softmax output these are its outputs. The course's sigmoid outputs are
        independent units (a one-vs-all reading) whose values need not add up to 1:
        they are divided by their row sum, which keeps their order, hence the
        prediction. It is done on log g(z) so that saturated outputs (all rounding to 0
        or 1) still give finite probabilities.

        Each row is in the strict order of the output layer's logits, so that
        ``argmax(predict_proba(X))`` is :meth:`predict`'s class in every dtype, even
        where rounding would tie two classes (saturated sigmoid units, g(40) and g(41),
        are one number in float64): the larger logit's probability is then a unit in
        the last place above (:func:`nnlearn.core.activations.in_order_of`).
        """
        return OUTPUTS[self.network.output].proba(self._logits(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The label of the most active output unit for each example, shape (m,): the
        largest logit's (the lowest index among equal ones), as ``predict_proba``'s."""
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

    def _repr_html_(self) -> str:
        """Jupyter's view: the network, its settings, its training and its cost curve."""
        from ._display import model_html

        return model_html(self)

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Save to an ``.npz`` model file (see :func:`save_model`)."""
        return save_model(self, path, overwrite=overwrite)

    def to_onnx(self, path: str | os.PathLike, dtype: str = "float32", overwrite: bool = False) -> Path:
        """Export to an ONNX file (:mod:`nnlearn.model._onnx`: input ``input``, outputs ``label`` and
        ``probabilities``), computing in ``dtype``; needs ``pip install "nnlearn[onnx]"``."""
        from ._onnx import to_onnx

        return to_onnx(self, path, dtype=dtype, overwrite=overwrite)


def save_model(model: Model, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``model`` to ``path`` atomically; refuse to replace a file unless ``overwrite``.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    ModelFileError
        The class labels are objects, the weights take more than :data:`MAX_ARRAY_BYTES`,
        or the history holds what the model file's schema refuses (:data:`HISTORY_FIELDS`):
        nnlearn writes no file it would not read back.
    """
    if model.classes.dtype.kind not in "iufbU":
        raise ModelFileError(f"class labels of dtype {model.classes.dtype} cannot be saved safely")
    arrays = {f"theta{l}": theta for l, theta in enumerate(model.thetas, start=1)}
    arrays["classes"] = model.classes
    size = sum(array.nbytes for array in arrays.values())
    if size > MAX_ARRAY_BYTES:
        raise ModelFileError(
            f"{path}: cannot be saved: its weights take {size:,} bytes, more than a model file holds "
            f"({MAX_ARRAY_BYTES:,} at most)"
        )
    network = {"activation": model.network.activation, "output": model.network.output}
    meta = {"lam": float(model.lam), "network": network, "history": model.history}
    return write_archive(path, FORMAT, arrays, meta, overwrite, schema=SCHEMAS[max(SCHEMAS)])


def load_model(path: str | os.PathLike) -> Model:
    """Read a model written by :func:`save_model`.

    Raises
    ------
    ModelFileError
        The file is missing, not a regular file, not an nnlearn model, of a newer format
        version, altered since it was written (a checksum fails), holds metadata its
        format's schema (:data:`SCHEMAS`) refuses, arrays that would need unpickling, or
        arrays whose headers claim more than :data:`MAX_ARRAY_BYTES`.
    """
    arrays, meta = read_archive(path, FORMAT, SCHEMAS, max_bytes=MAX_ARRAY_BYTES)
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
    """The network a model file describes: format 1 is the course's sigmoid network.

    Its kinds are ones this nnlearn knows: the schema checked them.
    """
    if meta["format_version"] < 2:
        return Network(layer_sizes_of(thetas))
    return Network(layer_sizes_of(thetas), meta["network"]["activation"], meta["network"]["output"])
