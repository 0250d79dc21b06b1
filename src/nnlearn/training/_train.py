"""Training: from data and :class:`~nnlearn.training._settings.Options` to a :class:`~nnlearn.model._model.Model`.

One fitting path serves every surface: :func:`fit` takes checked data and options, picks
the starting weights, runs the optimiser on a data term (:func:`nnlearn.training._fitting.fit_weights`)
and returns the model; :func:`train` (the library and the command line) and
:class:`nnlearn.NeuralNetClassifier` check their inputs their own way and call it.

Full-batch optimisers (:mod:`nnlearn.optim._minimize`) see ``fun(x) -> (J, grad)`` over all
examples; mini-batch ones (:mod:`nnlearn.optim._minibatch`) see ``fun(x, rows)`` over a batch,
scaled so that the full objective is what they minimise.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..compute._backends import ArrayDataTerm, device_dataset, on_accelerator
from ..compute._dataterm import Objective, batch_objective, full_objective
from ..compute._threads import ShardedDataTerm
from ..core import Network, NetworkLike, init_random, one_hot, pack, unpack
from ..datasets._check import check_dataset
from ..errors import DataError, ExamplesLost, ParameterError, ShapeError
from ..model._model import Model
from ..optim._results import OptimizeResult
from ._augment import augment_record, check_augment
from ._fitting import DataTermFactory, fit_weights
from ._fitting import hold_out as hold_out
from ._presets import options_with
from ._settings import DEFAULTS, Options, check_cluster_optimizer, check_epsilon, check_memory, check_sample_weight

__all__ = [
    "train",
    "fit",
    "Fitted",
    "data_terms",
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
    """``fun(x) -> (J, grad)`` over this machine's cores (:class:`~nnlearn.compute._threads.ShardedDataTerm`).

    ``network`` is a :class:`~nnlearn.core.Network` (or layer sizes: the course's
    network); ``threads`` None means :func:`~nnlearn.compute._threads.default_threads`.
    """
    return full_objective(ShardedDataTerm(X, Y, network, sample_weight, threads), lam)


def make_batch_objective(
    X: np.ndarray, Y: np.ndarray, lam: float, network: NetworkLike, sample_weight: np.ndarray | None = None
):
    """``fun(x, rows) -> (J_B, grad)``, see :func:`nnlearn.compute._dataterm.batch_objective`."""
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
        Checked (:meth:`~nnlearn.training._settings.Options.checked`).
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
    augment = check_augment(options.augment)
    if augment is not None:
        augment_record(augment, X.shape[1])  # the rows must be square images
    classes, Y = one_hot(y, classes)
    network = options.network(X.shape[1], classes.size)
    # The distorted copies are examples too, in memory besides the originals.
    m = X.shape[0] * (1 + (augment.copies if augment is not None else 0))
    x0 = initial_weights(network, options.epsilon_init, options.seed, initial_thetas, m=m if local else 0)
    if resume is not None:
        resume = _without_plan(resume, X.dtype)
    start = time.perf_counter()

    def model_of(result):
        thetas = [theta.astype(X.dtype) for theta in unpack(result.x, network)]
        history = _history(options, result, time.perf_counter() - start, X.shape[1])
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


#: The kernel's forms as nnlearn 0.2's planner recorded them when it kept the fixed ones.
_FIXED_PLAN = {"gradient": "delta' a", "pad": 1, "shards": None}


def _without_plan(resume, dtype):
    """A checkpoint's state without the plan nnlearn 0.2 recorded; a warning when that plan
    was not the kernel's fixed forms (the only ones there are now): the resumed run then
    computes in other forms than the interrupted one, equal but for the last digits."""
    resume = dict(resume)
    plan = resume.pop("plan", None)
    fixed = {**_FIXED_PLAN, "hidden_order": "F" if np.dtype(dtype) == np.float64 else "C"}
    if plan is not None and plan != fixed:
        warnings.warn(
            "the checkpoint was computed with measured product forms (nnlearn 0.2's planner); it resumes with "
            "the fixed forms, so the run may end a few last digits away from where the interrupted one would",
            stacklevel=3,
        )
    return resume


def _history(options, result, seconds, n_features):
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
    if options.early_stopping:
        history.update(
            early_stopping=True,
            validation_fraction=options.validation_fraction,
            n_iter_no_change=options.n_iter_no_change,
            validation_scores=getattr(result, "validation_scores", []),
        )
    augment = check_augment(options.augment)
    if augment is not None:
        history.update(augment_record(augment, n_features))
    return history


def data_terms(cluster: Any = None) -> AbstractContextManager[DataTermFactory]:
    """Where the examples of a run live: a context giving :func:`fit` its data-term factory.

    None: this machine's cores (:class:`~nnlearn.compute._threads.ShardedDataTerm`); anything else
    is a Dask cluster for :func:`nnlearn.compute._cluster.data_term_on` (a client, a scheduler
    address, or a number of local worker processes, closed on leaving when made here).
    """
    if cluster is None:
        return nullcontext(ShardedDataTerm)
    from ..compute._cluster import data_term_on

    return data_term_on(cluster)


class _Unset:
    """A setting :func:`train` was not given: the preset's (the course's without one)."""

    def __repr__(self) -> str:
        return "<the preset's>"


#: The default of :func:`train`'s settings: the preset's value, :data:`DEFAULTS`' without one.
UNSET: Any = _Unset()


def train(
    X,
    y,
    hidden_layer_sizes=UNSET,
    lam=UNSET,
    optimizer=UNSET,
    max_iter=UNSET,
    *,
    seed=UNSET,
    dtype=UNSET,
    activation=UNSET,
    output=UNSET,
    epsilon_init=UNSET,
    tol=UNSET,
    callback=None,
    initial_thetas=None,
    sample_weight=None,
    batch_size=UNSET,
    learning_rate=UNSET,
    early_stopping=UNSET,
    validation_fraction=UNSET,
    n_iter_no_change=UNSET,
    augment=UNSET,
    checkpoint=None,
    resume=None,
    options: Options | None = None,
    cluster=None,
    preset: str | None = None,
) -> Model:
    """Train a network by backpropagation and a full-batch or mini-batch optimiser.

    Every setting left out takes the ``preset``'s value, or without one the course's
    (:data:`nnlearn.training._settings.DEFAULTS`: a 400-25-10 sigmoid network, lambda 1, cg, 400
    iterations, seed 0, float64, epsilon_init 0.12).

    Parameters
    ----------
    X : array-like, shape (m, n)
    y : array-like, shape (m,)
        Labels of any kind; the output units stand for ``np.unique(y)`` in order.
    hidden_layer_sizes : sequence of int
    lam : float
        Regularisation strength lambda.
    optimizer : {"cg", "lbfgs", "fmincg", "sgd", "adam"}
        Full-batch (:mod:`nnlearn.optim._minimize`) or mini-batch (:mod:`nnlearn.optim._minibatch`).
    max_iter : int
        Iterations; for ``"sgd"`` and ``"adam"`` an iteration is an epoch.
    seed : int
        Seeds the random initial weights (and the mini-batch optimisers' shuffling, the
        early-stopping split and the distortions, each from a stream of its own): the
        same seed gives the same model.
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
        Optimiser tolerance (see :func:`nnlearn.optim._minimize.minimize` and
        :func:`nnlearn.optim._minibatch.minimize_minibatch`).
    callback : callable, optional
        ``callback(iteration, J, x)`` after each iteration; may raise StopIteration.
    initial_thetas : list of ndarray, optional
        Start from these weights instead of random ones.
    sample_weight : array-like, shape (m,), optional
        Example weights; a weight of 2 counts like the example given twice.
    batch_size, learning_rate
        Mini-batch settings (ignored by the full-batch optimisers): examples per step and
        step size (None: ``nnlearn.optim._minibatch.LEARNING_RATES``).
    early_stopping, validation_fraction, n_iter_no_change
        Stopping, for every optimiser: with ``early_stopping``, hold out a stratified
        ``validation_fraction`` of the training data, stop once its accuracy has not
        improved for ``n_iter_no_change`` iterations (epochs), and return the best
        iteration's weights. Without it the mini-batch optimisers stop on their cost
        (scikit-learn's rule) and the full-batch ones on their own tests.
    augment : int or Augment, optional
        Train on distorted copies of the images too (:mod:`nnlearn.training._augment`): a number of
        copies of each (0 or None: off) or an :class:`~nnlearn.training._augment.Augment`. The
        full-batch optimisers get one fixed set of copies, made before training; sgd and
        adam fresh ones every epoch. Only training examples are distorted, after the
        early-stopping split. The rows must be square images (column-major, nnlearn's
        layout, unless the Augment says otherwise).
    checkpoint : callable, optional
        ``checkpoint(state)`` after each iteration, with the optimiser's state (a dict of
        arrays, numbers and lists; :func:`nnlearn.training._checkpoints.save_checkpoint` writes it),
        early stopping's and the distortions' included.
    resume : dict, optional
        A state handed to ``checkpoint`` by an earlier run with the same data and
        settings: continue that run to the weights the uninterrupted run reaches. fmincg,
        sgd and adam go on where they were; SciPy's cg and lbfgs keep their inner state
        to themselves and replay the saved iterations first.
    options : Options, optional
        All the settings above as one :class:`~nnlearn.training._settings.Options`; given, it
        replaces them (and may not come with a ``preset``).
    cluster : distributed.Client, str or int, optional
        Train on a Dask cluster (:mod:`nnlearn.compute._cluster`, ``pip install "nnlearn[cluster]"``):
        a client, a scheduler address, or a number of local worker processes. ``X`` may
        then be a Dask array (e.g. :func:`nnlearn.datasets._builtin.load_shards`), whose chunks stay
        on the workers. Full-batch optimisers only.
    preset : str, optional
        A name in :data:`nnlearn.training._presets.PRESETS` (``"course"``, ``"best"``): its settings
        replace the course's defaults; the settings given here replace its.

    Examples on an accelerator (a CUDA tensor, a CuPy array) are computed there, through
    the array API (:mod:`nnlearn.compute._backends`). On NumPy arrays the fast kernel runs one fixed
    form of each product: the same inputs, seed, BLAS kernel and thread count give the
    same weights, whatever else the machine is doing.

    Returns
    -------
    Model
        Its ``history`` adds, for mini-batch runs, ``batch_size`` and ``learning_rate``;
        with early stopping ``validation_scores``; with augmentation the distortions
        (``augment``: copies, ``augment_rotation``, ...).
    """
    if options is None:
        given = {
            "hidden_layer_sizes": hidden_layer_sizes,
            "lam": lam,
            "optimizer": optimizer,
            "max_iter": max_iter,
            "seed": seed,
            "dtype": dtype,
            "activation": activation,
            "output": output,
            "epsilon_init": epsilon_init,
            "tol": tol,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "early_stopping": early_stopping,
            "validation_fraction": validation_fraction,
            "n_iter_no_change": n_iter_no_change,
            "augment": augment,
        }
        options = options_with(preset, **{name: value for name, value in given.items() if value is not UNSET})
    elif preset is not None:
        raise ParameterError("give train a preset or options, not both: the options hold every setting")
    options = options.checked()
    terms = data_terms(cluster)
    if on_accelerator(X):
        if cluster is not None or options.early_stopping or options.augment:
            raise ParameterError(
                "examples on an accelerator are trained where they are: a cluster, early stopping and "
                "augmentation need them in this process's memory (pass a NumPy array)"
            )
        X, y = device_dataset(X, y, options.dtype, options.optimizer)
        terms = nullcontext(ArrayDataTerm)
    elif cluster is not None:
        check_cluster_optimizer(options.optimizer)
        from ..compute._cluster import check_cluster_dataset

        X, y = check_cluster_dataset(X, y, "training data")
        if (options.early_stopping or options.augment) and not isinstance(X, np.ndarray):
            raise ParameterError(
                "early stopping and augmentation split and distort the examples in this process; "
                "data that stay on the cluster's workers (a shard directory) cannot have them"
            )
    else:
        X, y = check_dataset(X, y, "training data")
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
