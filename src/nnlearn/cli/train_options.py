"""The options of ``nnlearn train``: their defaults, their parser and their checks.

A checkpoint's settings are options too (:mod:`nnlearn.cli.resuming`): that is why the
training options default to None on the command line and take :data:`TRAIN_DEFAULTS`
only once a checkpoint has been read.
"""

from __future__ import annotations

import argparse
import math

from ..errors import ParameterError
from ..images import FRAMINGS
from ..minibatch import LEARNING_RATES
from ..settings import DEFAULTS, MINI_BATCH, OPTIMIZERS, check_cluster_optimizer, check_kinds, check_settings
from .common import DATA_HELP, DEFAULT_MODEL, add_kinds
from .remote import cluster_argument

_MINI = DEFAULTS.minibatch
# The training options' defaults are the library's (nnlearn.settings.DEFAULTS); the
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
    "batch_size": _MINI.batch_size,
    "learning_rate": _MINI.learning_rate,
    "early_stopping": _MINI.early_stopping,
    "validation_fraction": _MINI.validation_fraction,
    "n_iter_no_change": _MINI.n_iter_no_change,
}
#: The mini-batch options (argparse's names -> the options): sgd and adam only.
MINI_BATCH_OPTIONS = {
    "batch_size": "--batch-size",
    "learning_rate": "--learning-rate",
    "early_stopping": "--early-stopping",
    "validation_fraction": "--validation-fraction",
    "n_iter_no_change": "--n-iter-no-change",
}


def add_arguments(p):
    # The training options default to None here and to TRAIN_DEFAULTS in run, so that
    # a resumed run can tell an option given on the command line from a default.
    d = TRAIN_DEFAULTS
    p.add_argument("--data", metavar="NAME|FILE", default=None, help=f"{DATA_HELP} (default: {d['data']})")
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
        help=f"seeds the split and the initial weights (default: {d['seed']})",
    )
    p.add_argument("--dtype", default=None, metavar="TYPE", help=f"float64 or float32 (default: {d['dtype']})")
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
    mini.add_argument(
        "--early-stopping",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="judge improvement on a held-out stratified part of the training data and keep the best "
        "epoch's weights (default: off)",
    )
    mini.add_argument(
        "--validation-fraction",
        type=float,
        default=None,
        metavar="F",
        help=f"the part held out for --early-stopping (default: {d['validation_fraction']:g})",
    )
    mini.add_argument(
        "--n-iter-no-change",
        type=int,
        default=None,
        metavar="N",
        help=f"stop after N epochs without improvement (default: {d['n_iter_no_change']})",
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
    if args.cluster is not None:
        args.cluster = cluster_argument(args.cluster)
        check_cluster_optimizer(args.optimizer)
    if args.resume and args.max_iter < done:
        raise ParameterError(
            f"--max-iter {args.max_iter} is less than the {done} iterations {args.resume} has already run; "
            f"a resumed run cannot go back (give --max-iter {done} or more, or train afresh)"
        )
    return hidden
