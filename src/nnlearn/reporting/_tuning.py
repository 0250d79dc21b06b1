"""Choosing a network's settings by cross-validation: the search behind ``nnlearn tune``.

A grid of candidate settings (lambda, hidden layer sizes, activation, output) is scored
by scikit-learn's :class:`~sklearn.model_selection.GridSearchCV` on
:class:`~nnlearn.estimator.NeuralNetClassifier`, with stratified K-fold cross-validation.
The fits run in ``n_jobs`` worker processes, each allowed ``cores // n_jobs`` BLAS threads
(joblib's ``inner_max_num_threads``, which sets the workers' thread limits before their
BLAS starts; threadpoolctl then reports that limit, and nnlearn's data term cuts its
examples into as many shards): processes, since a small network gains nothing from
nnlearn's threads (:mod:`nnlearn.compute._threads` shards only large work), and a limit, since a
worker whose BLAS took every core would fight the others for them.

The grid is scored ``n_jobs`` candidates at a time (scikit-learn's hook for custom
searches, ``_run_search``), so a progress callback hears of each candidate as it is done.

:func:`nested_check` answers whether the search's choice is better than the course's
settings on data it did not choose on: the search runs inside each outer fold, and the
chosen and the course's settings are both scored on that fold's held-out part.
"""

from __future__ import annotations

import functools
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ParameterError
from ..training._settings import DEFAULTS, SETTINGS, check_setting

ESTIMATOR_OPTIMIZER = SETTINGS["optimizer"].estimator_default

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_GRID",
    "COURSE_SETTINGS",
    "Candidate",
    "SearchResult",
    "CheckResult",
    "make_grid",
    "grid_values",
    "search",
    "nested_check",
    "plot_search",
    "default_jobs",
]

#: The searched settings and their values when not overridden: lambda a decade either side
#: of the course's 1, the course's 25 hidden units and a wider layer, and the course's
#: sigmoid against relu units and a softmax output: 24 candidates, which 5-fold CV on
#: digits8's 1437 training digits scores in about a minute on 2 cores (docs/quality.md).
DEFAULT_GRID: dict[str, tuple] = {
    "lam": (0.1, 1.0, 10.0),
    "hidden_layer_sizes": ((25,), (100,)),
    "activation": ("sigmoid", "relu"),
    "output": ("sigmoid", "softmax"),
}
#: The course's settings, which :func:`nested_check` scores the search's choice against.
COURSE_SETTINGS: dict[str, Any] = {
    "lam": DEFAULTS.lam,
    "hidden_layer_sizes": DEFAULTS.hidden_layer_sizes,
    "activation": DEFAULTS.activation,
    "output": DEFAULTS.output,
}
#: How a progress callback is called: ``progress(done, total, candidate)``.
Progress = Callable[[int, int, "Candidate"], None]


@dataclass(frozen=True)
class Candidate:
    """One candidate's settings and its cross-validated accuracy.

    ``scores`` are the validation folds' accuracies (in fold order), ``train_accuracy``
    the mean accuracy on the folds' training parts, ``fit_seconds`` the mean time of a
    fit, ``rank`` 1 for the best (ties share a rank, scikit-learn's ``rank_test_score``).
    """

    params: dict[str, Any]
    scores: tuple[float, ...]
    train_accuracy: float
    fit_seconds: float
    rank: int = 0

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        return float(np.std(self.scores))

    def describe(self) -> str:
        """``lambda 1, 100 relu/softmax``: the settings in a few words."""
        p = self.params
        hidden = "-".join(map(str, p["hidden_layer_sizes"]))
        return f"lambda {p['lam']:g}, {hidden} {p['activation']}/{p['output']}"


@dataclass(frozen=True)
class SearchResult:
    """What :func:`search` found: every candidate (in grid order), and the best."""

    candidates: list[Candidate]
    folds: int
    n_jobs: int
    threads_per_job: int
    seconds: float

    @property
    def best(self) -> Candidate:
        """The best candidate; among equals, the first in grid order (scikit-learn's choice)."""
        return min(self.candidates, key=lambda c: c.rank)

    def ranked(self) -> list[Candidate]:
        return sorted(self.candidates, key=lambda c: c.rank)


