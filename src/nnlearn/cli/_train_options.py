"""The options of ``nnlearn train``: the training settings' declaration, and the verb's own.

Every training setting with a flag in :data:`nnlearn.training.SETTINGS` is an option here,
with its help, parser and group from there; the verb adds its own (the data, the
held-out part, outputs, checkpoints). A checkpoint's settings are options too
(:mod:`nnlearn.cli._resuming`), and so are a preset's (``--preset``): that is why the
settings default to None on the command line and take a preset's values, then the
declaration's defaults, only once a checkpoint has been read (:func:`settle`). An option
given on the command line wins over both.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from typing import Any

from ..datasets._images import FRAMINGS
from ..errors import ParameterError
from ..training._augment import Augment, check_augment
from ..training._checks import check_cluster_optimizer
from ..training._presets import PRESETS, preset_options
from ..training._settings import DEFAULTS, SETTINGS, Options, refuse_unused
from ._common import DATA_HELP, DEFAULT_MODEL
from ._remote import cluster_argument

#: The training settings on the command line, and their flags.
FLAGS = {name: spec.flag for name, spec in SETTINGS.items() if spec.flag}
#: The verb's own options that a resumed run keeps, and their defaults.
OWN_DEFAULTS = {"data": "digits20", "test_size": 0.2}
#: The argument groups of the help, by a setting's group.
GROUPS = {"mini-batch": "mini-batch optimizers (sgd, adam)", "stopping": "stopping (every optimizer)"}


def cli_default(name: str) -> Any:
    """A setting's default as the command line spells it."""
    spec = SETTINGS[name]
    return spec.cli_default if spec.cli_default is not None else getattr(DEFAULTS, name)


def add_setting(p, name: str, default: Any = None, help: str | None = None) -> None:
    """The option of setting ``name``: its flag, parser and help from the declaration; a
    verb with a default of its own passes it (and may say what the setting does there)."""
    spec = SETTINGS[name]
    shown = cli_default(name) if default is None else default
    shown = " ".join(map(str, shown)) if isinstance(shown, tuple) else shown
    note = f", {spec.default_note}" if spec.default_note else ""
    offered = f": {', '.join(spec.choices())}" if spec.choices else ""
    helptext = f"{help or spec.help}{offered} (default: {shown}{note})"
    if spec.parse is None and isinstance(getattr(DEFAULTS, name), bool):
        p.add_argument(spec.flag, dest=name, action=argparse.BooleanOptionalAction, default=default, help=helptext)
        return
    p.add_argument(
        spec.flag,
        dest=name,
        type=spec.parse,
        nargs=spec.nargs,
        default=default,
        metavar=spec.metavar,
        help=helptext,
    )


def preset_values(name):
    """The options a preset sets: its settings, refused where the command line has no option for one."""
    options = preset_options(name)
    augment = check_augment(options.augment)
    unsaid = [key for key in SETTINGS if not SETTINGS[key].flag and getattr(options, key) != getattr(DEFAULTS, key)]
    if unsaid or (augment is not None and augment != Augment(copies=augment.copies)):
        raise ParameterError(
            f"the preset {name!r} sets what nnlearn train has no option for (a tol, or distortion sizes); "
            "use nnlearn.train(..., preset=...)"
        )
    values = {key: getattr(options, key) for key in FLAGS}
    values["augment"] = 0 if augment is None else augment.copies
    return values


def add_arguments(p):
    # The training settings default to None here and to the declaration's in settle, so
    # that a resumed run can tell an option given on the command line from a default.
    d = {**OWN_DEFAULTS, **{name: cli_default(name) for name in FLAGS}}
    p.add_argument(
        "--data",
        metavar="NAME|FILE",
        default=None,
        help=f"{DATA_HELP}, an IDX image file (MNIST's, .gz too; its labels file beside it), or a shard "
        f"directory made by nnlearn shard (default: {d['data']})",
    )
    p.add_argument(
        "--preset",
        metavar="NAME",
        help=f"start from a preset's settings: {', '.join(PRESETS)} (course: the defaults; best: the settings "
        "docs/quality.md chose by cross-validation); the options given here override the preset's",
    )
    p.add_argument(
        "--test-size",
        type=float,
        default=None,
        metavar="F",
        help=f"held-out fraction of a stratified split; 0 trains on everything (default: {d['test_size']:g})",
    )
    p.add_argument(
        "--framing",
        default=None,
        metavar="NAME",
        help=f"how the data's digits sit in their images, {' or '.join(FRAMINGS)}, recorded for predict: "
        "a built-in dataset's own (digits20 mnist, digits8 fill), a data file's as stated (default: mnist)",
    )
    groups = {key: p.add_argument_group(title) for key, title in GROUPS.items()}
    for name, spec in SETTINGS.items():
        if spec.flag:
            add_setting(groups.get(spec.group, p), name)
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
        help="overwrite an existing model file, report or checkpoint (regular files only, never an input)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--cluster",
        metavar="ADDRESS|N",
        help="train on a Dask cluster: a scheduler address (tcp://host:8786) or N local worker processes; "
        "full-batch optimizers only; a shard directory (nnlearn shard) as --data stays on the workers "
        '(pip install "nnlearn[cluster]")',
    )


def settle(args, preset=None) -> dict[str, Any]:
    """Fill in the settings not given (after a checkpoint's were read): the preset's, then
    the declaration's defaults; returns the ones given on the command line."""
    given = {name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None}
    kept: set[str] = getattr(args, "kept", set())  # what a resumed checkpoint fixed, None included
    if preset is not None:  # the options given (or resumed) win over the preset's
        for name, value in preset_values(preset).items():
            if getattr(args, name) is None and name not in kept:
                setattr(args, name, value)
    for name in FLAGS:
        if getattr(args, name) is None and name not in kept:
            setattr(args, name, cli_default(name))
    for name, default in OWN_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    return given


def check_options(args, given, done) -> Options:
    """Every option, before any file is read or written: the training settings by their
    declaration (named by their flags), then the verb's own. Returns the settings."""
    values = {name: getattr(args, name) for name in FLAGS}
    options = replace(DEFAULTS, **values).checked(labels=FLAGS)
    refuse_unused(given, options, FLAGS)
    for name in FLAGS:  # normalised: a tuple of sizes, float lambda, ...
        setattr(args, name, getattr(options, name))
    augment = check_augment(options.augment)  # checked: None or an Augment
    args.augment = 0 if augment is None else augment.copies
    if not 0 <= args.test_size < 1:
        raise ParameterError(f"--test-size must be in [0, 1), got {args.test_size}")
    if not (args.checkpoint_every >= 0 and math.isfinite(args.checkpoint_every)):
        raise ParameterError(f"--checkpoint-every must be a number >= 0 (seconds), got {args.checkpoint_every}")
    if args.framing is not None and args.framing not in FRAMINGS:
        raise ParameterError(f"--framing must be {' or '.join(FRAMINGS)}, got {args.framing!r}")
    if args.cluster is not None:
        args.cluster = cluster_argument(args.cluster)
        check_cluster_optimizer(options.optimizer)
    if args.resume and options.max_iter < done:
        raise ParameterError(
            f"--max-iter {options.max_iter} is less than the {done} iterations {args.resume} has already run; "
            f"a resumed run cannot go back (give --max-iter {done} or more, or train afresh)"
        )
    return options
