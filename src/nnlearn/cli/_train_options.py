"""The options of ``nnlearn train``: their defaults, their parser and their checks.

A checkpoint's settings are options too (:mod:`nnlearn.cli._resuming`), and so are a
preset's (``--preset``, :mod:`nnlearn.training._presets`): that is why the training options default
to None on the command line and take a preset's values (:func:`preset_values`), then
:data:`TRAIN_DEFAULTS`, only once a checkpoint has been read. An option given on the
command line wins over both.
"""

from __future__ import annotations

import argparse
import math

from ..datasets._images import FRAMINGS
from ..errors import ParameterError
from ..optim._minibatch import LEARNING_RATES
from ..training._augment import Augment, check_augment
from ..training._presets import PRESETS, preset_options
from ..training._settings import (
    DEFAULTS,
    MINI_BATCH,
    OPTIMIZERS,
    check_cluster_optimizer,
    check_epsilon,
    check_kinds,
    check_settings,
)
from ._common import DATA_HELP, DEFAULT_MODEL, add_kinds
from ._remote import cluster_argument

_MINI = DEFAULTS.minibatch
# The training options' defaults are the library's (nnlearn.training._settings.DEFAULTS); the
# held-out fraction and the dataset are the command line's own.
TRAIN_DEFAULTS = {
    "data": "digits20",
    "hidden": list(DEFAULTS.hidden_layer_sizes),
    "lam": DEFAULTS.lam,
    "optimizer": DEFAULTS.optimizer,
    "max_iter": DEFAULTS.max_iter,
    "test_size": 0.2,
    "seed": DEFAULTS.seed,
    "dtype": DEFAULTS.dtype,
    "activation": DEFAULTS.activation,
    "output": DEFAULTS.output,
    "epsilon_init": DEFAULTS.epsilon_init,
    "batch_size": _MINI.batch_size,
    "learning_rate": _MINI.learning_rate,
    "early_stopping": DEFAULTS.early_stopping,
    "validation_fraction": DEFAULTS.validation_fraction,
    "n_iter_no_change": DEFAULTS.n_iter_no_change,
    "augment": 0,
}
#: The mini-batch options (argparse's names -> the options): sgd and adam only.
MINI_BATCH_OPTIONS = {
    "batch_size": "--batch-size",
    "learning_rate": "--learning-rate",
}
#: The stopping options, every optimizer's.
STOPPING_OPTIONS = {
    "early_stopping": "--early-stopping",
    "validation_fraction": "--validation-fraction",
    "n_iter_no_change": "--n-iter-no-change",
}


def preset_values(name):
    """The options (argparse's names) a preset sets: its Options as ``nnlearn train``'s options."""
    options = preset_options(name)
    augment = check_augment(options.augment)
    if options.tol is not None or (augment is not None and augment != Augment(copies=augment.copies)):
        raise ParameterError(
            f"the preset {name!r} sets what nnlearn train has no option for (a tol, or distortion sizes); "
            "use nnlearn.train(..., preset=...)"
        )
    return {
        "hidden": list(options.hidden_layer_sizes),
        "lam": options.lam,
        "optimizer": options.optimizer,
        "max_iter": options.max_iter,
        "seed": options.seed,
        "dtype": options.dtype,
        "activation": options.activation,
        "output": options.output,
        "epsilon_init": options.epsilon_init,
        "batch_size": options.minibatch.batch_size,
        "learning_rate": options.minibatch.learning_rate,
        "early_stopping": options.early_stopping,
        "validation_fraction": options.validation_fraction,
        "n_iter_no_change": options.n_iter_no_change,
        "augment": 0 if augment is None else augment.copies,
    }


