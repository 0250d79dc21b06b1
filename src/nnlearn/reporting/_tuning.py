"""Choosing a network's settings by cross-validation: the search behind ``nnlearn tune``.

A grid of candidate settings (lambda, hidden layer sizes, activation, output;
:mod:`nnlearn.reporting._tuning_grid`) is scored by scikit-learn's :class:`~sklearn.model_selection.GridSearchCV` on
:class:`~nnlearn.estimator.NeuralNetClassifier`, with stratified K-fold cross-validation.
The fits run in ``n_jobs`` worker processes, each allowed ``cores // n_jobs`` BLAS threads
(joblib's ``inner_max_num_threads``, which sets the workers' thread limits before their
BLAS starts; threadpoolctl then reports that limit, and nnlearn's data term cuts its
examples into as many shards): processes, since a small network gains nothing from
nnlearn's threads (:mod:`nnlearn.compute._threads` shards only large work), and a limit, since a
worker whose BLAS took every core would fight the others for them. The workers ignore
Ctrl-C: it reaches a terminal's whole process group, and the caller, which started them,
is the one to handle it (``nnlearn tune`` ends them).

The grid is scored ``n_jobs`` candidates at a time (scikit-learn's hook for custom
searches, ``_run_search``), so a progress callback hears of each candidate as it is done.

:func:`nested_check` answers whether the search's choice is better than the course's
settings on data it did not choose on: the search runs inside each outer fold, and the
chosen and the course's settings are both scored on that fold's held-out part.

How every candidate trains, and how many train at once, is a :class:`SearchSettings`;
the figure of a search is :mod:`nnlearn.reporting._tuning_plot`'s.
"""

from __future__ import annotations

import functools
import os
import signal
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..training._settings import DEFAULTS, SETTINGS, check_setting
from ._tuning_grid import COURSE_SETTINGS, make_grid

__all__ = [
    "Candidate",
    "SearchResult",
    "CheckResult",
    "SearchSettings",
    "search",
    "nested_check",
    "fit_and_score",
    "check_folds",
    "check_nested_folds",
    "architecture_of",
    "default_jobs",
]

#: The optimizer a candidate trains with unless told: the estimator's.
ESTIMATOR_OPTIMIZER = SETTINGS["optimizer"].estimator_default

#: How a progress callback is called: ``progress(done, total, candidate)``.
Progress = Callable[[int, int, "Candidate"], None]


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    """How every candidate of a search trains, and how many train at once.

    Attributes
    ----------
    optimizer, max_iter, dtype
        The estimator's (:class:`~nnlearn.estimator.NeuralNetClassifier`); the optimizer
        defaults to the estimator's, the rest to training's (``DEFAULTS``).
    seed : int
        Seeds every fit, and shuffles the folds.
    n_jobs : int, optional
        Worker processes (default: :func:`default_jobs`); each gets ``cores // n_jobs``
        BLAS threads, at least one.
    """

    optimizer: str = ESTIMATOR_OPTIMIZER
    max_iter: int = DEFAULTS.max_iter
    seed: int = DEFAULTS.seed
    dtype: str = DEFAULTS.dtype
    n_jobs: int | None = None

    def checked(self) -> SearchSettings:
        """These settings checked, each training setting by its one check; ``n_jobs`` here."""
        n_jobs = self.n_jobs
        if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1):
            raise ParameterError(f"n_jobs must be an integer >= 1, got {n_jobs!r}")
        names = ("optimizer", "max_iter", "seed", "dtype")
        return replace(self, **{name: check_setting(name, getattr(self, name)) for name in names})


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


def check_nested_folds(y: np.ndarray, outer: int, cv: int, seed: int) -> None:
    """The nested check's folds must fit the data: ``outer`` folds of ``y``, and ``cv``
    folds inside each outer fold's other folds (as :func:`nested_check` cuts them)."""
    y = np.asarray(y)
    outer = check_folds(y, outer, "the data for the check")
    for k, (inside, _) in enumerate(_outer_folds(y, outer, seed), start=1):
        check_folds(y[inside], cv, f"the other folds of outer fold {k} of {outer}")


def _outer_folds(y, outer, seed):
    """The nested check's outer folds: shuffled with ``seed + 1`` (mod 2**32), so that
    they are not the search's own folds."""
    return _folds(outer, (seed + 1) % 2**32).split(np.zeros((len(y), 1)), y)


def _estimator(settings):
    from ..estimator import NeuralNetClassifier

    return NeuralNetClassifier(
        optimizer=settings.optimizer, max_iter=settings.max_iter, random_state=settings.seed, dtype=settings.dtype
    )


def _folds(cv, seed):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(cv, shuffle=True, random_state=seed)


