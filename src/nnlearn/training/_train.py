"""Training: from data and :class:`~nnlearn.training.Options` to a :class:`~nnlearn.model.Model`.

One fitting path serves every surface: :func:`fit` takes checked data and options, starts
from random weights or a :class:`~nnlearn.training.Continuation`, runs the optimiser on a
data term (:func:`nnlearn.training._fitting.fit_weights`) and returns the model;
:func:`train` (the library and the command line) and :class:`nnlearn.NeuralNetClassifier`
check their inputs their own way and call it.

Full-batch optimisers (:mod:`nnlearn.optim`) see ``fun(x) -> (J, grad)`` over all
examples; mini-batch ones see ``fun(x, rows)`` over a batch, scaled so that the full
objective is what they minimise.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..compute._backends import ArrayDataTerm, device_dataset, on_accelerator
from ..compute._threads import ShardedDataTerm
from ..core import Network, init_random, one_hot, unpack
from ..datasets._check import check_dataset
from ..errors import DataError, ExamplesLost, ParameterError, ShapeError
from ..model._model import Model
from ..optim._results import OptimizeResult
from ._augment import augment_record, check_augment
from ._checks import check_cluster_optimizer, check_memory, check_sample_weight
from ._continuation import Continuation
from ._exactness import compare_exactness, difference_lines, exactness_record
from ._fitting import DataTermFactory, fit_weights
from ._presets import options_with
from ._settings import Options

__all__ = ["train", "fit", "Fitted", "data_terms", "ResumeWarning"]


class ResumeWarning(UserWarning):
    """A resumed run cannot be exact: something it depends on differs from the run it continues."""


@dataclass(frozen=True)
class Fitted:
    """What :func:`fit` returns: the model, the optimiser's result, and where the run stands."""

    model: Model
    result: OptimizeResult
    continuation: Continuation


def fit(
    X: np.ndarray,
    y: np.ndarray,
    options: Options,
    *,
    classes=None,
    sample_weight=None,
    callback=None,
    checkpoint: Callable[[dict[str, Any]], object] | None = None,
    resume: Continuation | None = None,
    data_term: DataTermFactory = ShardedDataTerm,
) -> Fitted:
    """The one fitting path: checked data and checked options to a trained model.

    Parameters
    ----------
    X : ndarray, shape (m, n), in ``options.dtype``
    y : ndarray, shape (m,)
    options : Options
        Checked (:meth:`~nnlearn.training.Options.checked`).
    classes : ndarray, optional
        The labels of the output units (default: ``np.unique(y)``).
    sample_weight : ndarray, shape (m,), optional
    callback : callable, optional
        ``callback(iteration, J, x)`` after each iteration.
    checkpoint : callable, optional
        ``checkpoint(state)`` after each iteration, with the optimiser's state (a dict).
    resume : Continuation, optional
        Start from its weights, and go on from its optimiser's state when it has one.
    data_term : callable
        Makes the full-batch optimisers' data term (:func:`data_terms`); one with a true
        ``remote`` attribute keeps the examples' activations out of this machine's
        memory check.

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
    check_memory(network, 0 if getattr(data_term, "remote", False) else m)
    start = _start(network, options, resume)
    began = time.perf_counter()

    def model_of(result):
        thetas = [theta.astype(X.dtype) for theta in unpack(result.x, network)]
        history = _history(options, result, time.perf_counter() - began, X.shape[1])
        return Model(thetas, classes, options.lam, history, network=network)

    try:
        result = fit_weights(
            X,
            Y.astype(X.dtype),
            network,
            options,
            start,
            sample_weight=sample_weight,
            callback=callback,
            checkpoint=checkpoint,
            data_term=data_term,
        )
    except ExamplesLost as exc:
        exc.model = model_of(exc.result)  # type: ignore[attr-defined]
        raise
    snapshot = getattr(result, "snapshot", None)
    after = Continuation.from_state(snapshot) if snapshot else Continuation(np.asarray(result.x, dtype=np.float64))
    return Fitted(model_of(result), result, after)


def _start(network: Network, options: Options, resume: Continuation | None) -> Continuation:
    """Where a run starts: random weights drawn with the options' seed, or ``resume``'s
    weights (and state), checked against the network's shapes."""
    if resume is None:
        return Continuation.from_weights(init_random(network, options.epsilon_init, rng=options.seed))
    if resume.x.shape != (network.n_weights,):
        raise ShapeError(
            f"the weights to go on from are {resume.x.size} numbers; a {'-'.join(map(str, network.layer_sizes))} "
            f"network has {network.n_weights}"
        )
    if resume.state is None:
        return resume
    return Continuation(resume.x, _without_plan(resume.state, options.dtype), resume.exactness)


