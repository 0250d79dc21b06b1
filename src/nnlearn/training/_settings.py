"""The training settings, each declared once with everything a surface needs.

A setting is a field of :class:`Options` whose metadata is a :class:`Setting`: its
default (the field's), its one check, its help, its command-line flag, whether and how
the web form offers it (:class:`WebField`), its key in a checkpoint and whether a resumed
run may change it. The surfaces derive from it and check nothing again: ``nnlearn train``
builds its options from :data:`SETTINGS` (``nnlearn.cli``), the estimator its parameters
(``nnlearn.estimator``), the web app its form (``nnlearn.web``), ``--resume`` its table of
what a checkpoint fixes, and ``docs/settings.md`` its table (``tests/test_settings.py``
keeps it so). A preset is an :class:`Options` (:mod:`nnlearn.training._presets`).

Every check raises :class:`~nnlearn.errors.ParameterError` naming the setting the way the
user gave it: ``lambda must be ...`` in the library, ``--lambda: lambda must be ...`` on
the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ..compute._products import BLAS_CHOICES
from ..core import ACTIVATIONS, OUTPUTS, Network
from ..errors import ParameterError
from ..optim import FULL_BATCH, LEARNING_RATES, MINI_BATCH, OPTIMIZERS
from ._augment import Augment, check_augment
from ._setting import (
    DTYPES,
    REQUIRED,
    Setting,
    WebField,
    dtype_name,
    epsilon_text,
    hidden_sizes,
    is_int,
    is_real,
    one_of,
    registered,
    setting,
)

__all__ = [
    "Options",
    "SETTINGS",
    "DEFAULTS",
    "refuse_unused",
    "check_setting",
]

#: How many iterations (epochs) without improvement end a run when n_iter_no_change is
#: None: sgd's and adam's training-cost rule counts 10 epochs, as scikit-learn's MLP does;
#: early stopping counts 30 iterations or epochs. The held-out part is small and its
#: accuracy noisy while the test accuracy still climbs: with 10, early stopping cost the
#: digits 1-4 points of test accuracy (cg, L-BFGS) and 2-3 (sgd, adam) against none, with
#: 30 at most 1 where max_iter allowed it (docs/augment.md, benchmarks/early_stopping.py).
PATIENCE, EARLY_STOPPING_PATIENCE = 10, 30


@dataclass(frozen=True, kw_only=True)
class Options:
    """Every setting of a training run but its data: the declaration of each.

    The defaults are the course's (a 400-25-10 sigmoid network, lambda 1, cg for 400
    iterations, seed 0, float64, initial weights in [-0.12, 0.12]).
    """

    hidden_layer_sizes: tuple[int, ...] = setting(
        (25,),
        title="hidden layer sizes",
        requirement="be positive integers",
        valid=None,
        normalise=hidden_sizes,
        help="hidden layer sizes, one number a layer",
        flag="--hidden",
        metavar="N",
        parse=int,
        nargs="+",
        web=WebField("hidden", minimum=1, limit="max_hidden_units"),
        checkpoint="hidden",
        resumed="kept",
        before=REQUIRED,
        estimator="hidden_layer_sizes",
    )
    activation: str = setting(
        "sigmoid",
        title="activation",
        requirement="be a registered activation",
        valid=None,
        normalise=registered(ACTIVATIONS, "activation"),
        choices=lambda: tuple(ACTIVATIONS),
        help="the hidden units' activation, any of nnlearn.core.ACTIVATIONS",
        default_note="the course's",
        flag="--activation",
        metavar="NAME",
        web=WebField("activation"),
        checkpoint="activation",
        resumed="kept",
        before="sigmoid",
        estimator="activation",
    )
    output: str = setting(
        "sigmoid",
        title="output",
        requirement="be a registered output",
        valid=None,
        normalise=registered(OUTPUTS, "output"),
        choices=lambda: tuple(OUTPUTS),
        help="the output layer and its loss, any of nnlearn.core.OUTPUTS",
        default_note="the course's",
        flag="--output",
        metavar="NAME",
        web=WebField("output"),
        checkpoint="output",
        resumed="kept",
        before="sigmoid",
        estimator="output",
    )
    lam: float = setting(
        1.0,
        title="lambda",
        requirement="be a finite number >= 0",
        valid=lambda value: is_real(value) and value >= 0,
        normalise=float,
        help="regularisation strength lambda: the penalty is lambda/(2m) times the squared non-bias weights",
        flag="--lambda",
        metavar="L",
        parse=float,
        web=WebField("lambda", minimum=0),
        checkpoint="lambda",
        resumed="kept",
        before=REQUIRED,
        estimator="lam",
    )
    optimizer: str = setting(
        "cg",
        title="optimizer",
        requirement="be a known optimizer",
        valid=None,
        normalise=one_of(OPTIMIZERS, "optimizer"),
        choices=lambda: OPTIMIZERS,
        help=f"the optimiser: full-batch {', '.join(FULL_BATCH)} (fmincg: the course's), mini-batch "
        f"{', '.join(MINI_BATCH)}",
        flag="--optimizer",
        metavar="NAME",
        web=WebField("optimizer"),
        checkpoint="optimizer",
        resumed="kept",
        before=REQUIRED,
        estimator="optimizer",
        estimator_default="lbfgs",
    )
    max_iter: int = setting(
        400,
        title="max_iter",
        requirement="be an integer >= 1",
        valid=lambda value: is_int(value, 1),
        normalise=int,
        help="iterations at most; epochs for the mini-batch optimizers",
        flag="--max-iter",
        metavar="N",
        parse=int,
        web=WebField("max_iter", default=100, minimum=1, limit="max_iter"),
        checkpoint="max_iter",
        resumed="extended",
        estimator="max_iter",
    )
    tol: float | None = setting(
        None,
        title="tol",
        requirement="be a number >= 0, or None for each optimizer's own",
        valid=lambda value: value is None or (is_real(value) and value >= 0),
        normalise=lambda value: None if value is None else float(value),
        help="the optimizer's tolerance (None: each optimizer's own default)",
        estimator="tol",
    )
    seed: int = setting(
        0,
        title="seed",
        requirement="be an integer from 0 to 2**32 - 1",
        valid=lambda value: is_int(value, 0) and value < 2**32,
        normalise=int,
        help="seeds the initial weights, and the shuffling, early-stopping split and distortions, each from a "
        "stream of its own (and nnlearn train's held-out split): the same seed gives the same model",
        flag="--seed",
        metavar="N",
        parse=int,
        checkpoint="seed",
        resumed="kept",
        before=REQUIRED,
        estimator="random_state",
    )
    dtype: str = setting(
        "float64",
        title="dtype",
        requirement="be float64 or float32",
        valid=None,
        normalise=dtype_name,
        choices=lambda: DTYPES,
        help="precision of the cost and gradient, and of the weights",
        flag="--dtype",
        metavar="TYPE",
        checkpoint="dtype",
        resumed="kept",
        before=REQUIRED,
        estimator="dtype",
    )
    blas: str = setting(
        "numpy",
        title="blas",
        requirement="be numpy or mkl",
        valid=None,
        normalise=one_of(BLAS_CHOICES, "blas"),
        choices=lambda: BLAS_CHOICES,
        help="the BLAS library of the two products with the examples: numpy (NumPy's own) or mkl (Intel MKL, "
        'faster on Intel processors: pip install "nnlearn[mkl]"); a model records it',
        flag="--blas",
        metavar="LIB",
        checkpoint="blas",
        resumed="kept",
        before="numpy",
        estimator="blas",
    )
    epsilon_init: float | str = setting(
        0.12,
        title="epsilon_init",
        requirement='be a number > 0 or "auto"',
        valid=lambda value: (isinstance(value, str) and value == "auto") or (is_real(value) and value > 0),
        normalise=lambda value: value if isinstance(value, str) else float(value),
        help="half-width of the uniform initial weights, or auto to scale it to each layer by its kind",
        flag="--epsilon-init",
        metavar="E|auto",
        parse=epsilon_text,
        checkpoint="epsilon_init",
        estimator="epsilon_init",
    )
    batch_size: int = setting(
        200,
        title="batch_size",
        requirement="be an integer >= 1",
        valid=lambda value: is_int(value, 1),
        normalise=int,
        help="examples per step",
        flag="--batch-size",
        metavar="N",
        parse=int,
        group="mini-batch",
        checkpoint="batch_size",
        resumed="kept",
        before=200,
        estimator="batch_size",
    )
    learning_rate: float | None = setting(
        None,
        title="learning_rate",
        requirement="be a number > 0, or None for the optimizer's own",
        valid=lambda value: value is None or (is_real(value) and value > 0),
        normalise=lambda value: None if value is None else float(value),
        help="step size (default: the optimizer's, "
        + ", ".join(f"{rate:g} for {name}" for name, rate in LEARNING_RATES.items())
        + ")",
        flag="--learning-rate",
        metavar="ETA",
        parse=float,
        group="mini-batch",
        checkpoint="learning_rate",
        resumed="kept",
        before=None,
        estimator="learning_rate",
    )
    early_stopping: bool = setting(
        False,
        title="early_stopping",
        requirement="be True or False",
        valid=lambda value: isinstance(value, (bool, np.bool_)),
        normalise=bool,
        help="hold out a stratified part of the training data, stop once neither its accuracy nor its loss "
        "has improved for n_iter_no_change iterations (epochs), and keep the weights of its best accuracy",
        flag="--early-stopping",
        group="stopping",
        checkpoint="early_stopping",
        resumed="kept",
        before=False,
        estimator="early_stopping",
    )
    validation_fraction: float = setting(
        0.1,
        title="validation_fraction",
        requirement="lie strictly between 0 and 1",
        valid=lambda value: is_real(value) and 0 < value < 1,
        normalise=float,
        help="the part held out for early stopping",
        flag="--validation-fraction",
        metavar="F",
        parse=float,
        group="stopping",
        checkpoint="validation_fraction",
        resumed="kept",
        before=0.1,
        estimator="validation_fraction",
    )
    n_iter_no_change: int | None = setting(
        None,
        title="n_iter_no_change",
        requirement="be an integer >= 1, or None for the default",
        valid=lambda value: value is None or is_int(value, 1),
        normalise=lambda value: None if value is None else int(value),
        help="stop after N iterations (epochs) without improvement: of the held-out part with early stopping, "
        f"else of sgd's and adam's cost (default: {EARLY_STOPPING_PATIENCE} with early stopping, else "
        f"{PATIENCE})",
        flag="--n-iter-no-change",
        metavar="N",
        parse=int,
        group="stopping",
        checkpoint="n_iter_no_change",
        resumed="kept",
        before=10,
        estimator="n_iter_no_change",
    )
    augment: Augment | int | None = setting(
        None,
        title="augment",
        requirement="be a number of distorted copies >= 0 (0: off) or an nnlearn.training.Augment",
        valid=lambda value: value is None or isinstance(value, Augment) or is_int(value, 0),
        normalise=check_augment,
        help="also train on N distorted copies of each training image (rotation, scale, shear, shift), made "
        "after the held-out splits; full-batch optimizers get one fixed set, sgd and adam fresh ones every epoch",
        flag="--augment",
        metavar="N",
        parse=int,
        cli_default=0,
        checkpoint="augment",
        resumed="kept",
        before=0,
        estimator="augment",
    )

    def checked(self, labels: Mapping[str, str] | None = None) -> Options:
        """These options checked and normalised; ParameterError naming the first bad one
        (as ``labels`` maps names to the user's spelling: the command line's flags)."""
        labels = labels or {}
        values = {name: spec.check(getattr(self, name), labels.get(name)) for name, spec in SETTINGS.items()}
        return replace(self, **values)

    def network(self, n_inputs: int, n_classes: int) -> Network:
        """The network these options describe for ``n_inputs`` features and ``n_classes`` classes."""
        return Network((n_inputs, *self.hidden_layer_sizes, n_classes), self.activation, self.output)

    @property
    def is_minibatch(self) -> bool:
        return self.optimizer in MINI_BATCH

    @property
    def patience(self) -> int:
        """n_iter_no_change, or when it is None the default of the rule it sets (:data:`PATIENCE`)."""
        if self.n_iter_no_change is not None:
            return self.n_iter_no_change
        return EARLY_STOPPING_PATIENCE if self.early_stopping else PATIENCE


#: Every setting by its name (train's keyword, Options' field), in declaration order.
SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in fields(Options)}
#: The course's settings: the default of every surface.
DEFAULTS = Options()


def check_setting(name: str, value: Any, label: str | None = None) -> Any:
    """One setting's value checked and normalised by its declaration (for the surfaces
    that take a setting on its own: a verb's option, a grid of values)."""
    return SETTINGS[name].check(value, label)