@dataclass(frozen=True)
class CheckResult:
    """The nested check: per outer fold, the settings chosen on its other folds, and the
    chosen and the course's settings' accuracy on it."""

    chosen: list[dict[str, Any]]
    chosen_scores: tuple[float, ...]
    course_scores: tuple[float, ...]
    seconds: float = field(default=0.0)

    @property
    def wins(self) -> int:
        """Outer folds on which the chosen settings scored higher than the course's."""
        return sum(a > b for a, b in zip(self.chosen_scores, self.course_scores, strict=True))


def make_grid(
    lam: Sequence[float] | None = None,
    hidden_layer_sizes: Sequence[int | Sequence[int]] | None = None,
    activation: Sequence[str] | None = None,
    output: Sequence[str] | None = None,
) -> dict[str, tuple]:
    """The search grid: :data:`DEFAULT_GRID` with the values given in place of its own.

    Every value is checked (:class:`ParameterError` naming it) and repeats are dropped.
    """
    given = {"lam": lam, "hidden_layer_sizes": hidden_layer_sizes, "activation": activation, "output": output}
    return {key: grid_values(key, DEFAULT_GRID[key] if values is None else values) for key, values in given.items()}


def grid_values(key: str, values: Sequence) -> tuple:
    """The values of one setting of the grid, checked, in order, without repeats."""
    checks: dict[str, Callable[[Any], Any]] = {
        "lam": lambda value: check_setting("lam", value),
        "hidden_layer_sizes": lambda value: check_setting("hidden_layer_sizes", value),
        "activation": _activation,
        "output": _output,
    }
    if key not in checks:
        raise ParameterError(f"the grid has no setting {key!r}; it searches {', '.join(checks)}")
    values = tuple(values)
    if not values:
        raise ParameterError(f"the grid needs at least one value of {key}")
    return tuple(dict.fromkeys(checks[key](v) for v in values))


def _activation(name: str) -> str:
    return check_setting("activation", name)


def _output(name: str) -> str:
    return check_setting("output", name)


def default_jobs() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_folds(y: np.ndarray, cv: int, what: str = "the data") -> int:
    """``cv`` must be an integer >= 2 that every class has examples enough for."""
    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ParameterError(f"cv must be an integer >= 2 (folds), got {cv!r}")
    smallest = int(np.unique(y, return_counts=True)[1].min())
    if smallest < cv:
        raise ParameterError(
            f"{cv} folds need at least {cv} examples of every class; {what} have {smallest} of their rarest"
        )
    return int(cv)


def _estimator(optimizer, max_iter, seed, dtype):
    from ..estimator import NeuralNetClassifier

    return NeuralNetClassifier(optimizer=optimizer, max_iter=max_iter, random_state=seed, dtype=dtype)


def _folds(cv, seed):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(cv, shuffle=True, random_state=seed)


