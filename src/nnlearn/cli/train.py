"""``nnlearn train``: train, save, report; interruptions, checkpoints and resuming.

The order of its checks is the user's: the options first, then the inputs (a checkpoint
to resume, the data), then the outputs (an existing file needs ``--force``; a device is
never replaced; each output's directory must take a file), and only then the training.
Once a run has trained, its weights are not lost to a failed write: they go to a
fallback file that the command names (:func:`fallback_dirs`).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import shlex
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..core import Network
from ..datasets import DATASET_FRAMING, DATASETS, cache_dir
from ..errors import NNLearnError, ParameterError
from ..images import FRAMINGS
from ..minibatch import LEARNING_RATES
from ..monitor import say
from ..settings import (
    DEFAULTS,
    MINI_BATCH,
    OPTIMIZERS,
    check_cluster_optimizer,
    check_kinds,
    check_memory,
    check_settings,
)
from ..shards import MANIFEST
from .common import (
    DATA_HELP,
    DEFAULT_MODEL,
    add_kinds,
    architecture,
    emit,
    import_report,
    percent,
    refuse_existing,
    split_data,
)
from .remote import cluster_argument, cluster_data, clustered

SUMMARY = "train a network (default: the course's 400-25-10 on the embedded digits)"
EXAMPLES = """\
  nnlearn train
  nnlearn train --hidden 50 25 --optimizer lbfgs --test-size 0 --out big.npz
  nnlearn train --hidden 100 --activation relu --output softmax --optimizer lbfgs --out relu.npz
  nnlearn train --optimizer adam --batch-size 100 --learning-rate 0.001 --early-stopping --out adam.npz
  nnlearn train --optimizer fmincg --checkpoint run.ckpt --out m.npz   (Ctrl-C, then:)
  nnlearn train --resume run.ckpt --out m.npz --force"""

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

#: Why a run stopped (``model.history["stop_reason"]``, nnlearn.optimize's reasons), in words.
STOP_WORDS = {
    "converged": "converged",
    "max_iter": "--max-iter reached",
    "line_search_failed": "line search failed (no step lowered the cost further; the weights are the last good ones)",
    "interrupted": "interrupted",
    "not_finite": "the cost is not finite",
}

# The time notice: the cost and gradient take about 3 multiply-adds per example and
# weight (forward, back, gradient), a full-batch iteration up to 2 evaluations (its line
# search). A current core does 8-16e9 multiply-adds per second in these products (an
# AVX-512 machine shared with other jobs); 2e9 is assumed, an old or busy core's, so that
# a slower machine is not left unwarned.
MULTIPLY_ADDS_PER_EXAMPLE_WEIGHT = 3
EVALUATIONS_PER_ITERATION = 2
ASSUMED_RATE = 2e9
#: A run expected to take longer than this many seconds is announced.
NOTICE_SECONDS = 180


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


def run(args):
    given_mini = [option for dest, option in MINI_BATCH_OPTIONS.items() if getattr(args, dest) is not None]
    # 1. Options (a checkpoint's settings are options too: it is read first).
    resumed, state = _resume(args)
    done = len(state.get("history", ())) if state else 0
    for dest, default in TRAIN_DEFAULTS.items():
        if getattr(args, dest) is None:
            setattr(args, dest, default)
    hidden = _check_options(args, given_mini, done)
    report = import_report() if args.report else None
    # 2. Inputs (a shard directory stays on a cluster's workers).
    with clustered(args) as cluster:
        return _run_with(args, cluster, resumed, state, done, hidden, report)


def _run_with(args, cluster, resumed, state, done, hidden, report):
    X, y = cluster_data(args, cluster)
    framing = _framing(args)
    X_train, X_test, y_train, y_test = split_data(X, y, args.test_size, args.seed)
    network = Network((X.shape[1], *hidden, np.unique(y_train).size), args.activation, args.output)
    check_memory(network, X_train.shape[0] if cluster is None else 0)
    # 3. Outputs.
    out = args.out or DEFAULT_MODEL
    checkpoint = args.checkpoint or args.resume
    _check_outputs(args, out, checkpoint, report)
    settings = _train_settings(args, hidden, framing)
    settings.update(exactness_record(args.data, X, y, X_train, network, args.optimizer))
    differences = compare_exactness(resumed, settings) if resumed is not None else []
    for line in _difference_lines(args.resume, differences):
        say(f"nnlearn train: warning: {line}")
    notice = time_notice(network, X_train.shape[0], _iterations_to_run(args, done), settings["exact.shards"])
    if notice:
        say(f"nnlearn train: notice: {notice}")
    # 4. Training.
    from ..monitor import Monitor

    monitor = Monitor(
        args.max_iter,
        done,
        not (args.quiet or args.json),
        checkpoint,
        settings,
        args.checkpoint_every,
        replace_checkpoint=args.force or (resumed is not None and _same_path(checkpoint, args.resume)),
        prefix="nnlearn train",
    )
    try:
        with monitor:
            data = (X_train, y_train, X_test, y_test)
            return _train_and_save(args, monitor, data, hidden, state, settings, report, differences, cluster)
    except KeyboardInterrupt:
        return _aborted(args, monitor, checkpoint, out)


def _train_and_save(args, monitor, data, hidden, state, settings, report, differences, cluster=None):
    from ..errors import ExamplesLost
    from ..training import train

    X_train, y_train, X_test, y_test = data
    out = args.out or DEFAULT_MODEL
    checkpoint = monitor.checkpoint_path
    try:
        model = _train(train, args, monitor, data, hidden, state, checkpoint, cluster)
    except ExamplesLost as exc:
        return _lost(args, monitor, exc, settings, out)
    monitor.flush()  # the checkpoint first: it is what a resumed run needs
    reason = stop_reason(model)
    monitor.finish(reason)
    # Recorded so that `nnlearn evaluate MODEL` can judge the model on its held-out part.
    model.history.update(
        data=settings["data"], test_size=args.test_size, split_seed=args.seed, framing=settings["framing"]
    )
    saved, errors = save_weights(model, out, args.force, monitor)
    if monitor.interrupted:
        return _interrupted(args, monitor, model, saved, errors, checkpoint, out)
    result = _train_result(model, saved, settings, X_train, y_train, X_test, y_test, cluster)
    if args.resume:
        result["resumed_from"] = args.resume
        result["resume_differences"] = differences
    if report is not None:
        result["report"] = None
        try:
            with monitor.protect(f"the report {args.report}"):
                result["report"] = str(_write_report(report, model, args, X_train, y_train, X_test, y_test, settings))
        except (OSError, NNLearnError) as exc:
            errors.append(f"cannot write the report {args.report} ({_why(exc)}); the model was saved to {saved}")
    result["errors"] = errors
    emit(args, result, _train_text(result, model))
    for error in errors:
        say(f"nnlearn train: error: {error}")
    return 1 if errors else 0


def _lost(args, monitor, exc, settings, out):
    """The cluster went away: keep the weights reached so far, and say so in one line."""
    model = exc.model
    if model is None:
        raise exc
    model.history.update(
        data=settings["data"], test_size=args.test_size, split_seed=args.seed, framing=settings["framing"]
    )
    saved, errors = save_weights(model, out, True if Path(out).exists() and args.force else args.force, monitor)
    kept = f"the weights of iteration {model.history['n_iter']} saved to {saved}" if saved else "; ".join(errors)
    say(f"nnlearn train: error: {exc}; {kept}")
    return 2


def _train(train, args, monitor, data, hidden, state, checkpoint, cluster):
    X_train, y_train, _, _ = data
    return train(
        X_train,
        y_train,
        hidden,
        args.lam,
        args.optimizer,
        args.max_iter,
        seed=args.seed,
        dtype=args.dtype,
        activation=args.activation,
        output=args.output,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        early_stopping=args.early_stopping,
        validation_fraction=args.validation_fraction,
        n_iter_no_change=args.n_iter_no_change,
        callback=monitor.callback,
        checkpoint=monitor.checkpoint if checkpoint else None,
        resume=state,
        cluster=cluster,
    )


def _write_report(report, model, args, X_train, y_train, X_test, y_test, settings):
    # With --test-size 0 there is no held-out part: the report judges the training data,
    # and says so.
    held_out = X_test is not None
    return report.write_report(
        model,
        args.report,
        X_test if held_out else X_train,
        y_test if held_out else y_train,
        X_train=X_train if held_out else None,
        y_train=y_train if held_out else None,
        settings=settings_shown(settings),
        overwrite=args.force,
        data_role="test" if held_out else "training",
    )


def settings_shown(settings):
    """The settings without the exactness record (which is for resuming, not for reading)."""
    return {key: value for key, value in settings.items() if not key.startswith(EXACT)}


# ------------------------------------------------------------------------ checks


def _check_options(args, given_mini, done):
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


def _framing(args):
    """The data's framing: a built-in dataset's own (a contradicting --framing is refused),
    else what --framing states, else "mnist"."""
    known = DATASET_FRAMING.get(args.data)
    if known is None:
        return args.framing or "mnist"
    if args.framing is not None and args.framing != known:
        raise ParameterError(f"--framing {args.framing} contradicts {args.data}, whose digits are framed {known!r}")
    return known


def _check_outputs(args, out, checkpoint, report):
    """Refuse an output that exists (without --force) or cannot be written, before training."""
    refuse_existing(out, args.force)
    if report is not None:
        directory = Path(args.report)
        if directory.exists() and not directory.is_dir():
            raise ParameterError(f"--report {args.report} is a file; give a directory")
        clashes = set(report.report_clashes(directory))
        for path in report.report_files(directory):
            # A half-written report's own leftovers are no clash: they are replaced.
            refuse_existing(path, args.force or path not in clashes, option="--report")
    # A resumed run rewrites its own checkpoint; any other checkpoint file is an output
    # like the others, resumed run or not.
    if args.checkpoint and not (args.resume and _same_path(args.checkpoint, args.resume)):
        refuse_existing(args.checkpoint, args.force, option="--checkpoint")
    if checkpoint and _same_path(checkpoint, out):
        raise ParameterError(f"--out {out} and the checkpoint {checkpoint} are the same file; give two names")


def _same_path(a, b):
    if a is None or b is None:
        return False
    return Path(a).resolve() == Path(b).resolve()


# --------------------------------------------------------------------- resuming

# Training options a checkpoint fixes (a resumed run keeps its data, network and seed):
# argparse's name -> (the option, its key in the checkpoint's settings).
RESUMED = {
    "data": ("--data", "data"),
    "hidden": ("--hidden", "hidden"),
    "lam": ("--lambda", "lambda"),
    "optimizer": ("--optimizer", "optimizer"),
    "test_size": ("--test-size", "test_size"),
    "seed": ("--seed", "seed"),
    "dtype": ("--dtype", "dtype"),
    "activation": ("--activation", "activation"),
    "output": ("--output", "output"),
    "framing": ("--framing", "framing"),
    **{dest: (option, dest) for dest, option in MINI_BATCH_OPTIONS.items()},
}
# What a checkpoint that does not record a setting ran with: the course's kinds and the
# mini-batch defaults (written before those settings existed, or by a full-batch run);
# a framing not recorded is worked out as for a new run (None).
RESUMED_BEFORE = {
    "activation": "sigmoid",
    "output": "sigmoid",
    "framing": None,
    **{dest: TRAIN_DEFAULTS[dest] for dest in MINI_BATCH_OPTIONS},
}
_MISSING = object()


def _resume(args):
    """With --resume, the checkpoint's settings and state; options that contradict them are refused."""
    if not args.resume:
        return None, None
    from ..modelio import load_checkpoint

    saved, state = load_checkpoint(args.resume)
    for dest, (option, key) in RESUMED.items():
        recorded = saved.get(key, RESUMED_BEFORE.get(key, _MISSING))
        if recorded is _MISSING:
            raise ParameterError(f"{args.resume}: the checkpoint does not record {option}")
        given = getattr(args, dest)
        if recorded is None:  # not recorded, and worked out as for a new run
            continue
        if given is not None and given != recorded and not (dest == "data" and _same_file(given, recorded)):
            raise ParameterError(
                f"{option} {given} differs from the checkpoint's {recorded}; a resumed run keeps its settings"
            )
        setattr(args, dest, recorded)
    if args.max_iter is None:  # a --max-iter given on the command line extends the run
        args.max_iter = saved.get("max_iter")
    return saved, state