def refuse_unused(given: Mapping[str, Any], options: Options, labels: Mapping[str, str] | None = None) -> None:
    """Refuse settings that were given but that the run would not read (they would be
    ignored in silence): mini-batch settings with a full-batch optimizer; without early
    stopping, validation_fraction, and n_iter_no_change unless sgd or adam watch their cost."""
    labels = labels or {}
    unused = [name for name in given if SETTINGS[name].group == "mini-batch" and not options.is_minibatch]
    if unused:
        named = " and ".join(labels.get(name, name) for name in unused)
        verb, pronoun = ("sets", "it") if len(unused) == 1 else ("set", "them")
        raise ParameterError(
            f"{named} {verb} the mini-batch optimizers ({', '.join(MINI_BATCH)}) only; "
            f"optimizer {options.optimizer} would ignore {pronoun}"
        )
    stopping = labels.get("early_stopping", "early_stopping")
    if "validation_fraction" in given and not options.early_stopping:
        raise ParameterError(
            f"{labels.get('validation_fraction', 'validation_fraction')} sets early stopping's held-out part only; "
            f"without {stopping} it would be ignored"
        )
    if "n_iter_no_change" in given and not (options.early_stopping or options.is_minibatch):
        raise ParameterError(
            f"{labels.get('n_iter_no_change', 'n_iter_no_change')} sets early stopping, and the mini-batch "
            f"optimizers' ({', '.join(MINI_BATCH)}) own stopping, only; optimizer {options.optimizer} without "
            f"{stopping} would ignore it"
        )
