"""Pictures of training as matplotlib Figures: the cost per iteration and the confusion matrix.

Like :mod:`nnlearn.reporting._plots`' figures, each is drawn on its own Agg canvas and
touches no pyplot state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.ticker import FormatStrFormatter, FuncFormatter, MaxNLocator
from numpy.typing import ArrayLike

from ..errors import ParameterError
from ._curves import figure as _figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..model._model import Model

__all__ = ["plot_cost_history", "plot_confusion_matrix"]

# The largest magnitude a cost figure draws: far beyond any real cost, and far enough
# inside the float range (1.8e308) that the axis's span, margins and tick steps stay
# finite. A log axis is used only for costs from 1/_LOG_SPAN to _LOG_SPAN (a model file
# records none larger), where its ticks, a few decades past the data, stay finite too.
_DRAWABLE = 1e300
_LOG_SPAN = 1e100


def _as_runs(runs, labels) -> list[tuple[str, np.ndarray]]:
    """Normalise the inputs of :func:`plot_cost_history` to [(label, costs), ...]."""
    from ..model._model import Model

    if isinstance(runs, dict):
        items = list(runs.items())
    elif isinstance(runs, Model):
        items = [(None, runs)]
    elif len(runs) and np.ndim(runs[0]) == 0 and not isinstance(runs[0], Model):
        items = [(None, runs)]  # a single cost sequence
    else:
        items = [(None, run) for run in runs]
    out = []
    for i, (label, run) in enumerate(items):
        if isinstance(run, Model):
            label = run.history.get("optimizer") if label is None else label
            run = run.history.get("cost", [])
        out.append((f"run {i + 1}" if label is None else str(label), np.asarray(run, dtype=np.float64)))
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(out):
            raise ParameterError(f"{len(labels)} labels for {len(out)} runs")
        out = [(str(label), costs) for label, (_, costs) in zip(labels, out)]
    if not out or any(costs.ndim != 1 or costs.size == 0 for _, costs in out):
        raise ParameterError("every run needs a non-empty cost history (model.history['cost'])")
    return out


def plot_cost_history(
    runs: Model | Sequence[Model | ArrayLike] | ArrayLike | Mapping[Any, Model | ArrayLike],
    labels: Sequence[str] | None = None,
) -> Figure:
    """The cost J after each iteration, one line per run, on a log scale.

    The scale is linear when a cost is 0 or negative, or beyond 1e-100 to 1e100. NaN, the
    infinities and magnitudes beyond 1e300 are not drawn; the legend counts them.

    Parameters
    ----------
    runs : Model, sequence of Models, sequence of cost sequences, or dict
        A dict maps a label to a Model or a cost sequence. A Model contributes
        ``model.history["cost"]``, labelled by its optimiser.
    labels : sequence of str, optional
        One label per run, replacing the defaults.

    Returns
    -------
    matplotlib.figure.Figure
    """
    named_runs = _as_runs(runs, labels)
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    drawn = []
    for label, costs in named_runs:
        iterations = np.arange(1, costs.size + 1)
        # What cannot be drawn is left out, not drawn at a made-up height: NaN and the
        # infinities, and magnitudes beyond _DRAWABLE, whose differences overflow inside
        # matplotlib's tick and margin arithmetic (a ValueError from np.arange).
        keep = np.isfinite(costs) & (np.abs(costs) <= _DRAWABLE)
        drawn.append(costs[keep])
        left_out = costs.size - int(keep.sum())
        note = f", {left_out} not drawn (not finite or beyond +-{_DRAWABLE:g})" if left_out else ""
        ax.plot(
            iterations[keep],
            costs[keep],
            linewidth=1.6,
            label=f"{label}: final J = {_cost_text(costs[-1])} ({costs.size} iterations{note})",
        )
    values = np.concatenate(drawn)
    # J falls fast, then slowly (3.3 to 0.5 in 50 iterations, to 0.3 in 350 more for the
    # digits); a log axis shows the late progress that a linear one flattens. It takes
    # positive values only, within _LOG_SPAN: matplotlib's log ticks step out several
    # decades beyond the data, which overflows near the float range's ends.
    if values.size and 1 / _LOG_SPAN <= values.min() and values.max() <= _LOG_SPAN:
        ax.set_yscale("log")
        # Plain numbers (0.4, 1, 3) read more easily than 4 x 10^-1 on a cost axis.
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(FuncFormatter(_label_2_3_5))
    elif not values.size:
        ax.set_ylim(0.0, 1.0)  # nothing drawn: an empty axis, not matplotlib's guess
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="iteration", ylabel="cost J", title="Training cost per iteration")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig


def _cost_text(value: float) -> str:
    """A cost for the legend: four decimals as usual, short scientific form when those
    would show nothing (tiny) or too much (huge, up to 309 digits)."""
    if value == 0 or (math.isfinite(value) and 1e-3 <= abs(value) < 1e6):
        return f"{value:.4f}"
    return f"{value:.4g}"


def _label_2_3_5(value, _position):
    """Label the minor ticks 2, 3 and 5 of each decade: enough to read, not crowded."""
    if value <= 0:
        return ""
    mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
    return f"{value:g}" if mantissa in (2, 3, 5) else ""


def plot_confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, classes: ArrayLike | None = None) -> Figure:
    """Counts of true labels (rows) against predicted labels (columns).

    Parameters
    ----------
    y_true, y_pred : array-like, shape (m,)
    classes : array-like, optional
        Labels in the order of the rows and columns; by default every label seen.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = np.union1d(y_true, y_pred) if classes is None else np.asarray(classes)
    fig = _figure(6.2, 5.4)
    ax = fig.add_subplot()
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=labels, ax=ax, cmap="Blues", colorbar=True)
    accuracy = float(np.mean(y_true == y_pred)) if y_true.size else float("nan")
    ax.set_title(f"Confusion matrix: {y_true.size} examples, accuracy {accuracy:.2%}")
    return fig
