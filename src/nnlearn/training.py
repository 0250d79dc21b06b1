"""Training: from data and :class:`~nnlearn.settings.Options` to a :class:`~nnlearn.model.Model`.

One fitting path serves every surface: :func:`fit` takes checked data and options, picks
the starting weights, runs the optimiser on a data term (:mod:`nnlearn.objective`) and
returns the model; :func:`train` (the library and the command line) and
:class:`nnlearn.NeuralNetClassifier` check their inputs their own way and call it.

Full-batch optimisers (:mod:`nnlearn.optimize`) see ``fun(x) -> (J, grad)`` over all
examples; mini-batch ones (:mod:`nnlearn.minibatch`) see ``fun(x, rows)`` over a batch,
scaled so that the full objective is what they minimise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np

from .core import Network, NetworkLike, init_random, one_hot, pack, unpack
from .datasets import check_dataset
from .errors import DataError, ExamplesLost, ParameterError, ShapeError, TrainingError
from .minibatch import minimize_minibatch
from .model import Model
from .objective import DataTerm, Objective, accuracy, batch_objective, full_objective
from .optimize import OptimizeResult, minimize
from .settings import (
    DEFAULTS,
    MiniBatch,
    Options,
    check_cluster_optimizer,
    check_epsilon,
    check_memory,
    check_sample_weight,
)
from .threads import ShardedDataTerm, blas_threads, default_threads

__all__ = ["train", "fit", "Fitted", "fit_weights", "initial_weights", "make_objective", "make_batch_objective"]

#: Makes the data term of a run: ``(X, Y, network, sample_weight) -> DataTerm``.
DataTermFactory = Callable[..., DataTerm]


def make_objective(
    X: np.ndarray,
    Y: np.ndarray,
    lam: float,
    network: NetworkLike,
    sample_weight: np.ndarray | None = None,
    threads: int | None = None,
) -> Objective:
    """``fun(x) -> (J, grad)`` over this machine's cores (:class:`~nnlearn.threads.ShardedDataTerm`).

    ``network`` is a :class:`~nnlearn.core.Network` (or layer sizes: the course's
    network); ``threads`` None means :func:`~nnlearn.threads.default_threads`.
    """
    return full_objective(ShardedDataTerm(X, Y, network, sample_weight, threads), lam)


def make_batch_objective(
    X: np.ndarray, Y: np.ndarray, lam: float, network: NetworkLike, sample_weight: np.ndarray | None = None
):
    """``fun(x, rows) -> (J_B, grad)``, see :func:`nnlearn.objective.batch_objective`."""
    return batch_objective(X, Y, lam, Network.of(network), sample_weight)


def initial_weights(
    network: NetworkLike,
    epsilon_init: float | str = DEFAULTS.epsilon_init,
    seed=DEFAULTS.seed,
    initial_thetas: Sequence[np.ndarray] | None = None,
    m: int = 0,
) -> np.ndarray:
    """The starting point as a flat float64 vector: ``initial_thetas`` or random weights.

    ``m``, the number of examples, lets the memory check count the activations too.
    """
    network = Network.of(network)
    check_memory(network, m)
    check_epsilon(epsilon_init)
    if initial_thetas is None:
        initial_thetas = init_random(network, epsilon_init, rng=seed)
    shapes = [np.shape(theta) for theta in initial_thetas]
    if shapes != network.theta_shapes:
        raise ShapeError(
            f"initial weights have shapes {shapes}; layer sizes {network.layer_sizes} need {network.theta_shapes}"
        )
    return pack(initial_thetas).astype(np.float64)


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
    # The data term shares the examples among the threads (nnlearn.threads); the
    # optimiser's own small vector work runs single-threaded: OpenBLAS threads fighting
    # over it made L-BFGS-B several times slower (docs/benchmarks.md).
    threads = default_threads()
    trail = _Trail(callback)
    # Overflow on the way to a non-finite cost is reported once, as a TrainingError below,
    # not as NumPy's warnings on the way.
    with blas_threads(1), np.errstate(over="ignore", invalid="ignore"):
        if options.is_minibatch:
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
            term = data_term(X, Y, network, sample_weight, threads=threads)
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


@dataclass(frozen=True)
class Fitted:
    """What :func:`fit` returns: the model and the optimiser's result (its trail and state)."""

    model: Model
    result: OptimizeResult