def _same_file(a, b):
    return a not in DATASETS and b not in DATASETS and Path(a).resolve() == Path(b).resolve()


def _iterations_to_run(args, done):
    # SciPy's optimisers replay a resumed run's iterations from its start.
    return args.max_iter if args.optimizer in ("cg", "lbfgs") else max(0, args.max_iter - done)


#: Keys of a checkpoint's settings that record what a resumed run's exactness depends on.
#: Later nnlearn versions may add keys with this prefix (a cluster's data partitions, a
#: compute plan); :func:`compare_exactness` compares every one it finds.
EXACT = "exact."
#: What a difference in each recorded key means for the resumed run.
EXACT_MEANING = {
    "exact.data_sha256": (
        "the data",
        "the resumed run goes on with other examples than the run it continues, so it will not end "
        "where that run would have",
    ),
    "exact.shards": (
        "the shards of examples the cost is summed in (one per thread)",
        "the costs and gradients differ in their last bits, so the run will not reach the uninterrupted "
        "run's weights bit for bit (cg and lbfgs replays will report the mismatch)",
    ),
    "exact.blas": (
        "the BLAS library",
        "its kernels round differently, so the run will not reach the uninterrupted run's weights bit for bit",
    ),
    "exact.numpy": ("the NumPy version", "its arithmetic may round differently in the last bits"),
    "exact.nnlearn": ("the nnlearn version", "its computations may differ, however slightly"),
}
# Recorded for the messages, compared through what it decides (the shards).
_EXACT_INFORMATION = {"exact.threads"}


