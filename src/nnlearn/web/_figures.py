"""The report's figures of the served model, as SVG: its cost curve, confusion matrix,
hidden units and most confidently wrong examples (:mod:`nnlearn.reporting`).

The data they judge the model on are what ``nnlearn evaluate`` would take without
``--data``: the held-out part of the built-in dataset the model records (a run of this
server records its 20% split), else all of the built-in dataset of its input size (the
course's weights: the embedded digits). A data *file* a model records is never opened.
Each figure is made once per model, under a lock: matplotlib is not made for threads.
"""

from __future__ import annotations

import io
import threading

import numpy as np

from ..datasets._builtin import DATASETS, load_data, split
from ..errors import NNLearnError
from ..reporting._plots import plot_digits, plot_hidden_units
from ..reporting._report import most_confidently_wrong
from ..reporting._training_plots import plot_confusion_matrix, plot_cost_history
from ._served import Served

__all__ = ["FIGURES", "NotAvailable", "available", "figure_svg", "evaluation_data"]

#: The figures, by the name in ``GET /api/model/figures/{name}.svg``.
FIGURES = ("cost", "confusion", "hidden", "wrong")
#: The built-in dataset of each input size, for a model that records none.
_BY_INPUTS = {400: "digits20", 64: "digits8"}
# One figure at a time in the whole process: matplotlib's font cache and text layout
# are shared by every figure.
_MATPLOTLIB = threading.Lock()


class NotAvailable(NNLearnError):
    """This figure cannot be made of this model (no cost history, no images, no data)."""


def _dataset(model) -> str:
    """The built-in dataset a model is judged on (see the module's docstring)."""
    recorded = model.history.get("data")
    name = recorded if recorded in DATASETS else _BY_INPUTS.get(model.layer_sizes[0])
    if name not in ("digits20", "digits8"):
        raise NotAvailable(f"no built-in dataset to judge a model of {model.layer_sizes[0]} inputs on")
    return name


def evaluation_data(served: Served) -> tuple[np.ndarray, np.ndarray, str]:
    """The examples the figures judge the model on, and what they are ("test", "all")."""
    model = served.model
    name = _dataset(model)
    X, y = load_data(name)
    if X.shape[1] != model.layer_sizes[0] or not np.isin(y, model.classes).all():
        raise NotAvailable(f"the model's inputs or classes do not fit {name}")
    test_size, seed = model.history.get("test_size"), model.history.get("split_seed")
    if model.history.get("data") == name and test_size and seed is not None:
        _, X, _, y = split(X, y, test_size=test_size, seed=seed)
        return X, y, "test"
    return X, y, "all"


def _why_not(served: Served, name: str) -> str | None:
    """Why figure ``name`` cannot be made of this model, found without making it; None if it can."""
    model = served.model
    if name == "cost":
        return None if model.history.get("cost") else "the model has no cost history (it was not trained by nnlearn)"
    if name in ("hidden", "wrong") and served.side is None:
        return f"the model's {model.layer_sizes[0]} inputs are not a square image"
    if name == "hidden":
        return None if len(model.layer_sizes) > 2 else "the model has no hidden layer"
    try:
        _dataset(model)
    except NotAvailable as exc:
        return str(exc)
    return None


def available(served: Served) -> dict[str, str | None]:
    """Each figure's name: None when it can be drawn, else why not (``GET /api/model``'s ``figures``).

    The most confidently wrong examples may still turn out to be none.
    """
    return {name: _why_not(served, name) for name in FIGURES}


def _figure(served: Served, name: str):
    why = _why_not(served, name)
    if why is not None:
        raise NotAvailable(why)
    model = served.model
    if name == "cost":
        return plot_cost_history(model)
    if name == "hidden":
        return plot_hidden_units(model)
    X, y, part = evaluation_data(served)
    predicted = model.predict(X)
    if name == "confusion":
        return plot_confusion_matrix(y, predicted, classes=model.classes)
    index, _ = most_confidently_wrong(model, X, y)
    if index.size == 0:
        raise NotAvailable(f"every one of the {len(y)} examples is predicted right")
    title = f"The {index.size} most confidently wrong of {len(y)} {'test ' if part == 'test' else ''}examples"
    return plot_digits(X[index], labels=y[index], predictions=predicted[index], n=index.size, title=title)


def figure_svg(served: Served, name: str) -> bytes:
    """The figure ``name`` (one of :data:`FIGURES`) of the served model as SVG, made once.

    Raises
    ------
    NotAvailable
        The figure cannot be made of this model; the message says why.
    """
    with served.lock:
        if name not in served.figures:
            try:
                with _MATPLOTLIB:
                    fig = _figure(served, name)
                    buffer = io.BytesIO()
                    fig.savefig(buffer, format="svg", metadata={"Date": None})
                served.figures[name] = buffer.getvalue()
            except NotAvailable as exc:
                served.figures[name] = exc
        found = served.figures[name]
    if isinstance(found, NotAvailable):
        raise found
    return found
