"""Training settings, checked at the boundary before any work starts.

Every check raises :class:`~nnlearn.errors.ParameterError` (or ``DataError`` for example
weights) naming the setting and what is wrong with it; :func:`nnlearn.train`, the
estimator and the command line share them.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..core import ACTIVATIONS, OUTPUTS, Network, NetworkLike
from ..errors import DataError, ParameterError
from ..optim import FULL_BATCH, MINI_BATCH, OPTIMIZERS
from ._augment import Augment, check_augment

__all__ = [
    "OPTIMIZERS",
    "FULL_BATCH",
    "MINI_BATCH",
    "DTYPES",
    "DEFAULTS",
    "ESTIMATOR_OPTIMIZER",
    "Options",
    "MiniBatch",
    "MiniBatchSettings",
    "check_seed",
    "check_settings",
    "check_hidden",
    "check_lambda",
    "check_max_iter",
    "check_epsilon",
    "check_minibatch_settings",
    "check_stopping",
    "STOPPING",
    "check_sample_weight",
    "check_memory",
    "check_kinds",
    "check_cluster_parameter",
    "check_cluster_optimizer",
]
DTYPES = ("float64", "float32")


#: Bytes a training run needs per weight (copies of the weights and gradients, and the
#: optimisers' memories: L-BFGS keeps 20 vectors) and per unit activation of an example.
BYTES_PER_WEIGHT, BYTES_PER_ACTIVATION = 8 * 32, 8 * 4


def check_hidden(hidden_layer_sizes: int | Sequence[int]) -> tuple[int, ...]:
    """Hidden layer sizes as a tuple of positive ints (one int is one layer)."""
    try:
        hidden = (
            (hidden_layer_sizes,) if isinstance(hidden_layer_sizes, (int, np.integer)) else tuple(hidden_layer_sizes)
        )
    except TypeError:
        raise ParameterError(f"hidden layer sizes must be positive integers, got {hidden_layer_sizes!r}") from None
    if not all(_is_int(h, 1) for h in hidden):
        raise ParameterError(f"hidden layer sizes must be positive integers, got {list(hidden)}")
    return tuple(int(h) for h in hidden)


def check_lambda(lam: float) -> float:
    """Lambda must be a finite number >= 0."""
    if not isinstance(lam, numbers.Real) or not np.isfinite(lam) or lam < 0:
        raise ParameterError(f"lambda must be a finite number >= 0, got {lam!r}")
    return float(lam)


def check_kinds(activation: str, output: str) -> tuple[str, str]:
    """The hidden activation and output must be registered kinds (``nnlearn.core.ACTIVATIONS``,
    ``nnlearn.core.OUTPUTS``)."""
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ParameterError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    if not isinstance(output, str) or output not in OUTPUTS:
        raise ParameterError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
    return activation, output


def check_max_iter(max_iter: int) -> int:
    if not _is_int(max_iter, 1):
        raise ParameterError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    return int(max_iter)


def check_epsilon(epsilon_init: float | str) -> None:
    """The initial weights' half-width: a number > 0, or "auto"."""
    if not (epsilon_init == "auto" or (isinstance(epsilon_init, numbers.Real) and 0 < epsilon_init < np.inf)):
        raise ParameterError(f"epsilon_init must be a number > 0 or 'auto', got {epsilon_init!r}")


def check_settings(
    hidden_layer_sizes: int | Sequence[int], lam: float, optimizer: str, max_iter: int, dtype: str = "float64"
) -> tuple[int, ...]:
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


#: The stopping settings every optimiser reads, now :class:`Options`' own; :class:`MiniBatch`
#: keeps them too, for code written when only the mini-batch optimisers had them.
STOPPING = ("early_stopping", "validation_fraction", "n_iter_no_change")