def exactness_record(data, X, y, X_train, network, optimizer):
    """What a resumed run must find unchanged to reach the uninterrupted run's weights exactly.

    Returns
    -------
    dict
        Flat ``exact.*`` keys (a checkpoint's settings hold JSON scalars): the nnlearn,
        NumPy and BLAS versions, the threads and the shards of examples they sum the cost
        in, and the SHA-256 of the data (the file's bytes, or a built-in dataset's arrays).
    """
    from threadpoolctl import threadpool_info

    from ..threads import ShardedDataTerm, default_threads

    threads = default_threads()
    # Batches run on one thread (nnlearn.training); the full-batch data term cuts the
    # examples into shards as ShardedDataTerm does (it only slices them here).
    shards = 1 if optimizer in MINI_BATCH else len(ShardedDataTerm(X_train, X_train, network, threads=threads).shards)
    blas = sorted(
        f"{lib.get('internal_api')} {lib.get('version')} {lib.get('architecture') or ''}".strip()
        for lib in threadpool_info()
        if lib.get("user_api") == "blas"
    )
    return {
        "exact.nnlearn": __version__,
        "exact.numpy": np.__version__,
        "exact.blas": "; ".join(blas) or "unknown",
        "exact.threads": threads,
        "exact.shards": shards,
        "exact.data_sha256": data_digest(data, X, y),
    }


