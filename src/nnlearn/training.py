"""Training: from data and settings to a :class:`~nnlearn.model.Model`.

:func:`train` is the one-call route; its pieces (:func:`check_settings`,
:func:`initial_weights`, :func:`fit_weights`) are shared with
:class:`nnlearn.NeuralNetClassifier`. Full-batch optimisers (:mod:`nnlearn.optimize`)
see ``fun(x) -> (J, grad)`` over all examples; mini-batch ones (:mod:`nnlearn.minibatch`)
see ``fun(x, rows)`` over a batch, scaled so that the full objective is what they
minimise.
"""

from __future__ import annotations

import time

import numpy as np

from .core import (
    data_term,
    forward,
    from_sums,
    init_random,
    pack,
    regularization,
    theta_shapes,
    total_weight,
    unpack,
)
from .datasets import check_dataset, one_hot
from .errors import DataError, ParameterError, ShapeError, TrainingError
from .minibatch import MINI_BATCH, minimize_minibatch
from .model import Model
from .optimize import minimize
from .settings import (
    MiniBatchSettings,
    check_epsilon,
    check_memory,
    check_minibatch_settings,
    check_sample_weight,
    check_settings,
)
from .threads import ShardedDataTerm, blas_threads, default_threads

__all__ = ["train", "make_objective", "make_batch_objective", "initial_weights", "fit_weights"]


def make_objective(X, Y, lam, layer_sizes, sample_weight=None, threads=None):
    """``fun(x) -> (J, grad)`` over flat float64 weight vectors, computing in X's dtype.

    The examples are shared among ``threads`` threads (None: :func:`default_threads`;
    see :mod:`nnlearn.threads`).
    """
    dtype = X.dtype
    term = ShardedDataTerm(X, Y, layer_sizes, sample_weight, threads)
    m = total_weight(X, sample_weight)

    def objective(x):
        thetas = unpack(x.astype(dtype, copy=False), layer_sizes)
        J, grads = from_sums(*term(thetas), thetas, lam, m)
        return J, pack(grads).astype(np.float64, copy=False)

    return objective


def make_batch_objective(X, Y, lam, layer_sizes, sample_weight=None, threads=None):
    """``fun(x, rows) -> (J_B, grad)``: a mini-batch's share of the full objective.

    J_B = m/(b M) sum_{i in rows} w_i l_i + lam/(2M) sum theta^2 with b = len(rows) and
    M = sum of all the weights (m when unweighted): the batch's mean loss, scaled so that
    its expectation over random batches is the full data term, plus the full penalty
    (see :mod:`nnlearn.minibatch`). Computes in X's dtype, returns a float64 gradient.
    """
    dtype, m = X.dtype, X.shape[0]
    total = total_weight(X, sample_weight)

    def objective(x, rows):
        thetas = unpack(x.astype(dtype, copy=False), layer_sizes)
        weights = None if sample_weight is None else sample_weight[rows]
        with blas_threads(threads):
            loss_sum, grads = data_term(thetas, X[rows], Y[rows], weights)
        penalty, penalty_grads = regularization(thetas, lam, total)
        scale = m / (rows.size * total)
        for grad, penalty_grad in zip(grads, penalty_grads):
            grad *= scale
            grad += penalty_grad
        return loss_sum * scale + penalty, pack(grads).astype(np.float64, copy=False)

    return objective


def make_accuracy(X, labels, layer_sizes, sample_weight=None):
    """``score(x)``: the (weighted) fraction of ``X``'s rows whose most active output is ``labels``."""

    def accuracy(x):
        thetas = unpack(x.astype(X.dtype, copy=False), layer_sizes)
        predicted = np.argmax(forward(thetas, X)[-1], axis=1)
        return float(np.average(predicted == labels, weights=sample_weight))

    return accuracy


def initial_weights(layer_sizes, epsilon_init=0.12, seed=0, initial_thetas=None, m=0):
    """The starting point as a flat float64 vector: ``initial_thetas`` or random weights.

    ``m``, the number of examples, lets the memory check count the activations too.
    """
    check_memory(layer_sizes, m)
    check_epsilon(epsilon_init)
    if initial_thetas is None:
        initial_thetas = init_random(layer_sizes, epsilon_init, rng=seed)
    shapes = [np.shape(theta) for theta in initial_thetas]
    if shapes != theta_shapes(layer_sizes):
        raise ShapeError(f"initial weights have shapes {shapes}; layer sizes {layer_sizes} need {theta_shapes(layer_sizes)}")
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


def _fit_minibatch(X, Y, layer_sizes, x0, lam, method, max_iter, tol, callback, sample_weight, settings,
                   checkpoint=None, resume=None):
    shuffle_seed, split_seed = _streams(settings.seed)
    validation_score = None
    if settings.early_stopping:
        (X, Y, sample_weight), validation = hold_out(X, Y, sample_weight, settings.validation_fraction, split_seed)
        validation_score = make_accuracy(*validation[:2], layer_sizes, validation[2])
    # Unlike the full-batch objective, a batch's products (200 x 400 by 400 x 25 on the
    # digits) are too small to share: with 2 BLAS threads on a busy 2-core machine 20
    # epochs of Adam took 19 s, single-threaded 0.38 s. So batches stay on the
    # optimiser's one thread.
    fun = make_batch_objective(X, Y, lam, layer_sizes, sample_weight)
    return minimize_minibatch(
        fun, x0, X.shape[0], method, max_iter, tol, callback,
        batch_size=settings.batch_size, learning_rate=settings.learning_rate,
        n_iter_no_change=settings.n_iter_no_change, seed=shuffle_seed,
        validation_score=validation_score, state=settings.state, checkpoint=checkpoint, resume=resume,
    )