def fit(
    X: np.ndarray,
    y: np.ndarray,
    options: Options,
    *,
    classes=None,
    sample_weight=None,
    initial_thetas=None,
    callback=None,
    checkpoint=None,
    resume=None,
    shuffle=None,
    state=None,
    data_term: DataTermFactory = ShardedDataTerm,
    local: bool = True,
) -> Fitted:
    """The one fitting path: checked data and checked options to a trained model.

    Parameters
    ----------
    X : ndarray, shape (m, n), in ``options.dtype``
    y : ndarray, shape (m,)
    options : Options
        Checked (:meth:`~nnlearn.settings.Options.checked`).
    classes : ndarray, optional
        The labels of the output units (default: ``np.unique(y)``).
    sample_weight : ndarray, shape (m,), optional
    initial_thetas : list of ndarray, optional
        Start here instead of at random weights drawn with ``options.seed``.
    callback, checkpoint, resume, shuffle, state, data_term
        As for :func:`fit_weights`.
    local : bool
        The examples are computed on this machine; False (a cluster's data term) leaves
        their activations out of this machine's memory check.

    Raises
    ------
    ExamplesLost
        When the data term's examples could not be reached any more; its ``model`` holds
        the weights reached before.
    """
    classes, Y = one_hot(y, classes)
    network = options.network(X.shape[1], classes.size)
    x0 = initial_weights(network, options.epsilon_init, options.seed, initial_thetas, m=X.shape[0] if local else 0)
    start = time.perf_counter()

    def model_of(result):
        thetas = [theta.astype(X.dtype) for theta in unpack(result.x, network)]
        history = _history(options, result, time.perf_counter() - start)
        return Model(thetas, classes, options.lam, history, network=network)

    try:
        result = fit_weights(
            X,
            Y.astype(X.dtype),
            network,
            x0,
            options,
            sample_weight=sample_weight,
            callback=callback,
            checkpoint=checkpoint,
            resume=resume,
            shuffle=shuffle,
            state=state,
            data_term=data_term,
        )
    except ExamplesLost as exc:
        exc.model = model_of(exc.result)  # type: ignore[attr-defined]
        raise
    return Fitted(model_of(result), result)


def _history(options, result, seconds):
    history = {
        "cost": result.history,
        "optimizer": options.optimizer,
        "max_iter": options.max_iter,
        "n_iter": result.n_iter,
        "n_evals": result.n_evals,
        "message": result.message,
        "stop_reason": result.reason,
        "interrupted": result.interrupted,
        "seed": options.seed if isinstance(options.seed, int) else None,
        "dtype": options.dtype,
        "epsilon_init": options.epsilon_init,
        "seconds": seconds,
    }
    if options.is_minibatch:
        history.update(
            batch_size=options.minibatch.batch_size,
            learning_rate=options.minibatch.learning_rate,
            validation_scores=getattr(result, "validation_scores", []),
        )
    return history


