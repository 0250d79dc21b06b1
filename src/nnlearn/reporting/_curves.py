"""The course's bias-variance diagnostics: learning and validation curves.

Both are computed by scikit-learn's model-selection tools and drawn as error
(1 - accuracy), training against validation. :class:`CurveSettings` says how their
cross-validated fits run.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure as MatplotlibFigure
from matplotlib.ticker import NullLocator
from numpy.typing import ArrayLike

from ..errors import ParameterError
from ..training._settings import check_setting

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_learning_curve", "plot_validation_curve", "CurveSettings", "COURSE_LAMBDAS", "TRAIN_SIZES"]

#: The course's values of lambda for its validation curve.
COURSE_LAMBDAS = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
#: Fractions of the training folds for the learning curve.
TRAIN_SIZES = (0.1, 0.28, 0.46, 0.64, 0.82, 1.0)


@dataclass(frozen=True, kw_only=True)
class CurveSettings:
    """How a curve's cross-validated fits run.

    Attributes
    ----------
    cv : int or cross-validation splitter
        Folds (stratified for a classifier, as scikit-learn makes them), or a splitter.
    max_iter : int
        Iterations of the default estimator.
    random_state : int or None
        Seeds the default estimator; the learning curve's shuffle of the examples too.
    n_jobs : int, optional
        scikit-learn's worker processes.
    """

    cv: int | Any = 5
    max_iter: int = 100
    random_state: int | None = 0
    n_jobs: int | None = None


def _estimator(given, settings):
    """``given``, or when None the estimator's defaults (the course's network, L-BFGS)."""
    if given is not None:
        return given
    from ..estimator import NeuralNetClassifier

    return NeuralNetClassifier(max_iter=settings.max_iter, random_state=settings.random_state)


class ShownFigure(MatplotlibFigure):
    """matplotlib's Figure with ``_repr_png_``: Jupyter shows it inline whatever the backend.
    (IPython's own display of figures is set up by pyplot's inline backend, which nnlearn's
    figures never touch.)"""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def figure(width: float, height: float) -> Figure:
    """A :class:`ShownFigure` on its own Agg canvas: renders without pyplot or a display, and
    shows itself as a PNG when it is a notebook cell's value."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = ShownFigure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _error_curves(x, train_scores, valid_scores, xlabel, title):
    """Training and validation error (1 - accuracy), each the mean over the folds with a
    band of one standard deviation; returns the figure, its axes and the validation means."""
    fig = figure(7.0, 4.2)
    ax = fig.add_subplot()
    means = []
    for scores, label, marker in ((train_scores, "training error", "o"), (valid_scores, "validation error", "s")):
        errors = 1.0 - scores
        mean, std = errors.mean(axis=1), errors.std(axis=1)
        (line,) = ax.plot(x, mean, marker=marker, label=label)
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        means.append(mean)
    ax.set(xlabel=xlabel, ylabel="error (1 - accuracy)", title=title)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    return fig, ax, means[1]


def plot_learning_curve(
    X: ArrayLike,
    y: ArrayLike,
    estimator: Any = None,
    train_sizes: ArrayLike = TRAIN_SIZES,
    *,
    settings: CurveSettings | None = None,
) -> Figure:
    """Training and validation error against the number of training examples.

    The course's diagnosis: both high and close together is high bias (underfitting);
    a low training error with a validation error well above it is high variance
    (overfitting), which more examples help. Computed by
    :func:`sklearn.model_selection.learning_curve`; error is 1 - accuracy.

    Parameters
    ----------
    X : array-like, shape (m, n)
    y : array-like, shape (m,)
    estimator : scikit-learn classifier, optional
        By default :class:`nnlearn.estimator.NeuralNetClassifier` with 25 hidden units,
        lambda 1 and L-BFGS for ``settings.max_iter`` iterations.
    train_sizes : array-like
        Fractions (or counts) of the training folds, as scikit-learn takes them.
    settings : CurveSettings, optional
        The folds, the default estimator's iterations and seed (which also shuffles the
        examples), and the worker processes (default: ``CurveSettings()``'s).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sklearn.model_selection import learning_curve

    settings = CurveSettings() if settings is None else settings
    sizes, train_scores, valid_scores = learning_curve(
        _estimator(estimator, settings),
        X,
        y,
        train_sizes=train_sizes,
        cv=settings.cv,
        scoring="accuracy",
        shuffle=True,
        random_state=settings.random_state,
        n_jobs=settings.n_jobs,
    )
    title = f"Learning curve ({_cv_name(settings.cv)} cross-validation)"
    fig, ax, _ = _error_curves(sizes, train_scores, valid_scores, "number of training examples m", title)
    ax.legend()
    return fig


def plot_validation_curve(
    X: ArrayLike,
    y: ArrayLike,
    lams: ArrayLike = COURSE_LAMBDAS,
    estimator: Any = None,
    param_name: str = "lam",
    *,
    settings: CurveSettings | None = None,
) -> Figure:
    """Training and validation error against the regularisation strength lambda.

    Small lambda: a low training error and a higher validation error (variance);
    large lambda: both high (bias). The lambda with the lowest validation error is
    marked. Computed by :func:`sklearn.model_selection.validation_curve`.

    Parameters
    ----------
    X, y, estimator, settings
        As in :func:`plot_learning_curve` (``settings.random_state`` seeds only the
        default estimator here).
    lams : sequence of float
        The values tried; by default the course's 0, 0.001, 0.003, ..., 10.
    param_name : str
        The estimator's name for lambda (``"alpha"`` for scikit-learn's MLPClassifier).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sklearn.model_selection import validation_curve

    settings = CurveSettings() if settings is None else settings
    lams = np.asarray(lams, dtype=np.float64)
    if lams.ndim != 1 or lams.size == 0:
        raise ParameterError(f"lams must be a non-empty sequence of lambdas, got {lams.tolist()}")
    for lam in lams:
        check_setting("lam", float(lam), "lams")
    train_scores, valid_scores = validation_curve(
        _estimator(estimator, settings),
        X,
        y,
        param_name=param_name,
        param_range=lams,
        cv=settings.cv,
        scoring="accuracy",
        n_jobs=settings.n_jobs,
    )
    title = f"Validation curve ({_cv_name(settings.cv)} cross-validation)"
    fig, ax, valid = _error_curves(lams, train_scores, valid_scores, "lambda", title)
    best = int(np.argmin(valid))
    ax.axvline(lams[best], color="gray", linestyle="--", linewidth=1, label=f"best lambda = {lams[best]:g}")
    # A symmetric log axis spreads the course's 0.001 ... 10 evenly and still shows 0.
    positive = lams[lams > 0]
    ax.set_xscale("symlog", linthresh=positive.min() if positive.size else 1.0)
    ax.set_xlim(lams.min(), lams.max() * 1.2 if lams.max() > 0 else 1.0)
    ax.set_xticks(lams, [f"{lam:g}" for lam in lams], fontsize=8)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.legend()
    return fig


def _cv_name(cv):
    return f"{cv}-fold" if isinstance(cv, int) else type(cv).__name__