@dataclass(frozen=True, kw_only=True)
class MiniBatch:
    """How a mini-batch optimiser runs (the full-batch ones ignore it).

    ``batch_size`` examples per step; ``learning_rate`` (None: the optimiser's default,
    ``nnlearn.optim._minibatch.LEARNING_RATES``).

    ``n_iter_no_change``, ``early_stopping`` and ``validation_fraction`` apply to every
    optimiser now and are :class:`Options`' own; they are kept here for code written
    before. :meth:`Options.checked` takes the one that differs from its default (an
    error when both do and disagree) and sets both to it: the MiniBatch's then mirror
    Options' (``_mirrored``), and a later change of Options' own wins over them.
    """

    batch_size: int = 200
    learning_rate: float | None = None
    n_iter_no_change: int = 10
    early_stopping: bool = False
    validation_fraction: float = 0.1
    _mirrored: bool = field(default=False, repr=False, compare=False)

    def checked(self, tol: float | None = None) -> MiniBatch:
        """These settings checked (:class:`ParameterError` naming the bad one), normalised."""
        return check_minibatch_settings(
            self.batch_size,
            self.learning_rate,
            self.n_iter_no_change,
            self.early_stopping,
            self.validation_fraction,
            tol,
        )


#: Kept for code written against nnlearn 0.1.
MiniBatchSettings = MiniBatch


@dataclass(frozen=True, kw_only=True)
class Options:
    """Everything about a training run but its data, with every default in one place.

    The library (:func:`nnlearn.train`), the command line and the estimator take their
    defaults from here (:data:`DEFAULTS`); the estimator's optimiser alone differs
    (:data:`ESTIMATOR_OPTIMIZER`), as scikit-learn users expect L-BFGS.
    """

    hidden_layer_sizes: tuple[int, ...] = (25,)
    activation: str = "sigmoid"
    output: str = "sigmoid"
    lam: float = 1.0
    optimizer: str = "cg"
    max_iter: int = 400
    tol: float | None = None
    seed: int = 0
    dtype: str = "float64"
    epsilon_init: float | str = 0.12
    minibatch: MiniBatch = MiniBatch()
    #: Hold out a stratified ``validation_fraction`` of the training data, stop once its
    #: accuracy has not improved for ``n_iter_no_change`` iterations (epochs), keep the
    #: best weights; without early stopping the mini-batch optimisers judge their cost.
    early_stopping: bool = False
    validation_fraction: float = 0.1
    n_iter_no_change: int = 10
    #: Distorted copies of the training images (:mod:`nnlearn.training._augment`): None or 0 (off),
    #: a number of copies, or an :class:`~nnlearn.training._augment.Augment`.
    augment: Augment | int | None = None

    def checked(self) -> Options:
        """These options checked (:class:`ParameterError` naming the bad one), normalised."""
        hidden = check_settings(self.hidden_layer_sizes, self.lam, self.optimizer, self.max_iter, self.dtype)
        activation, output = check_kinds(self.activation, self.output)
        check_epsilon(self.epsilon_init)
        check_seed(self.seed)
        stopping = check_stopping(**_stopping(self))
        minibatch = replace(replace(self.minibatch, **stopping).checked(self.tol), _mirrored=True)
        return replace(
            self,
            hidden_layer_sizes=hidden,
            activation=activation,
            output=output,
            lam=float(self.lam),
            max_iter=int(self.max_iter),
            dtype=np.dtype(self.dtype).name,
            minibatch=minibatch,
            augment=check_augment(self.augment),
            **stopping,
        )

    def network(self, n_inputs: int, n_classes: int) -> Network:
        """The network these options describe for ``n_inputs`` features and ``n_classes`` classes."""
        return Network((n_inputs, *self.hidden_layer_sizes, n_classes), self.activation, self.output)

    @property
    def is_minibatch(self) -> bool:
        return self.optimizer in MINI_BATCH


def _stopping(options: Options) -> dict[str, Any]:
    """The stopping settings of ``options``: its own, or its MiniBatch's where only those
    differ from the default (code written before they were Options')."""
    defaults = {field.name: field.default for field in fields(Options) if field.name in STOPPING}
    if options.minibatch._mirrored:  # checked before: the MiniBatch's copy Options' own
        return {name: getattr(options, name) for name in STOPPING}
    chosen = {}
    for name in STOPPING:
        own, old = getattr(options, name), getattr(options.minibatch, name)
        if own != old and own != defaults[name] and old != defaults[name]:
            raise ParameterError(
                f"{name} is {own!r} in the options but {old!r} in their MiniBatch settings; set it once, "
                f"as Options.{name}, which every optimiser reads"
            )
        chosen[name] = old if own == defaults[name] else own
    return chosen


