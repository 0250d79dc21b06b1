"""Fitting weights: the named optimiser run from a starting point on the examples.

:func:`fit_weights` is the step of :func:`nnlearn.training.fit` that optimises: the
full-batch optimisers (:mod:`nnlearn.optimize`) get ``fun(x) -> (J, grad)`` over a data
term (:mod:`nnlearn.objective`; this machine's cores by default), the mini-batch ones
(:mod:`nnlearn.minibatch`) ``fun(x, rows)`` over a batch, with a stratified part held out
when they stop early (:func:`hold_out`). A run that diverges ends in a
:class:`TrainingError`; one whose examples are lost keeps the weights of its last iteration.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .core import Network
from .errors import ExamplesLost, ParameterError, TrainingError
from .minibatch import minimize_minibatch
from .objective import DataTerm, accuracy, batch_objective, full_objective
from .optimize import minimize
from .results import OptimizeResult
from .settings import MiniBatch, Options
from .threads import ShardedDataTerm, blas_threads

__all__ = ["fit_weights", "hold_out", "DataTermFactory"]

#: Makes the data term of a run: ``(X, Y, network, sample_weight) -> DataTerm``.
DataTermFactory = Callable[[np.ndarray, np.ndarray, Network, "np.ndarray | None"], DataTerm]


def _streams(seed):
    """Independent shuffling and validation-split seeds from one seed (a Generator serves both)."""
    if isinstance(seed, np.random.Generator):
        return seed, seed
    return tuple(np.random.SeedSequence(seed).spawn(2))


def hold_out(X, Y, sample_weight, fraction, seed):
    """Stratified split of a validation fraction for early stopping.

    Returns
    -------
    train : tuple (X, Y, sample_weight)
    validation : tuple (X, labels, sample_weight), labels = the output unit to be most active
    """
    from sklearn.model_selection import train_test_split

    labels = np.argmax(Y, axis=1)
    state = int(np.random.default_rng(seed).integers(2**31 - 1))
    try:
        fit_rows, val_rows = train_test_split(
            np.arange(X.shape[0]), test_size=fraction, random_state=state, stratify=labels
        )
    except ValueError as exc:
        raise ParameterError(
            f"early stopping cannot hold out a stratified validation_fraction={fraction} of "
            f"{X.shape[0]} examples ({exc}); change validation_fraction or turn early stopping off"
        ) from None
    weights = (None, None) if sample_weight is None else (sample_weight[fit_rows], sample_weight[val_rows])
    return (X[fit_rows], Y[fit_rows], weights[0]), (X[val_rows], labels[val_rows], weights[1])


def _fit_minibatch(X, Y, network, x0, options, *, sample_weight, callback, checkpoint, resume, shuffle, state):
    settings: MiniBatch = options.minibatch
    shuffle_seed, split_seed = _streams(options.seed if shuffle is None else shuffle)
    validation_score = None
    if settings.early_stopping:
        (X, Y, sample_weight), validation = hold_out(X, Y, sample_weight, settings.validation_fraction, split_seed)
        validation_score = accuracy(*validation[:2], network, validation[2])
    # Unlike the full-batch objective, a batch's products are too small to share between
    # threads (docs/benchmarks.md), so batches stay on the optimiser's one thread.
    fun = batch_objective(X, Y, options.lam, network, sample_weight)
    return minimize_minibatch(
        fun,
        x0,
        X.shape[0],
        options.optimizer,
        options.max_iter,
        options.tol,
        callback,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        n_iter_no_change=settings.n_iter_no_change,
        seed=shuffle_seed,
        validation_score=validation_score,
        state=state,
        checkpoint=checkpoint,
        resume=resume,
    )


def fit_weights(
    X: np.ndarray,
    Y: np.ndarray,
    network: Network,
    x0: np.ndarray,
    options: Options,
    *,
    sample_weight=None,
    callback=None,
    checkpoint=None,
    resume=None,
    shuffle=None,
    state=None,
    data_term: DataTermFactory = ShardedDataTerm,
) -> OptimizeResult:
    """Run the optimiser ``options`` name from ``x0`` on checked, converted data.

    Parameters
    ----------
    X : ndarray, shape (m, n), float64 or float32
    Y : ndarray, shape (m, K), one-hot, X's dtype
    network : Network
    x0 : ndarray, shape (p,), float64
    options : Options
        Checked options; its optimiser, lambda, iterations, tolerance and mini-batch settings.
    sample_weight, callback, checkpoint, resume
        As for :func:`train`.
    shuffle : numpy.random.Generator, optional
        Mini-batch optimisers: shuffle with it instead of ``options.seed`` (to continue a run).
    state : dict, optional
        Mini-batch optimisers: an earlier run's optimiser state, to continue it.
    data_term : callable
        ``data_term(X, Y, network, sample_weight)`` makes the full-batch optimisers' data
        term (:class:`nnlearn.objective.DataTerm`); this machine's cores by default.

    Returns
    -------
    OptimizeResult
        A :class:`~nnlearn.minibatch.MinibatchResult` for the mini-batch optimisers.

    Raises
    ------
    TrainingError
        When the cost or the weights end non-finite.
    """
    # The data term shares the examples among the threads (nnlearn.threads), so it is
    # made before the optimiser's own small vector work is held to one thread: OpenBLAS
    # threads fighting over that work made L-BFGS-B several times slower (docs/benchmarks.md).
    term = None if options.is_minibatch else data_term(X, Y, network, sample_weight)
    trail = _Trail(callback)
    # Overflow on the way to a non-finite cost is reported once, as a TrainingError below,
    # not as NumPy's warnings on the way.
    with blas_threads(1), np.errstate(over="ignore", invalid="ignore"):
        if term is None:  # a mini-batch optimiser
            result = _fit_minibatch(
                X,
                Y,
                network,
                x0,
                options,
                sample_weight=sample_weight,
                callback=callback,
                checkpoint=checkpoint,
                resume=resume,
                shuffle=shuffle,
                state=state,
            )
        else:
            try:
                result = minimize(
                    full_objective(term, options.lam),
                    x0,
                    options.optimizer,
                    options.max_iter,
                    options.tol,
                    trail,
                    resume,
                    checkpoint,
                )
            except ExamplesLost as exc:
                exc.result = trail.result(x0, str(exc))  # type: ignore[attr-defined]
                raise
    if result.reason == "not_finite" or not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        hint = "; try a smaller learning_rate" if options.is_minibatch else ""
        if options.lam > 1e100:
            hint = f"; lambda {options.lam:g} makes the penalty overflow, use a smaller one"
        raise TrainingError(
            f"training diverged: the cost or its gradient stopped being finite after iteration {result.n_iter}{hint}"
        )
    return result


class _Trail:
    """A callback that remembers the last iteration's weights before calling ``callback``:
    what is kept when the examples are lost mid-run."""

    def __init__(self, callback):
        self.callback, self.x, self.costs = callback, None, []

    def __call__(self, iteration, J, x):
        self.x = np.array(x, copy=True)
        self.costs.append(float(J))
        if self.callback is not None:
            self.callback(iteration, J, x)

    def result(self, x0, message):
        x = x0 if self.x is None else self.x
        fun = self.costs[-1] if self.costs else float("nan")
        n = len(self.costs)
        return OptimizeResult(
            x=x,
            fun=fun,
            n_iter=n,
            n_evals=0,
            history=list(self.costs),
            message=message,
            interrupted=True,
            reason="interrupted",
        )