def search(
    X: np.ndarray,
    y: np.ndarray,
    grid: Mapping[str, Sequence] | None = None,
    *,
    optimizer: str = ESTIMATOR_OPTIMIZER,
    max_iter: int = DEFAULTS.max_iter,
    cv: int = 5,
    seed: int = DEFAULTS.seed,
    dtype: str = DEFAULTS.dtype,
    n_jobs: int | None = None,
    progress: Progress | None = None,
) -> SearchResult:
    """Score every candidate of ``grid`` by stratified ``cv``-fold cross-validation.

    Parameters
    ----------
    X : ndarray, shape (m, n)
    y : ndarray, shape (m,)
    grid : mapping, optional
        Values of ``lam``, ``hidden_layer_sizes``, ``activation`` and ``output``
        (:func:`make_grid`; default :data:`DEFAULT_GRID`).
    optimizer, max_iter, dtype
        How every candidate trains (the estimator's parameters).
    cv : int
        Folds, stratified and shuffled with ``seed``, which also seeds every fit.
    n_jobs : int, optional
        Worker processes (default: :func:`default_jobs`); each gets ``cores // n_jobs``
        BLAS threads, at least one.
    progress : callable, optional
        ``progress(done, total, candidate)`` as candidates finish.

    Returns
    -------
    SearchResult
    """
    grid = make_grid(**grid) if grid is not None else make_grid()
    check_setting("max_iter", max_iter)
    cv = check_folds(y, cv)
    cores = default_jobs()
    n_jobs = cores if n_jobs is None else n_jobs
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ParameterError(f"n_jobs must be an integer >= 1, got {n_jobs!r}")
    threads = max(1, cores // n_jobs)
    from joblib import parallel_config
    from sklearn.exceptions import ConvergenceWarning

    searcher = _chunked_search()(
        _estimator(optimizer, max_iter, seed, dtype),
        grid,
        cv=_folds(cv, seed),
        n_jobs=n_jobs,
        refit=False,
        return_train_score=True,
        error_score="raise",
    )
    searcher.progress = progress
    start = time.perf_counter()
    with warnings.catch_warnings(), parallel_config(backend="loky", inner_max_num_threads=threads):
        # A candidate stopped at max_iter is scored as it is; the warning would repeat per fit.
        warnings.simplefilter("ignore", ConvergenceWarning)
        searcher.fit(X, y)
    return SearchResult(_candidates(searcher.cv_results_, cv), cv, n_jobs, threads, time.perf_counter() - start)


def _candidates(results, cv):
    """The candidates in ``cv_results_``, as :class:`Candidate`."""
    ranks = results.get("rank_test_score")
    return [
        Candidate(
            params=dict(results["params"][i]),
            scores=tuple(float(results[f"split{k}_test_score"][i]) for k in range(cv)),
            train_accuracy=float(results["mean_train_score"][i]),
            fit_seconds=float(results["mean_fit_time"][i]),
            rank=int(ranks[i]) if ranks is not None else 0,
        )
        for i in range(len(results["params"]))
    ]


@functools.cache
def _chunked_search() -> type:
    """The grid search class, made on first use: importing this module (as ``nnlearn
    --help`` does, for the default grid) does not import scikit-learn's model selection."""
    from sklearn.model_selection import GridSearchCV, ParameterGrid

    class ChunkedSearch(GridSearchCV):
        """A grid search that scores ``n_jobs`` candidates at a time and reports each.

        ``_run_search`` is scikit-learn's hook for custom searches: every call of
        ``evaluate_candidates`` adds its candidates to ``cv_results_``.
        """

        progress: Progress | None = None

        def _run_search(self, evaluate_candidates):
            candidates = list(ParameterGrid(self.param_grid))
            step = max(1, self.n_jobs or 1)
            for start in range(0, len(candidates), step):
                results = evaluate_candidates(candidates[start : start + step])
                done = min(start + step, len(candidates))
                if self.progress is not None:
                    for i, candidate in enumerate(_candidates(results, self.cv.get_n_splits())[start:done], start):
                        self.progress(i + 1, len(candidates), candidate)

    return ChunkedSearch


def fit_and_score(X, y, X_test, y_test, params, *, optimizer, max_iter, seed, dtype) -> float:
    """Accuracy on (X_test, y_test) of a network with ``params`` trained on (X, y)."""
    from sklearn.exceptions import ConvergenceWarning

    estimator = _estimator(optimizer, max_iter, seed, dtype).set_params(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    return float(estimator.score(X_test, y_test))


def nested_check(
    X: np.ndarray,
    y: np.ndarray,
    grid: Mapping[str, Sequence] | None = None,
    *,
    outer: int = 3,
    cv: int = 5,
    optimizer: str = ESTIMATOR_OPTIMIZER,
    max_iter: int = DEFAULTS.max_iter,
    seed: int = DEFAULTS.seed,
    dtype: str = DEFAULTS.dtype,
    n_jobs: int | None = None,
    progress: Callable[[int, int, dict, float, float], None] | None = None,
) -> CheckResult:
    """Nested cross-validation: is the search's choice better than the course's settings?

    The data are split into ``outer`` stratified folds (shuffled with ``seed + 1`` (mod 2**32), so
    that they are not the search's own folds). For each, :func:`search` chooses on the
    other folds alone (with its inner ``cv`` folds); then the chosen settings and
    :data:`COURSE_SETTINGS` are each trained on those other folds and scored on the
    outer fold, which the choice never saw. ``progress(k, outer, chosen, chosen_score,
    course_score)`` follows each outer fold.

    Returns
    -------
    CheckResult
    """
    outer = check_folds(y, outer, "the data for the check")
    start = time.perf_counter()
    chosen, chosen_scores, course_scores = [], [], []
    train: dict[str, Any] = {"optimizer": optimizer, "max_iter": max_iter, "seed": seed, "dtype": dtype}
    for k, (inside, held) in enumerate(_folds(outer, (seed + 1) % 2**32).split(X, y), start=1):
        X_in, y_in, X_out, y_out = X[inside], y[inside], X[held], y[held]
        best = search(X_in, y_in, grid, cv=cv, n_jobs=n_jobs, **train).best.params
        chosen.append(best)
        chosen_scores.append(fit_and_score(X_in, y_in, X_out, y_out, best, **train))
        course_scores.append(fit_and_score(X_in, y_in, X_out, y_out, COURSE_SETTINGS, **train))
        if progress is not None:
            progress(k, outer, best, chosen_scores[-1], course_scores[-1])
    return CheckResult(chosen, tuple(chosen_scores), tuple(course_scores), time.perf_counter() - start)


def architecture_of(params: Mapping[str, Any]) -> str:
    """``100 relu/softmax``: a candidate's network without its lambda."""
    return f"{'-'.join(map(str, params['hidden_layer_sizes']))} {params['activation']}/{params['output']}"


def plot_search(result: SearchResult) -> Figure:
    """The validation curve of a search: mean CV accuracy against lambda, one line per
    network (hidden layers, activation, output), with a band of one standard deviation
    over the folds and the best candidate ringed."""
    from ._curves import figure

    fig = figure(9.0, 4.6)
    ax = fig.add_subplot()
    lines: dict[str, list[Candidate]] = {}
    for candidate in result.candidates:
        lines.setdefault(architecture_of(candidate.params), []).append(candidate)
    for name, members in lines.items():
        members.sort(key=lambda c: c.params["lam"])
        lam = np.array([c.params["lam"] for c in members])
        mean = np.array([c.mean for c in members])
        std = np.array([c.std for c in members])
        (line,) = ax.plot(lam, 100 * mean, marker="o", label=name)
        # Bands of many lines hide each other: fainter the more there are.
        alpha = 0.15 if len(lines) <= 3 else 0.05
        ax.fill_between(lam, 100 * (mean - std), 100 * (mean + std), color=line.get_color(), alpha=alpha)
    best = result.best
    ax.plot([best.params["lam"]], [100 * best.mean], "o", ms=14, mfc="none", mec="black", label="chosen")
    _lambda_axis(ax, sorted({c.params["lam"] for c in result.candidates}))
    ax.set(
        xlabel="lambda",
        ylabel=f"accuracy (%), mean of {result.folds} folds",
        title=f"Cross-validated accuracy: chosen {best.describe()}, {100 * best.mean:.2f}%",
    )
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return fig


def _lambda_axis(ax, lambdas):
    """A log axis for lambda; symmetric-log when 0 is among the values, linear near 0."""
    positive = [lam for lam in lambdas if lam > 0]
    if not positive:
        return
    if len(positive) < len(lambdas):
        ax.set_xscale("symlog", linthresh=min(positive))
    else:
        ax.set_xscale("log")
    ax.set_xticks(lambdas, [f"{lam:g}" for lam in lambdas])
    ax.minorticks_off()
    if math.isclose(min(lambdas), max(lambdas)):
        ax.set_xlim(min(lambdas) / 2 if lambdas[0] > 0 else -1, max(lambdas) * 2 or 1)
