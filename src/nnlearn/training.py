"""Training: from data and settings to a :class:`~nnlearn.model.Model`."""

from __future__ import annotations

import functools
import time
from contextlib import nullcontext

import numpy as np
from threadpoolctl import ThreadpoolController

from .core import cost_and_gradient, init_random, pack, unpack
from .datasets import check_dataset, one_hot
from .errors import DataError, ParameterError, TrainingError
from .model import Model
from .optimize import OPTIMIZERS as FULL_BATCH
from .optimize import minimize

__all__ = ["train", "make_objective", "check_settings", "OPTIMIZERS"]

DTYPES = ("float64", "float32")
#: Every optimiser ``train`` accepts; the command line offers these.
OPTIMIZERS = FULL_BATCH


def check_settings(hidden_layer_sizes, lam, optimizer, max_iter, dtype="float64"):
    """Reject out-of-range settings before any work starts (:class:`ParameterError`)."""
    hidden = tuple(hidden_layer_sizes)
    if any(int(h) != h or h < 1 for h in hidden):
        raise ParameterError(f"hidden layer sizes must be positive integers, got {list(hidden)}")
    if not np.isfinite(lam) or lam < 0:
        raise ParameterError(f"lambda must be a finite number >= 0, got {lam}")
    if optimizer not in OPTIMIZERS:
        raise ParameterError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    if int(max_iter) != max_iter or max_iter < 1:
        raise ParameterError(f"max_iter must be an integer >= 1, got {max_iter}")
    if np.dtype(dtype).name not in DTYPES:
        raise ParameterError(f"dtype must be float64 or float32, got {dtype}")
    return tuple(int(h) for h in hidden)


@functools.lru_cache(maxsize=1)
def _blas():
    return ThreadpoolController()


def blas_threads(limit):
    """A context that limits the BLAS thread pools to ``limit`` threads (None: unchanged)."""
    return nullcontext() if limit is None else _blas().limit(limits=limit, user_api="blas")


def make_objective(X, Y, lam, layer_sizes, sample_weight=None, threads=None):
    """``fun(x) -> (J, grad)`` over flat float64 weight vectors, computing in X's dtype.

    ``threads`` sets the BLAS threads for the cost and gradient alone (None: unchanged).
    """
    dtype = X.dtype

    def objective(x):
        thetas = unpack(x.astype(dtype, copy=False), layer_sizes)
        with blas_threads(threads):
            J, grads = cost_and_gradient(thetas, X, Y, lam, sample_weight)
        return J, pack(grads).astype(np.float64, copy=False)

    return objective


def _current_blas_threads():
    return max((lib["num_threads"] for lib in _blas().info() if lib["user_api"] == "blas"), default=None)


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
):
    """Train a sigmoid network by backpropagation and a full-batch optimiser.

    Parameters
    ----------
    X : array-like, shape (m, n)
    y : array-like, shape (m,)
        Labels of any kind; the output units stand for ``np.unique(y)`` in order.
    hidden_layer_sizes : sequence of int
    lam : float
        Regularisation strength lambda.
    optimizer : {"cg", "lbfgs", "fmincg"}
    max_iter : int
    seed : int
        Seeds the random initial weights: the same seed gives the same model.
    dtype : {"float64", "float32"}
        Precision of the cost and gradient computation.
    epsilon_init : float or "auto"
        Half-width of the uniform initial weights (see :func:`nnlearn.core.init_random`).
    tol : float, optional
        Optimiser tolerance (see :func:`nnlearn.optimize.minimize`).
    callback : callable, optional
        ``callback(iteration, J, x)`` after each iteration; may raise StopIteration.
    initial_thetas : list of ndarray, optional
        Start from these weights instead of random ones.

    Returns
    -------
    Model
    """
    hidden = check_settings(hidden_layer_sizes, lam, optimizer, max_iter, dtype)
    X, y = check_dataset(X, y, "training data")
    classes, Y = one_hot(y)
    if classes.size < 2:
        raise ParameterError(f"training data: need at least two classes, got {classes.tolist()}")
    X, Y = X.astype(dtype), Y.astype(dtype)
    layer_sizes = (X.shape[1], *hidden, classes.size)
    if initial_thetas is None:
        initial_thetas = init_random(layer_sizes, epsilon_init, rng=seed)
    x0 = pack(initial_thetas).astype(np.float64)
    # The large matrix products use every BLAS thread, but the optimiser's own small
    # vector work runs single-threaded: threads fighting over it made L-BFGS-B 4-6x
    # slower on 2 cores (15 s against 2.3 s for 400 iterations on the digits).
    objective = make_objective(X, Y, lam, layer_sizes, threads=_current_blas_threads())
    start = time.perf_counter()
    with blas_threads(1):
        result = minimize(objective, x0, optimizer, max_iter, tol, callback)
    seconds = time.perf_counter() - start
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        raise TrainingError(f"training diverged: non-finite cost or weights after iteration {result.n_iter}")
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
    return Model(thetas, classes, float(lam), history)
