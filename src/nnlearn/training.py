"""Training: from data and :class:`~nnlearn.settings.Options` to a :class:`~nnlearn.model.Model`.

One fitting path serves every surface: :func:`fit` takes checked data and options, picks
the starting weights, runs the optimiser on a data term (:func:`nnlearn.fitting.fit_weights`)
and returns the model; :func:`train` (the library and the command line) and
:class:`nnlearn.NeuralNetClassifier` check their inputs their own way and call it.

Full-batch optimisers (:mod:`nnlearn.optimize`) see ``fun(x) -> (J, grad)`` over all
examples; mini-batch ones (:mod:`nnlearn.minibatch`) see ``fun(x, rows)`` over a batch,
scaled so that the full objective is what they minimise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from .core import Network, NetworkLike, init_random, one_hot, pack, unpack
from .datacheck import check_dataset
from .errors import DataError, ExamplesLost, ShapeError
from .fitting import DataTermFactory, fit_weights
from .fitting import hold_out as hold_out  # public here before nnlearn.fitting existed
from .model import Model
from .objective import Objective, batch_objective, full_objective
from .results import OptimizeResult
from .settings import (
    DEFAULTS,
    MiniBatch,
    Options,
    check_cluster_optimizer,
    check_epsilon,
    check_memory,
    check_sample_weight,
)
from .threads import ShardedDataTerm

__all__ = [
    "train",
    "fit",
    "Fitted",
    "data_terms",
    "fit_weights",
    "initial_weights",
    "make_objective",
    "make_batch_objective",
]


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


def data_terms(cluster: Any = None) -> AbstractContextManager[DataTermFactory]:
    """Where the examples of a run live: a context giving :func:`fit` its data-term factory.

    None: this machine's cores (:class:`~nnlearn.threads.ShardedDataTerm`); anything else
    is a Dask cluster for :func:`nnlearn.cluster.data_term_on` (a client, a scheduler
    address, or a number of local worker processes, closed on leaving when made here).
    """
    if cluster is None:
        return nullcontext(ShardedDataTerm)
    from .cluster import data_term_on

    return data_term_on(cluster)


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
        minibatch = MiniBatch(
            batch_size=batch_size,
            learning_rate=learning_rate,
            n_iter_no_change=n_iter_no_change,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
        )
        options = Options(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            output=output,
            lam=lam,
            optimizer=optimizer,
            max_iter=max_iter,
            tol=tol,
            seed=seed,
            dtype=dtype,
            epsilon_init=epsilon_init,
            minibatch=minibatch,
        )
    options = options.checked()
    if cluster is not None:
        check_cluster_optimizer(options.optimizer)
        from .cluster import check_cluster_dataset

        X, y = check_cluster_dataset(X, y, "training data")
    else:
        X, y = check_dataset(X, y, "training data")
    terms = data_terms(cluster)
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