#: The kernel's forms as nnlearn 0.2's planner recorded them when it kept the fixed ones.
_FIXED_PLAN = {"gradient": "delta' a", "pad": 1, "shards": None}


def _without_plan(state, dtype):
    """A state without the plan nnlearn 0.2 recorded; a warning when that plan was not the
    kernel's fixed forms (the only ones there are now): the resumed run then computes in
    other forms than the interrupted one, equal but for the last digits."""
    state = dict(state)
    plan = state.pop("plan", None)
    fixed = {**_FIXED_PLAN, "hidden_order": "F" if np.dtype(dtype) == np.float64 else "C"}
    if plan is not None and plan != fixed:
        warnings.warn(
            "the checkpoint was computed with measured product forms (nnlearn 0.2's planner); it resumes with "
            "the fixed forms, so the run may end a few last digits away from where the interrupted one would",
            ResumeWarning,
            stacklevel=4,
        )
    return state


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
        "seed": options.seed,
        "dtype": options.dtype,
        "blas": options.blas,
        "epsilon_init": options.epsilon_init,
        "seconds": seconds,
    }
    if options.is_minibatch:
        history.update(
            batch_size=options.batch_size,
            learning_rate=options.learning_rate,
            validation_scores=getattr(result, "validation_scores", []),
        )
    if options.early_stopping:
        history.update(
            early_stopping=True,
            validation_fraction=options.validation_fraction,
            n_iter_no_change=options.patience,
            validation_scores=getattr(result, "validation_scores", []),
        )
        losses = getattr(result, "validation_losses", [])
        if all(math.isfinite(loss) for loss in losses):  # not from a checkpoint of nnlearn 0.2, which had none
            history["validation_losses"] = losses
    augment = check_augment(options.augment)
    if augment is not None:
        history.update(augment_record(augment, n_features))
    return history


def data_terms(cluster: Any = None) -> AbstractContextManager[DataTermFactory]:
    """Where the examples of a run live: a context giving :func:`fit` its data-term factory.

    None: this machine's cores (:class:`~nnlearn.compute.ShardedDataTerm`); anything else
    is a Dask cluster for :func:`nnlearn.compute._cluster.data_term_on` (a client, a scheduler
    address, or a number of local worker processes, closed on leaving when made here).
    """
    if cluster is None:
        return nullcontext(ShardedDataTerm)
    from ..compute._cluster import data_term_on

    return data_term_on(cluster)