def data_digest(data, X, y):
    """SHA-256 of a data file's bytes, or of a built-in dataset's arrays (dtype, shape, values)."""
    digest = hashlib.sha256()
    if data in DATASETS:
        for array in (X, y):
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
    elif Path(data).is_dir():  # a shard directory: its manifest holds every shard's SHA-256
        digest.update((Path(data) / MANIFEST).read_bytes())
    else:
        with open(data, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def compare_exactness(saved, now):
    """How the resumed checkpoint's record (``saved``) differs from this run's (``now``).

    Returns
    -------
    list of dict
        ``{"what", "then", "now", "meaning"}`` per difference; one entry with ``what``
        "record" when the checkpoint has no record (an older nnlearn wrote it).
    """
    recorded = {key: value for key, value in saved.items() if key.startswith(EXACT)}
    if not recorded:
        return [
            {
                "what": "record",
                "then": None,
                "now": None,
                "meaning": "the checkpoint does not record what exactness depends on (an older nnlearn wrote "
                "it): whether the resumed run reaches the uninterrupted run's weights cannot be checked",
            }
        ]
    differences = []
    current = {key: value for key, value in now.items() if key.startswith(EXACT)}
    for key in sorted(set(recorded) | set(current)):
        if key in _EXACT_INFORMATION or recorded.get(key) == current.get(key):
            continue
        what, meaning = EXACT_MEANING.get(
            key, (key[len(EXACT) :], "this nnlearn cannot tell what that means for the resumed run")
        )
        then, here = recorded.get(key), current.get(key)
        if key == "exact.shards":
            then = f"{then} ({recorded.get('exact.threads')} threads)"
            here = f"{here} ({current.get('exact.threads')} threads)"
        differences.append({"what": what, "then": then, "now": here, "meaning": meaning})
    return differences


def _difference_lines(path, differences):
    for d in differences:
        if d["then"] is None and d["now"] is None:
            yield f"resuming {path}: {d['meaning']}"
        else:
            then, now = _short(d["then"]), _short(d["now"])
            yield f"resuming {path}: {d['what']} differ: {then} then, {now} now; {d['meaning']}"


def _short(value):
    text = str(value)
    return text[:12] + "..." if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


def time_notice(network, m, iterations, threads):
    """A line announcing a run expected to take more than :data:`NOTICE_SECONDS`, else None.

    ``threads`` is how many share the work (the data term's shards). The estimate is
    deliberately slow (:data:`ASSUMED_RATE`): it is there to warn before minutes of work,
    not to predict the time.
    """
    per_evaluation = MULTIPLY_ADDS_PER_EXAMPLE_WEIGHT * m * network.n_weights / (ASSUMED_RATE * threads)
    per_iteration = EVALUATIONS_PER_ITERATION * per_evaluation
    seconds = per_iteration * iterations
    if seconds <= NOTICE_SECONDS:
        return None
    return (
        f"{iterations} iterations of a {'-'.join(map(str, network.layer_sizes))} network "
        f"({network.n_weights:,} weights) on {m:,} examples may take about {_duration(seconds)} "
        f"({_duration(per_iteration)} per iteration, assuming {_number(ASSUMED_RATE)} multiply-adds per second "
        f"on each of {threads} thread{'s' if threads != 1 else ''}); Ctrl-C stops it and keeps the weights"
    )


def _number(value):
    """2e9 rather than Python's 2e+09."""
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _duration(seconds):
    if seconds < 90:
        return f"{seconds:.2g} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ---------------------------------------------------------------------- saving


def fallback_dirs():
    """Where trained weights go when their file cannot be written: the user's cache
    directory (``$NNLEARN_CACHE_DIR`` or ``~/.cache/nnlearn``), then the system's
    temporary directory."""
    return [cache_dir() / "rescued", Path(tempfile.gettempdir())]


def save_weights(model, out, force, monitor):
    """Save ``model`` to ``out``, or, failing that, to a fallback file.

    Returns
    -------
    path : Path or None
        Where the weights are (None: nowhere could take them).
    errors : list of str
        What failed and where the weights went instead.
    """
    try:
        with monitor.protect(str(out)):
            return model.save(out, overwrite=force), []
    except (OSError, NNLearnError) as exc:
        why = _why(exc)
    stem = Path(out).stem[:80] or "nnlearn-model"
    name = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.npz"
    tried = []
    for directory in fallback_dirs():
        try:
            with monitor.protect(str(directory / name)):
                path = model.save(directory / name)
        except (OSError, NNLearnError) as exc:
            tried.append(f"{directory}: {_why(exc)}")
            continue
        return path, [f"cannot write {out} ({why}); the trained weights were saved to {path} instead"]
    return None, [f"cannot write {out} ({why}), nor a fallback ({'; '.join(tried)}): the trained weights are lost"]


def _why(exc):
    """Why a write failed, in a few words."""
    from ..files import OutputExistsError

    if isinstance(exc, OutputExistsError):
        return "it was created by someone else while this run trained; not replaced without --force"
    if isinstance(exc, OSError) and not isinstance(exc, NNLearnError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def stop_reason(model):
    """Why training stopped: the optimiser's reason (``history["stop_reason"]``), or, for a
    history without it, what the history shows."""
    history = model.history
    reason = history.get("stop_reason")
    if reason:
        return reason
    if history.get("interrupted"):
        return "interrupted"
    return "max_iter" if history.get("n_iter", 0) >= history.get("max_iter", math.inf) else None


def _resume_command(args, checkpoint, out):
    words = ["nnlearn", "train", "--resume", str(checkpoint), "--out", str(out)]
    if args.report:
        words += ["--report", str(args.report)]
    if os.path.lexists(out):
        words.append("--force")  # it holds this run's weights so far, which the resumed run replaces
    return shlex.join(words)


def _interrupted(args, monitor, model, saved, errors, checkpoint, out):
    """A stop signal: the weights reached were saved; say where, and how to go on."""
    kept = [f"weights so far saved to {saved}"] if saved else []
    resume = None
    if checkpoint and (monitor.saved_iteration is not None or _same_path(checkpoint, args.resume)):
        resume = _resume_command(args, checkpoint, out)
        kept.append(f"resume with: {resume}")
    n_iter = model.history["n_iter"]
    if args.json:
        payload = {
            "interrupted": True,
            "signal": monitor.signal_name,
            "n_iter": n_iter,
            "stop_reason": "interrupted",
            "model": None if saved is None else str(saved),
            "checkpoint": checkpoint,
            "resume": resume,
            "errors": errors,
        }
        emit(args, payload, [])
    signal_name = "" if monitor.signal_name in (None, "SIGINT") else f" by {monitor.signal_name}"
    say(f"nnlearn train: interrupted{signal_name} after iteration {n_iter}; {'; '.join(kept) or 'nothing saved'}")
    for error in errors:
        say(f"nnlearn train: error: {error}")
    return monitor.exit_status


def _aborted(args, monitor, checkpoint, out):
    """A second stop signal: training ended at once; say what was kept."""
    if checkpoint and monitor.saved_iteration is not None:
        kept = (
            f"the checkpoint {checkpoint} holds iteration {monitor.saved_iteration}; "
            f"resume with: {_resume_command(args, checkpoint, out)}"
        )
    else:
        kept = "no weights were saved"
    say(f"nnlearn train: aborted; {kept}")
    return monitor.exit_status


# ---------------------------------------------------------------------- output


def _train_settings(args, hidden, framing):
    data = args.data
    if data not in DATASETS:
        data = str(Path(data).resolve())
    settings = {
        "data": data,
        "hidden": list(hidden),
        "lambda": args.lam,
        "optimizer": args.optimizer,
        "max_iter": args.max_iter,
        "test_size": args.test_size,
        "seed": args.seed,
        "dtype": args.dtype,
        "activation": args.activation,
        "output": args.output,
        "framing": framing,
    }
    if args.optimizer in MINI_BATCH:
        settings.update({dest: getattr(args, dest) for dest in MINI_BATCH_OPTIONS})
    return settings


def _train_result(model, path, settings, X_train, y_train, X_test, y_test, cluster=None):
    from ..cluster import score

    history = model.history
    return {
        "final_cost": history["cost"][-1] if history["cost"] else None,
        "train_accuracy": score(model, X_train, y_train, cluster),
        "test_accuracy": None if X_test is None else score(model, X_test, y_test, cluster),
        "seconds": history["seconds"],
        "model": None if path is None else str(path),
        "settings": settings_shown(settings),
        "n_iter": history["n_iter"],
        "stop_reason": stop_reason(model),
        "stop_message": history.get("message"),
        "m_train": len(y_train),
        "m_test": 0 if y_test is None else len(y_test),
    }


def _stopped_text(result):
    reason = result["stop_reason"]
    words = STOP_WORDS.get(reason, reason or "unknown")
    message = result.get("stop_message")
    return f"{words} ({message})" if message else words


def _train_text(result, model):
    s = result["settings"]
    if result["m_test"]:
        data = f"{s['data']}: {result['m_train']} training / {result['m_test']} test examples"
    else:
        data = f"{s['data']}: {result['m_train']} training examples (no held-out part)"
    lines = [
        f"network          {architecture(model)}, lambda {s['lambda']:g}, {s['optimizer']}, "
        f"{result['n_iter']} iterations, {s['dtype']}, seed {s['seed']}",
        f"data             {data}",
        f"stopped          {_stopped_text(result)}",
        f"final cost       {result['final_cost']:.6f}",
        f"train accuracy   {percent(result['train_accuracy'])}",
        f"test accuracy    {percent(result['test_accuracy'])}" + ("" if result["m_test"] else " (no held-out part)"),
        f"time             {result['seconds']:.2f} s",
        f"model saved to   {result['model'] or 'nowhere (see the error below)'}",
    ]
    if result.get("report"):
        lines.append(f"report           {result['report']}")
    return lines
