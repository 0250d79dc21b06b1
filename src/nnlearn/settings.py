"""Training settings, checked at the boundary before any work starts.

Every check raises :class:`~nnlearn.errors.ParameterError` (or ``DataError`` for example
weights) naming the setting and what is wrong with it; :func:`nnlearn.train`, the
estimator and the command line share them.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass

import numpy as np

from .core import theta_shapes
from .errors import DataError, ParameterError
from .minibatch import MINI_BATCH
from .optimize import OPTIMIZERS as FULL_BATCH

__all__ = [
    "OPTIMIZERS", "DTYPES", "MiniBatchSettings", "check_settings", "check_hidden", "check_lambda",
    "check_max_iter", "check_epsilon", "check_minibatch_settings", "check_sample_weight", "check_memory",
]
DTYPES = ("float64", "float32")
#: Every optimiser ``train`` accepts; the command line offers these.
OPTIMIZERS = FULL_BATCH + MINI_BATCH


#: Bytes a training run needs per weight (copies of the weights and gradients, and the
#: optimisers' memories: L-BFGS keeps 20 vectors) and per unit activation of an example.
BYTES_PER_WEIGHT, BYTES_PER_ACTIVATION = 8 * 32, 8 * 4


def check_hidden(hidden_layer_sizes):
    """Hidden layer sizes as a tuple of positive ints (one int is one layer)."""
    hidden = (hidden_layer_sizes,) if _is_int(hidden_layer_sizes, 0) else tuple(hidden_layer_sizes)
    if not all(_is_int(h, 1) for h in hidden):
        raise ParameterError(f"hidden layer sizes must be positive integers, got {list(hidden)}")
    return tuple(int(h) for h in hidden)


def check_lambda(lam):
    """Lambda must be a finite number >= 0."""
    if not isinstance(lam, numbers.Real) or not np.isfinite(lam) or lam < 0:
        raise ParameterError(f"lambda must be a finite number >= 0, got {lam!r}")
    return float(lam)


def check_max_iter(max_iter):
    if not _is_int(max_iter, 1):
        raise ParameterError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    return int(max_iter)


def check_epsilon(epsilon_init):
    """The initial weights' half-width: a number > 0, or "auto"."""
    if not (epsilon_init == "auto" or (isinstance(epsilon_init, numbers.Real) and 0 < epsilon_init < np.inf)):
        raise ParameterError(f"epsilon_init must be a number > 0 or 'auto', got {epsilon_init!r}")


def check_settings(hidden_layer_sizes, lam, optimizer, max_iter, dtype="float64"):
    """Reject out-of-range settings before any work starts (:class:`ParameterError`).

    Returns
    -------
    hidden : tuple of int
    """
    hidden = check_hidden(hidden_layer_sizes)
    check_lambda(lam)
    if optimizer not in OPTIMIZERS:
        raise ParameterError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    check_max_iter(max_iter)
    if str(np.dtype(dtype) if isinstance(dtype, type) else dtype) not in DTYPES:
        raise ParameterError(f"dtype must be float64 or float32, got {dtype!r}")
    return hidden


@dataclass
class MiniBatchSettings:
    """How a mini-batch optimiser runs (the full-batch ones ignore all of it).

    ``seed`` seeds the shuffling and the validation split (a Generator is used as is, to
    continue a run); ``state`` is an earlier run's optimiser state, to continue it.
    """

    batch_size: int = 200
    learning_rate: float | None = None
    n_iter_no_change: int = 10
    early_stopping: bool = False
    validation_fraction: float = 0.1
    seed: object = None
    state: dict | None = None


def _is_int(value, low):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


def check_minibatch_settings(batch_size=200, learning_rate=None, n_iter_no_change=10,
                             early_stopping=False, validation_fraction=0.1, tol=None):
    """Reject out-of-range mini-batch settings (:class:`ParameterError`); return them."""
    if not _is_int(batch_size, 1):
        raise ParameterError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if learning_rate is not None and not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ParameterError(f"learning_rate must be a number > 0 (or None for the default), got {learning_rate!r}")
    if not _is_int(n_iter_no_change, 1):
        raise ParameterError(f"n_iter_no_change must be an integer >= 1, got {n_iter_no_change!r}")
    if not 0 < validation_fraction < 1:
        raise ParameterError(f"validation_fraction must lie strictly between 0 and 1, got {validation_fraction!r}")
    if tol is not None and not (np.isfinite(tol) and tol >= 0):
        raise ParameterError(f"tol must be a number >= 0 (or None for the default), got {tol!r}")
    return MiniBatchSettings(int(batch_size), learning_rate, int(n_iter_no_change), bool(early_stopping),
                             float(validation_fraction))


def check_sample_weight(sample_weight, m, dtype=np.float64):
    """Validate example weights: None, or m finite numbers >= 0 with a positive sum."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (m,):
        raise DataError(f"sample_weight must have one weight per example, shape ({m},); got {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise DataError("sample_weight must be finite and >= 0")
    if not weights.sum() > 0:
        raise DataError("sample_weight sums to 0: at least one example must have a positive weight")
    return weights.astype(dtype)


def check_memory(layer_sizes, m):
    """Refuse a network whose training would not fit in this machine's memory."""
    weights = sum(rows * cols for rows, cols in theta_shapes(layer_sizes))
    needed = BYTES_PER_WEIGHT * weights + BYTES_PER_ACTIVATION * m * sum(layer_sizes[1:])
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > available:
        raise ParameterError(
            f"a {'-'.join(map(str, layer_sizes))} network ({weights:,} weights) on {m:,} examples needs "
            f"about {needed / 2**30:,.0f} GiB to train; this machine has {available / 2**30:,.0f} GiB"
        )