def search(
    X: np.ndarray,
    y: np.ndarray,
    grid: Mapping[str, Sequence] | None = None,
    *,
    cv: int = 5,
    settings: SearchSettings | None = None,
    progress: Progress | None = None,
) -> SearchResult:
    """Score every candidate of ``grid`` by stratified ``cv``-fold cross-validation.

    Parameters
    ----------
    X : ndarray, shape (m, n)
    y : ndarray, shape (m,)
    grid : mapping, optional
        Values of ``lam``, ``hidden_layer_sizes``, ``activation`` and ``output``
        (:func:`~nnlearn.reporting._tuning_grid.make_grid`; default
        :data:`~nnlearn.reporting._tuning_grid.DEFAULT_GRID`).
    cv : int
        Folds, stratified and shuffled with ``settings.seed``.
    settings : SearchSettings, optional
        How every candidate trains and how many at once (default: ``SearchSettings()``'s).
    progress : callable, optional
        ``progress(done, total, candidate)`` as candidates finish.

    Returns
    -------
    SearchResult
    """
    grid = make_grid(**grid) if grid is not None else make_grid()
    settings = (settings or SearchSettings()).checked()
    cv = check_folds(y, cv)
    cores = default_jobs()
    n_jobs = cores if settings.n_jobs is None else settings.n_jobs
    threads = max(1, cores // n_jobs)
    from joblib import parallel_config
    from sklearn.exceptions import ConvergenceWarning

    searcher = _chunked_search()(
        _estimator(settings),
        grid,
        cv=_folds(cv, settings.seed),
        n_jobs=n_jobs,
        refit=False,
        return_train_score=True,
        error_score="raise",
    )
    searcher.progress = progress
    start = time.perf_counter()
    loky = parallel_config(backend="loky", inner_max_num_threads=threads, initializer=_leave_ctrl_c_to_the_caller)
    with warnings.catch_warnings(), loky:
        # A candidate stopped at max_iter is scored as it is; the warning would repeat per fit.
        warnings.simplefilter("ignore", ConvergenceWarning)
        searcher.fit(X, y)
    return SearchResult(_candidates(searcher.cv_results_, cv), cv, n_jobs, threads, time.perf_counter() - start)


def _leave_ctrl_c_to_the_caller():
    """Each worker process's first act: ignore SIGINT. Ctrl-C reaches the terminal's whole
    process group; the process that started the search handles it and ends its workers,
    which would otherwise each stop with a KeyboardInterrupt of their own (and print it
    when it came between two fits)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
    """The grid search class, made on first use: importing this module does not import
    scikit-learn's model selection (``nnlearn --help`` must not, tests/test_tune.py)."""
    from sklearn.model_selection import GridSearchCV, ParameterGrid

    class ChunkedSearch(GridSearchCV):
        """A grid search that scores ``n_jobs`` candidates at a time and reports each.

        ``_run_search`` is scikit-learn's hook for custom searches: every call of
        ``evaluate_candidates`` adds its candidates to ``cv_results_``.
        """

        progress: Progress | None = None

        def __getstate__(self):
            # scikit-learn sends the search itself to every fit (as its ``caller``): the
            # workers need no callback, and a callback need not be picklable.
            return {key: value for key, value in super().__getstate__().items() if key != "progress"}

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


def fit_and_score(X, y, X_test, y_test, params, *, settings: SearchSettings | None = None) -> float:
    """Accuracy on (X_test, y_test) of a network with ``params`` trained on (X, y) as
    ``settings`` say (its ``n_jobs`` is not used: one fit runs here)."""
    from sklearn.exceptions import ConvergenceWarning

    estimator = _estimator(settings or SearchSettings()).set_params(**params)
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
    settings: SearchSettings | None = None,
    progress: Callable[[int, int, dict, float, float], None] | None = None,
) -> CheckResult:
    """Nested cross-validation: is the search's choice better than the course's settings?

    The data are split into ``outer`` stratified folds (shuffled with ``settings.seed + 1``
    (mod 2**32), so that they are not the search's own folds). For each, :func:`search`
    chooses on the other folds alone (with its inner ``cv`` folds and ``settings``); then
    the chosen settings and :data:`~nnlearn.reporting._tuning_grid.COURSE_SETTINGS` are
    each trained on those other folds and scored on the outer fold, which the choice never
    saw. ``progress(k, outer, chosen, chosen_score, course_score)`` follows each outer fold.

    Returns
    -------
    CheckResult
    """
    settings = (settings or SearchSettings()).checked()
    check_nested_folds(y, outer, cv, settings.seed)
    start = time.perf_counter()
    chosen, chosen_scores, course_scores = [], [], []
    for k, (inside, held) in enumerate(_outer_folds(y, outer, settings.seed), start=1):
        X_in, y_in, X_out, y_out = X[inside], y[inside], X[held], y[held]
        best = search(X_in, y_in, grid, cv=cv, settings=settings).best.params
        chosen.append(best)
        chosen_scores.append(fit_and_score(X_in, y_in, X_out, y_out, best, settings=settings))
        course_scores.append(fit_and_score(X_in, y_in, X_out, y_out, COURSE_SETTINGS, settings=settings))
        if progress is not None:
            progress(k, outer, best, chosen_scores[-1], course_scores[-1])
    return CheckResult(chosen, tuple(chosen_scores), tuple(course_scores), time.perf_counter() - start)


def architecture_of(params: Mapping[str, Any]) -> str:
    """``100 relu/softmax``: a candidate's network without its lambda."""
    return f"{'-'.join(map(str, params['hidden_layer_sizes']))} {params['activation']}/{params['output']}"