def train(
    X,
    y,
    hidden_layer_sizes=DEFAULTS.hidden_layer_sizes,
    lam=DEFAULTS.lam,
    optimizer=DEFAULTS.optimizer,
    max_iter=DEFAULTS.max_iter,
    *,
    seed=DEFAULTS.seed,
    dtype=DEFAULTS.dtype,
    activation=DEFAULTS.activation,
    output=DEFAULTS.output,
    epsilon_init=DEFAULTS.epsilon_init,
    tol=DEFAULTS.tol,
    callback=None,
    initial_thetas=None,
    sample_weight=None,
    batch_size=DEFAULTS.minibatch.batch_size,
    learning_rate=DEFAULTS.minibatch.learning_rate,
    early_stopping=DEFAULTS.minibatch.early_stopping,
    validation_fraction=DEFAULTS.minibatch.validation_fraction,
    n_iter_no_change=DEFAULTS.minibatch.n_iter_no_change,
    checkpoint=None,
    resume=None,
    options: Options | None = None,
    cluster=None,
) -> Model:
    """Train a network by backpropagation and a full-batch or mini-batch optimiser.

    Parameters
    ----------
    X : array-like, shape (m, n)
    y : array-like, shape (m,)
        Labels of any kind; the output units stand for ``np.unique(y)`` in order.
    hidden_layer_sizes : sequence of int
    lam : float
        Regularisation strength lambda.
    optimizer : {"cg", "lbfgs", "fmincg", "sgd", "adam"}
        Full-batch (:mod:`nnlearn.optimize`) or mini-batch (:mod:`nnlearn.minibatch`).
    max_iter : int
        Iterations; for ``"sgd"`` and ``"adam"`` an iteration is an epoch.
    seed : int
        Seeds the random initial weights (and, for the mini-batch optimisers, the
        shuffling and validation split): the same seed gives the same model.
    dtype : {"float64", "float32"}
        Precision of the cost and gradient computation.
    activation : {"sigmoid", "tanh", "relu"}
        The hidden units' activation (any key of :data:`nnlearn.core.ACTIVATIONS`); the
        course's is the sigmoid.
    output : {"sigmoid", "softmax"}
        The output layer and its loss (any key of :data:`nnlearn.core.OUTPUTS`): the
        course's independent sigmoid units with per-unit cross-entropy, or a softmax
        with multinomial cross-entropy.
    epsilon_init : float or "auto"
        Half-width of the uniform initial weights (see :func:`nnlearn.core.init_random`;
        ``"auto"`` scales it to each layer, He's scale for relu).
    tol : float, optional
        Optimiser tolerance (see :func:`nnlearn.optimize.minimize` and
        :func:`nnlearn.minibatch.minimize_minibatch`).
    callback : callable, optional
        ``callback(iteration, J, x)`` after each iteration; may raise StopIteration.
    initial_thetas : list of ndarray, optional
        Start from these weights instead of random ones.
    sample_weight : array-like, shape (m,), optional
        Example weights; a weight of 2 counts like the example given twice.
    batch_size, learning_rate, early_stopping, validation_fraction, n_iter_no_change
        Mini-batch settings (ignored by the full-batch optimisers): examples per step,
        step size (None: ``nnlearn.minibatch.LEARNING_RATES``), and scikit-learn's
        stopping rule, on a held-out stratified fraction when ``early_stopping``.
    checkpoint : callable, optional
        ``checkpoint(state)`` after each iteration, with the optimiser's state (a dict of
        arrays, numbers and lists; :func:`nnlearn.modelio.save_checkpoint` writes it).
    resume : dict, optional
        A state handed to ``checkpoint`` by an earlier run with the same data and
        settings: continue that run to the weights the uninterrupted run reaches. fmincg,
        sgd and adam go on where they were; SciPy's cg and lbfgs keep their inner state
        to themselves and replay the saved iterations first.
    options : Options, optional
        All the settings above as one :class:`~nnlearn.settings.Options`; given, it
        replaces them.
    cluster : distributed.Client, str or int, optional
        Train on a Dask cluster (:mod:`nnlearn.cluster`, ``pip install "nnlearn[cluster]"``):
        a client, a scheduler address, or a number of local worker processes. ``X`` may
        then be a Dask array (e.g. :func:`nnlearn.datasets.load_shards`), whose chunks stay
        on the workers. Full-batch optimisers only.

    Returns
    -------
    Model
        Its ``history`` adds, for mini-batch runs, ``batch_size``, ``learning_rate`` and
        ``validation_scores``.
    """
    if options is None:
        minibatch = MiniBatch(batch_size, learning_rate, n_iter_no_change, early_stopping, validation_fraction)
        options = Options(
            hidden_layer_sizes, activation, output, lam, optimizer, max_iter, tol, seed, dtype, epsilon_init, minibatch
        )
    options = options.checked()
    terms: AbstractContextManager[DataTermFactory]
    if cluster is not None:
        check_cluster_optimizer(options.optimizer)
        from .cluster import check_cluster_dataset, data_term_on

        X, y = check_cluster_dataset(X, y, "training data")
        terms = data_term_on(cluster)
    else:
        X, y = check_dataset(X, y, "training data")
        terms = nullcontext(ShardedDataTerm)
    if np.unique(y).size < 2:
        raise DataError(f"training data: need at least two classes, got {np.unique(y).tolist()}")
    sample_weight = check_sample_weight(sample_weight, X.shape[0], options.dtype)
    with terms as data_term:
        fitted = fit(
            X.astype(options.dtype),
            y,
            options,
            sample_weight=sample_weight,
            initial_thetas=initial_thetas,
            callback=callback,
            checkpoint=checkpoint,
            resume=resume,
            data_term=data_term,
            local=cluster is None,
        )
    return fitted.model