def fit_weights(X, Y, layer_sizes, x0, lam, optimizer, max_iter, tol=None, callback=None,
                sample_weight=None, minibatch=None, checkpoint=None, resume=None):
    """Run the named optimiser from ``x0`` on checked, converted data.

    Parameters
    ----------
    X : ndarray, shape (m, n), float64 or float32
    Y : ndarray, shape (m, K), one-hot, X's dtype
    layer_sizes : tuple of int
    x0 : ndarray, shape (p,), float64
    lam, optimizer, max_iter, tol, callback
        As for :func:`train`.
    sample_weight : ndarray, shape (m,), optional
    minibatch : MiniBatchSettings, optional
        For ``"sgd"`` and ``"adam"`` (default settings when None).
    checkpoint, resume
        As for :func:`train`.

    Returns
    -------
    OptimizeResult
        A :class:`~nnlearn.minibatch.MinibatchResult` for the mini-batch optimisers.

    Raises
    ------
    TrainingError
        When the cost or the weights end non-finite.
    """
    # The cost and gradient share the examples among the threads (nnlearn.threads); the
    # optimiser's own small vector work runs single-threaded: OpenBLAS threads fighting
    # over it made L-BFGS-B 4-6x slower on 2 cores (15 s against 2.3 s for 400
    # iterations on the digits).
    threads = default_threads()
    with blas_threads(1):
        if optimizer in MINI_BATCH:
            settings = minibatch or MiniBatchSettings()
            result = _fit_minibatch(X, Y, layer_sizes, x0, lam, optimizer, max_iter, tol, callback,
                                    sample_weight, settings, checkpoint, resume)
        else:
            objective = make_objective(X, Y, lam, layer_sizes, sample_weight, threads=threads)
            result = minimize(objective, x0, optimizer, max_iter, tol, callback, resume, checkpoint)
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        raise TrainingError(
            f"training diverged: non-finite cost or weights after iteration {result.n_iter}"
            + ("; try a smaller learning_rate" if optimizer in MINI_BATCH else "")
        )
    return result


def train(
    X,
    y,
    hidden_layer_sizes=(25,),
    lam=1.0,
    optimizer="cg",
    max_iter=400,
    seed=0,
    dtype="float64",
    epsilon_init=0.12,
    tol=None,
    callback=None,
    initial_thetas=None,
    *,
    sample_weight=None,
    batch_size=200,
    learning_rate=None,
    early_stopping=False,
    validation_fraction=0.1,
    n_iter_no_change=10,
    checkpoint=None,
    resume=None,
):
    """Train a sigmoid network by backpropagation and a full-batch or mini-batch optimiser.

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
    epsilon_init : float or "auto"
        Half-width of the uniform initial weights (see :func:`nnlearn.core.init_random`).
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

    Returns
    -------
    Model
        Its ``history`` adds, for mini-batch runs, ``batch_size``, ``learning_rate`` and
        ``validation_scores``.
    """
    hidden = check_settings(hidden_layer_sizes, lam, optimizer, max_iter, dtype)
    settings = check_minibatch_settings(batch_size, learning_rate, n_iter_no_change, early_stopping,
                                        validation_fraction, tol)
    settings.seed = seed
    X, y = check_dataset(X, y, "training data")
    classes, Y = one_hot(y)
    if classes.size < 2:
        raise DataError(f"training data: need at least two classes, got {classes.tolist()}")
    sample_weight = check_sample_weight(sample_weight, X.shape[0], dtype)
    X, Y = X.astype(dtype), Y.astype(dtype)
    layer_sizes = (X.shape[1], *hidden, classes.size)
    x0 = initial_weights(layer_sizes, epsilon_init, seed, initial_thetas, m=X.shape[0])
    start = time.perf_counter()
    result = fit_weights(X, Y, layer_sizes, x0, lam, optimizer, max_iter, tol, callback, sample_weight, settings,
                         checkpoint, resume)
    seconds = time.perf_counter() - start
    thetas = [theta.astype(dtype) for theta in unpack(result.x, layer_sizes)]
    history = {
        "cost": result.history,
        "optimizer": optimizer,
        "max_iter": int(max_iter),
        "n_iter": result.n_iter,
        "n_evals": result.n_evals,
        "message": result.message,
        "interrupted": result.interrupted,
        "seed": seed,
        "dtype": np.dtype(dtype).name,
        "epsilon_init": epsilon_init,
        "seconds": seconds,
    }
    if optimizer in MINI_BATCH:
        history.update(batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                       validation_scores=result.validation_scores)
    return Model(thetas, classes, float(lam), history)