def train(
    X,
    y,
    *,
    options: Options | None = None,
    preset: str | None = None,
    sample_weight=None,
    callback: Callable[[int, float, np.ndarray], object] | None = None,
    checkpoint: Callable[[Continuation], object] | None = None,
    resume: Continuation | None = None,
    cluster: Any = None,
    **settings: Any,
) -> Model:
    """Train a network by backpropagation and a full-batch or mini-batch optimiser.

    Parameters
    ----------
    X : array-like, shape (m, n)
        The examples; a NumPy array, a Dask array on a cluster, or a CUDA tensor or CuPy
        array (computed where it is, through the array API: :mod:`nnlearn.compute`).
    y : array-like, shape (m,)
        Labels of any kind; the output units stand for ``np.unique(y)`` in order.
    options : Options, optional
        Every setting as one :class:`~nnlearn.training.Options` (then no other setting
        and no preset may be given).
    preset : str, optional
        A name in :data:`nnlearn.training.PRESETS` (``"course"``, ``"best"``): its settings
        replace the course's defaults; the settings given here replace its.
    sample_weight : array-like, shape (m,), optional
        Example weights; a weight of 2 counts like the example given twice.
    callback : callable, optional
        ``callback(iteration, J, x)`` after each iteration; may raise StopIteration.
    checkpoint : callable, optional
        ``checkpoint(continuation)`` after each iteration with a
        :class:`~nnlearn.training.Continuation` of the run (``continuation.save(path,
        settings)`` writes it as a checkpoint file).
    resume : Continuation, optional
        Go on from it: a checkpoint's (``Continuation.load(path)`` returns its settings
        and continuation) continues that run to the
        weights the uninterrupted run reaches (cg and lbfgs replay the saved iterations
        first), and a :class:`ResumeWarning` says what differs when that cannot be exact;
        one of weights alone (``Continuation.from_weights``) starts afresh from them.
    cluster : distributed.Client, str or int, optional
        Train on a Dask cluster (``pip install "nnlearn[cluster]"``): a client, a
        scheduler address, or a number of local worker processes. Full-batch optimisers.
    **settings
        Any of :data:`nnlearn.training.SETTINGS` by name (``docs/settings.md`` lists
        them with their defaults): ``hidden_layer_sizes``, ``lam``, ``optimizer``,
        ``max_iter``, ``activation``, ``output``, ``seed``, ... Left out, a setting takes
        the preset's value, or the course's.

    Returns
    -------
    Model
        Its ``history`` records the run: the costs, the iterations, why it stopped, and
        the settings that shaped it.
    """
    options = _options(options, preset, settings)
    X, y, terms = _checked_data(X, y, options, cluster)
    sample_weight = check_sample_weight(sample_weight, X.shape[0], options.dtype)
    with terms as data_term:
        record = _record(X, y, options, data_term, resume) if checkpoint is not None or resume is not None else {}
        save = None
        if checkpoint is not None:

            def save(state):
                checkpoint(Continuation.from_state(state, record))

        try:
            fitted = fit(
                # a Dask array's chunks are cast where they are read; a device's array is in it already
                X if on_accelerator(X) else X.astype(options.dtype),
                y,
                options,
                sample_weight=sample_weight,
                callback=callback,
                checkpoint=save,
                resume=resume,
                data_term=data_term,
            )
        except ExamplesLost as exc:
            if exc.model is not None:
                exc.model.history.update(_ran_on(data_term))
            raise
    fitted.model.history.update(_ran_on(data_term))
    return fitted.model


def _ran_on(data_term: Any) -> dict[str, Any]:
    """What a cluster's data term says of the run (its address, workers, partitions), for
    the model's history; nothing for this machine's."""
    record = getattr(data_term, "record", None)
    return record() if callable(record) else {}


def _options(options, preset, settings):
    if options is None:
        return options_with(preset, **settings).checked()
    if preset is not None:
        raise ParameterError("give train a preset or options, not both: the options hold every setting")
    if settings:
        raise ParameterError(
            f"give train its options whole or setting by setting, not both (got options and {', '.join(settings)})"
        )
    return options.checked()


def _checked_data(X, y, options, cluster):
    """The examples checked where they are, and the context of their data term."""
    if on_accelerator(X):
        if cluster is not None or options.early_stopping or options.augment:
            raise ParameterError(
                "examples on an accelerator are trained where they are: a cluster, early stopping and "
                "augmentation need them in this process's memory (pass a NumPy array)"
            )
        X, y = device_dataset(X, y, options.dtype, options.optimizer)
        return X, y, nullcontext(ArrayDataTerm)
    if cluster is not None:
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
    return X, y, data_terms(cluster)


def _record(X, y, options, data_term, resume):
    """This run's exactness record; with ``resume``, a :class:`ResumeWarning` for each
    difference from the record of the run it continues (a continuation made without one,
    as :func:`fit` makes them, is not compared)."""
    if on_accelerator(X) or (resume is not None and (resume.state is None or not resume.exactness)):
        return {}
    network = options.network(X.shape[1], np.unique(y).size)
    client, where = getattr(data_term, "client", None), getattr(data_term, "where", None)
    record = exactness_record(None, X, y, X, network, options.optimizer, cluster=where, client=client, resumed=resume)
    if resume is not None:
        for line in difference_lines("the run", compare_exactness(dict(resume.exactness), record)):
            warnings.warn(line, ResumeWarning, stacklevel=3)
    return record