#: The defaults of every surface.
DEFAULTS = Options()
#: The estimator's default optimiser (scikit-learn's MLPClassifier users expect L-BFGS).
ESTIMATOR_OPTIMIZER = "lbfgs"


def check_cluster_optimizer(optimizer: str) -> None:
    """Only the full-batch optimisers train on a cluster: their data term distributes exactly."""
    if optimizer in MINI_BATCH:
        raise ParameterError(
            f"the mini-batch optimiser {optimizer!r} runs on one machine; on a cluster use a full-batch one "
            "(cg, lbfgs or fmincg), whose data term distributes exactly"
        )


def check_cluster_parameter(cluster: object, optimizer: str) -> None:
    """The estimator's cluster: a scheduler address or a local worker count, with a
    full-batch optimiser."""
    address = isinstance(cluster, str) and cluster.strip() != ""
    if not (address or _is_int(cluster, 1)):
        raise ParameterError(
            f"cluster must be a Dask scheduler address or a number of local worker processes >= 1, got {cluster!r}"
        )
    check_cluster_optimizer(optimizer)


def check_seed(seed: int | np.random.Generator) -> int | np.random.Generator:
    """A seed must be an integer from 0 to 2**32 - 1 (or a NumPy Generator, used as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if not (_is_int(seed, 0) and seed < 2**32):
        raise ParameterError(f"seed must be an integer from 0 to 2**32 - 1, got {seed!r}")
    return int(seed)


def _is_int(value, low):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


def check_stopping(early_stopping: bool, validation_fraction: float, n_iter_no_change: int) -> dict[str, Any]:
    """Reject out-of-range stopping settings (:class:`ParameterError`); return them normalised."""
    if not _is_int(n_iter_no_change, 1):
        raise ParameterError(f"n_iter_no_change must be an integer >= 1, got {n_iter_no_change!r}")
    if not (isinstance(validation_fraction, numbers.Real) and 0 < validation_fraction < 1):
        raise ParameterError(f"validation_fraction must lie strictly between 0 and 1, got {validation_fraction!r}")
    return {
        "early_stopping": bool(early_stopping),
        "validation_fraction": float(validation_fraction),
        "n_iter_no_change": int(n_iter_no_change),
    }


def check_minibatch_settings(
    batch_size: int,
    learning_rate: float | None,
    n_iter_no_change: int,
    early_stopping: bool,
    validation_fraction: float,
    tol: float | None = None,
) -> MiniBatch:
    """Reject out-of-range mini-batch settings (:class:`ParameterError`); return them."""
    if not _is_int(batch_size, 1):
        raise ParameterError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if learning_rate is not None and not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ParameterError(f"learning_rate must be a number > 0 (or None for the default), got {learning_rate!r}")
    stopping = check_stopping(early_stopping, validation_fraction, n_iter_no_change)
    if tol is not None and not (np.isfinite(tol) and tol >= 0):
        raise ParameterError(f"tol must be a number >= 0 (or None for the default), got {tol!r}")
    return MiniBatch(
        batch_size=int(batch_size),
        learning_rate=None if learning_rate is None else float(learning_rate),
        **stopping,
    )


def check_sample_weight(sample_weight: ArrayLike | None, m: int, dtype=np.float64) -> np.ndarray | None:
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


def check_memory(network: NetworkLike, m: int) -> None:
    """Refuse a network whose training would not fit in this machine's memory."""
    network = Network.of(network)
    layer_sizes, weights = network.layer_sizes, network.n_weights
    needed = BYTES_PER_WEIGHT * weights + BYTES_PER_ACTIVATION * m * sum(layer_sizes[1:])
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > available:
        raise ParameterError(
            f"a {'-'.join(map(str, layer_sizes))} network ({weights:,} weights) on {m:,} examples needs "
            f"about {needed / 2**30:,.0f} GiB to train; this machine has {available / 2**30:,.0f} GiB"
        )