def add_arguments(p):
    # The training options default to None here and to TRAIN_DEFAULTS in run, so that
    # a resumed run can tell an option given on the command line from a default.
    d = TRAIN_DEFAULTS
    p.add_argument("--data", metavar="NAME|FILE", default=None, help=f"{DATA_HELP} (default: {d['data']})")
    p.add_argument(
        "--preset",
        metavar="NAME",
        help=f"start from a preset's settings: {', '.join(PRESETS)} (course: the defaults; best: the settings "
        "docs/quality.md chose by cross-validation); the options given here override the preset's",
    )
    p.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help=f"hidden layer sizes (default: {' '.join(map(str, d['hidden']))})",
    )
    p.add_argument(
        "--lambda",
        dest="lam",
        type=float,
        default=None,
        metavar="L",
        help=f"regularisation strength (default: {d['lam']:g})",
    )
    p.add_argument(
        "--optimizer", default=None, metavar="NAME", help=f"one of {', '.join(OPTIMIZERS)} (default: {d['optimizer']})"
    )
    add_kinds(p, defaults=False)
    p.add_argument(
        "--max-iter",
        type=int,
        default=None,
        metavar="N",
        help=f"iterations; epochs for sgd and adam (default: {d['max_iter']})",
    )
    p.add_argument(
        "--test-size",
        type=float,
        default=None,
        metavar="F",
        help=f"held-out fraction of a stratified split; 0 trains on everything (default: {d['test_size']:g})",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="N",
        help=f"seeds the split, the initial weights, and the shuffling, early-stopping split and distortions "
        f"(default: {d['seed']})",
    )
    p.add_argument("--dtype", default=None, metavar="TYPE", help=f"float64 or float32 (default: {d['dtype']})")
    p.add_argument(
        "--epsilon-init",
        type=_epsilon,
        default=None,
        metavar="E|auto",
        help=f"half-width of the uniform initial weights, or auto to scale it to each layer (He's for relu) "
        f"(default: {d['epsilon_init']:g})",
    )
    p.add_argument(
        "--augment",
        type=int,
        default=None,
        metavar="N",
        help="also train on N distorted copies of each training image (rotation, scale, shear, shift: "
        "nnlearn.training._augment's defaults), made after the held-out splits; full-batch optimizers get one fixed "
        "set, sgd and adam fresh ones every epoch; 0 turns it off (default: 0)",
    )
    p.add_argument(
        "--framing",
        default=None,
        metavar="NAME",
        help=f"how the data's digits sit in their images, {' or '.join(FRAMINGS)}, recorded for predict: "
        "a built-in dataset's own (digits20 mnist, digits8 fill), a data file's as stated (default: mnist)",
    )
    mini = p.add_argument_group("mini-batch optimizers (sgd, adam)")
    mini.add_argument(
        "--batch-size", type=int, default=None, metavar="N", help=f"examples per step (default: {d['batch_size']})"
    )
    mini.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        metavar="ETA",
        help="step size (default: the optimizer's, "
        + ", ".join(f"{rate:g} for {name}" for name, rate in LEARNING_RATES.items())
        + ")",
    )
    stopping = p.add_argument_group("stopping (every optimizer)")
    stopping.add_argument(
        "--early-stopping",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="hold out a stratified part of the training data, stop once its accuracy has not improved for "
        "--n-iter-no-change iterations, and keep the best iteration's weights (default: off)",
    )
    stopping.add_argument(
        "--validation-fraction",
        type=float,
        default=None,
        metavar="F",
        help=f"the part held out for --early-stopping (default: {d['validation_fraction']:g})",
    )
    stopping.add_argument(
        "--n-iter-no-change",
        type=int,
        default=None,
        metavar="N",
        help="stop after N iterations (epochs) without improvement: of the held-out accuracy with "
        f"--early-stopping, else of sgd's and adam's cost (default: {d['n_iter_no_change']})",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help=f"model file to write (default: {DEFAULT_MODEL}); an interrupted run saves its weights so far there",
    )
    p.add_argument("--report", metavar="DIR", help="also write an HTML report into DIR")
    p.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="keep the run's state in FILE (rewritten every --checkpoint-every seconds and at the end)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds between checkpoint writes (default: 30)",
    )
    p.add_argument(
        "--resume",
        metavar="FILE",
        help="continue the run saved in checkpoint FILE, with its settings, to the weights the "
        "uninterrupted run reaches (cg and lbfgs replay their saved iterations first); says what "
        "differs from the checkpoint's run when that cannot be exact",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="overwrite an existing model file, report or checkpoint (regular files only)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--cluster",
        metavar="ADDRESS|N",
        help="train on a Dask cluster: a scheduler address (tcp://host:8786) or N local worker processes; "
        "full-batch optimizers only; a shard directory (nnlearn shard) as --data stays on the workers "
        '(pip install "nnlearn[cluster]")',
    )


def _epsilon(text):
    """--epsilon-init: a number, or "auto"."""
    return text if text == "auto" else float(text)


def check_options(args, given_mini, done):
    """Every option, before any file is read or written; returns the hidden layer sizes."""
    if not 0 <= args.seed < 2**32:
        raise ParameterError(f"--seed must be an integer from 0 to 2**32 - 1, got {args.seed}")
    hidden = check_settings(args.hidden, args.lam, args.optimizer, args.max_iter, args.dtype)
    check_kinds(args.activation, args.output)
    if not 0 <= args.test_size < 1:
        raise ParameterError(f"--test-size must be in [0, 1), got {args.test_size}")
    if not (args.checkpoint_every >= 0 and math.isfinite(args.checkpoint_every)):
        raise ParameterError(f"--checkpoint-every must be a number >= 0 (seconds), got {args.checkpoint_every}")
    if args.framing is not None and args.framing not in FRAMINGS:
        raise ParameterError(f"--framing must be {' or '.join(FRAMINGS)}, got {args.framing!r}")
    if given_mini and args.optimizer not in MINI_BATCH:
        raise ParameterError(
            f"{' and '.join(given_mini)} {'sets' if len(given_mini) == 1 else 'set'} the mini-batch optimizers "
            f"({', '.join(MINI_BATCH)}) only; "
            f"--optimizer {args.optimizer} would ignore {'it' if len(given_mini) == 1 else 'them'}"
        )
    if args.batch_size < 1:
        raise ParameterError(f"--batch-size must be an integer >= 1, got {args.batch_size}")
    if args.learning_rate is not None and not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise ParameterError(f"--learning-rate must be a number > 0, got {args.learning_rate}")
    if not 0 < args.validation_fraction < 1:
        raise ParameterError(f"--validation-fraction must lie strictly between 0 and 1, got {args.validation_fraction}")
    if args.n_iter_no_change < 1:
        raise ParameterError(f"--n-iter-no-change must be an integer >= 1, got {args.n_iter_no_change}")
    if args.augment < 0:
        raise ParameterError(f"--augment must be a number of copies >= 0 (0: off), got {args.augment}")
    try:
        check_epsilon(args.epsilon_init)
    except ParameterError:
        raise ParameterError(f"--epsilon-init must be a number > 0 or auto, got {args.epsilon_init}") from None
    if args.cluster is not None:
        args.cluster = cluster_argument(args.cluster)
        check_cluster_optimizer(args.optimizer)
    if args.resume and args.max_iter < done:
        raise ParameterError(
            f"--max-iter {args.max_iter} is less than the {done} iterations {args.resume} has already run; "
            f"a resumed run cannot go back (give --max-iter {done} or more, or train afresh)"
        )
    return hidden
