"""``nnlearn train``: train, save, report.

The order of its checks is the user's: the options first, then the inputs (a checkpoint
to resume, the data), then the outputs (none may be an input, even with ``--force``; an
existing file needs ``--force``; a device is never replaced; each output's directory must
take a file), and only then the training. Once a run has trained, its weights are not
lost to a failed write: they go to a fallback file that the command names
(:func:`~nnlearn.cli._saving.fallback_dirs`).

The options are :mod:`nnlearn.cli._train_options`' (the training settings' declaration,
and the verb's own), resuming a checkpoint :mod:`nnlearn.cli._resuming`'s, saving the
weights, checking the outputs and ending an interrupted run :mod:`nnlearn.cli._saving`'s.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from ..core import Network
from ..datasets._builtin import DATASET_FRAMING, DATASETS
from ..errors import NNLearnError, ParameterError
from ..optim import MINI_BATCH, REPLAYING
from ..training import ResumeWarning
from ..training._augment import Augment, augment_record
from ..training._checks import check_memory
from ..training._exactness import EXACT, compare_exactness, difference_lines, exactness_record
from ..training._settings import SETTINGS
from ._common import DEFAULT_MODEL, architecture, emit, import_report, note_saved, percent, same_path, split_data
from ._monitor import say
from ._remote import cluster_data, cluster_lines, clustered, ran_on, worker_warnings
from ._resuming import resume_settings
from ._saving import check_outputs, end_aborted, end_interrupted, end_lost, save_weights, why_failed
from ._train_options import add_arguments as add_options
from ._train_options import check_options, cli_default, settle

__all__ = ["SUMMARY", "EXAMPLES", "add_arguments", "run"]

SUMMARY = "train a network (default: the course's 400-25-10 on the embedded digits)"
EXAMPLES = """\
  nnlearn train
  nnlearn train --hidden 50 25 --optimizer lbfgs --test-size 0 --out big.npz
  nnlearn train --hidden 100 --activation relu --output softmax --optimizer lbfgs --out relu.npz
  nnlearn train --optimizer adam --batch-size 100 --learning-rate 0.001 --early-stopping --out adam.npz
  nnlearn train --preset best --out best.npz
  nnlearn train --hidden 300 --activation relu --output softmax --optimizer lbfgs --augment 4 --out aug.npz
  nnlearn train --optimizer fmincg --checkpoint run.ckpt --out m.npz   (Ctrl-C, then:)
  nnlearn train --resume run.ckpt --out m.npz --force"""


def add_arguments(p):
    """The verb's options: the training settings' declaration, and its own (:mod:`nnlearn.cli._train_options`)."""
    add_options(p)


#: Why a run stopped (``model.history["stop_reason"]``, nnlearn.optim._minimize's reasons), in words.
STOP_WORDS = {
    "converged": "converged",
    "max_iter": "--max-iter reached",
    "line_search_failed": "line search failed (no step lowered the cost further; the weights are the last good ones)",
    "interrupted": "interrupted",
    "not_finite": "the cost is not finite",
}

# The time notice: the cost and gradient take about 3 multiply-adds per example and
# weight (forward, back, gradient), a full-batch iteration up to 2 evaluations (its line
# search), a mini-batch epoch one pass over the examples. A current core does 8-16e9
# float64 multiply-adds per second in these products (an AVX-512 machine shared with other
# jobs), twice that in float32; 2e9 (float64) is assumed, an old or busy core's, so that a
# slower machine is not left unwarned.
MULTIPLY_ADDS_PER_EXAMPLE_WEIGHT = 3
EVALUATIONS_PER_ITERATION = {"full-batch": 2, "mini-batch": 1}
ASSUMED_RATE = 2e9
DTYPE_SPEED = {"float64": 1, "float32": 2}
#: A run expected to take longer than this many seconds is announced.
NOTICE_SECONDS = 180


def run(args):
    given = {name: getattr(args, name) for name in SETTINGS if getattr(args, name, None) is not None}
    # 1. Options (a checkpoint's settings are options too: it is read first).
    resumed, continuation = resume_settings(args)
    done = continuation.n_iter if continuation is not None else 0
    settle(args, args.preset)
    options = check_options(args, given, done)
    _check_cluster_address(args.cluster)
    hidden = options.hidden_layer_sizes
    report = import_report() if args.report else None
    # 2. Inputs (a shard directory given with --cluster stays on the workers: only its
    # labels are read here).
    X, y = cluster_data(args)
    framing = _framing(args)
    if args.augment:
        augment_record(Augment(copies=args.augment), X.shape[1])  # the rows must be square images
    X_train, X_test, y_train, y_test = split_data(X, y, args.test_size, args.seed)
    network = Network((X.shape[1], *hidden, np.unique(y_train).size), args.activation, args.output)
    # The distorted copies are examples too.
    m_trained = X_train.shape[0] * (1 + args.augment)
    check_memory(network, m_trained if args.cluster is None else 0)
    # 3. Outputs.
    out = args.out or DEFAULT_MODEL
    checkpoint = args.checkpoint or args.resume
    check_outputs(args, out, checkpoint, report)
    # 4. The cluster, after every other check (starting a local one is work): a scheduler
    # that does not answer, or workers without this nnlearn, are refused before training.
    with clustered(args) as client:
        data = (X, y, X_train, y_train, X_test, y_test)
        return _record_and_train(args, options, continuation, resumed, network, framing, report, data, client)


def _record_and_train(args, options, continuation, resumed, network, framing, report, data, client):
    X, y, X_train, y_train, X_test, y_test = data
    hidden = options.hidden_layer_sizes
    done = continuation.n_iter if continuation is not None else 0
    out = args.out or DEFAULT_MODEL
    checkpoint = args.checkpoint or args.resume
    m_trained = X_train.shape[0] * (1 + args.augment)
    settings = _train_settings(args, hidden, framing)
    settings.update(
        exactness_record(
            args.data, X, y, X_train, network, args.optimizer, cluster=args.cluster, client=client, resumed=continuation
        )
    )
    differences = compare_exactness(resumed, settings) if resumed is not None else []
    for line in difference_lines(args.resume, differences):
        say(f"nnlearn train: warning: {line}")
    notice = time_notice(
        network,
        m_trained,
        _iterations_to_run(args, done),
        settings["exact.shards"],
        minibatch=args.optimizer in MINI_BATCH,
        dtype=args.dtype,
    )
    if notice:
        say(f"nnlearn train: notice: {notice}")
    # 5. Training.
    from ._monitor import Monitor

    monitor = Monitor(
        args.max_iter,
        done,
        not (args.quiet or args.json),
        checkpoint,
        settings,
        args.checkpoint_every,
        replace_checkpoint=args.force or (resumed is not None and same_path(checkpoint, args.resume)),
        prefix="nnlearn train",
    )
    try:
        with monitor:
            data = (X_train, y_train, X_test, y_test)
            return _train_and_save(args, monitor, data, options, continuation, settings, report, differences, client)
    except KeyboardInterrupt:
        return end_aborted(args, monitor, checkpoint, out)


def _check_cluster_address(cluster):
    """--cluster ADDRESS checked with the other options, before the outputs: an address that
    cannot be one (``abc``) is named first, whatever files are in the way."""
    if not isinstance(cluster, str) or cluster.strip().isdigit() or cluster.strip() == "current":
        return
    try:
        from ..compute._cluster import check_address
    except ImportError:  # the cluster extra is missing: clustered() says so, with what to install
        return
    check_address(cluster)


def _train_and_save(args, monitor, data, options, continuation, settings, report, differences, cluster=None):
    from ..errors import ExamplesLost
    from ..training._train import train

    X_train, y_train, X_test, y_test = data
    out = args.out or DEFAULT_MODEL
    checkpoint = monitor.checkpoint_path
    try:
        model = _train(train, options, monitor, data, continuation, checkpoint, cluster)
    except ExamplesLost as exc:
        return end_lost(args, monitor, exc, settings, out)
    monitor.flush()  # the checkpoint first: it is what a resumed run needs
    reason = stop_reason(model)
    monitor.finish(reason)
    # Recorded so that `nnlearn evaluate MODEL` can judge the model on its held-out part.
    model.history.update(
        data=settings["data"], test_size=args.test_size, split_seed=args.seed, framing=settings["framing"]
    )
    saved, errors = save_weights(model, out, args.force, monitor)
    if saved is not None:
        note_saved(args, "the model", saved)
    if monitor.interrupted:
        return end_interrupted(args, monitor, model, saved, errors, checkpoint, out)
    result = _train_result(model, saved, settings, X_train, y_train, X_test, y_test, cluster)
    if args.resume:
        result["resumed_from"] = args.resume
        result["resume_differences"] = differences
    if report is not None:
        result["report"] = None
        try:
            with monitor.protect(f"the report {args.report}"):
                result["report"] = str(_write_report(report, model, args, X_train, y_train, X_test, y_test, settings))
            note_saved(args, "the report", result["report"])
        except (OSError, NNLearnError) as exc:
            errors.append(f"cannot write the report {args.report} ({why_failed(exc)}); the model was saved to {saved}")
    result["errors"] = errors
    try:
        emit(args, result, _train_text(result, model))
    finally:  # said even when stdout fails
        for error in errors:
            say(f"nnlearn train: error: {error}")
    return 1 if errors else 0


def _train(train, options, monitor, data, continuation, checkpoint, cluster):
    X_train, y_train, _, _ = data
    # The differences from a resumed checkpoint were said before training, with its path.
    with warnings.catch_warnings(), worker_warnings("nnlearn train"):
        warnings.simplefilter("ignore", ResumeWarning)
        return train(
            X_train,
            y_train,
            options=options,
            callback=monitor.callback,
            checkpoint=monitor.checkpoint if checkpoint else None,
            resume=continuation,
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
        training=(X_train, y_train) if held_out else None,
        settings=settings_shown(settings),
        overwrite=args.force,
        data_role="test" if held_out else "training",
    )


def settings_shown(settings):
    """The settings without the exactness record (which is for resuming, not for reading)."""
    return {key: value for key, value in settings.items() if not key.startswith(EXACT)}


# ------------------------------------------------------------------------ checks


def _framing(args):
    """The data's framing: a built-in dataset's own (a contradicting --framing is refused),
    else what --framing states, else "mnist"."""
    known = DATASET_FRAMING.get(args.data)
    if known is None:
        return args.framing or "mnist"
    if args.framing is not None and args.framing != known:
        raise ParameterError(f"--framing {args.framing} contradicts {args.data}, whose digits are framed {known!r}")
    return known


# ----------------------------------------------------------------- time notice


def _iterations_to_run(args, done):
    # SciPy's optimisers replay a resumed run's iterations from its start.
    return args.max_iter if args.optimizer in REPLAYING else max(0, args.max_iter - done)


def time_notice(network, m, iterations, threads, minibatch=False, dtype="float64"):
    """A line announcing a run expected to take more than :data:`NOTICE_SECONDS`, else None.

    ``threads`` is how many share the work (the data term's shards); ``minibatch``: an
    iteration is an epoch. The estimate is deliberately slow (:data:`ASSUMED_RATE`): it is
    there to warn before minutes of work, not to predict the time.
    """
    rate = ASSUMED_RATE * DTYPE_SPEED.get(dtype, 1) * threads
    per_evaluation = MULTIPLY_ADDS_PER_EXAMPLE_WEIGHT * m * network.n_weights / rate
    per_iteration = EVALUATIONS_PER_ITERATION["mini-batch" if minibatch else "full-batch"] * per_evaluation
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


# ---------------------------------------------------------------------- output


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


def _train_settings(args, hidden, framing):
    """The run's settings as its checkpoint and ``--json`` record them, keyed as the
    declaration says: every setting a resumed run keeps or extends, but those of a group the
    run does not use (the mini-batch ones of a cg run); a setting a resumed run need not
    keep (``epsilon_init``) only where it is not the default."""
    data = args.data
    if data not in DATASETS:
        data = str(Path(data).resolve())
    used = {None, "mini-batch", "stopping"} if args.optimizer in MINI_BATCH else {None}
    if args.early_stopping:
        used.add("stopping")
    settings = {"data": data}
    for name, spec in SETTINGS.items():
        if not (spec.flag and spec.checkpoint):
            continue
        value = list(hidden) if name == "hidden_layer_sizes" else getattr(args, name)
        if spec.group in used and not (spec.resumed == "free" and value == cli_default(name)):
            settings[spec.checkpoint] = value
    settings.update(test_size=args.test_size, framing=framing)
    if args.preset is not None:
        settings["preset"] = args.preset
    return settings


def _train_result(model, path, settings, X_train, y_train, X_test, y_test, cluster=None):
    from ..compute._cluster import score

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
        **ran_on(history),
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
    if s.get("augment"):
        data += f", each with {s['augment']} distorted {'copy' if s['augment'] == 1 else 'copies'}"
    lines = [
        f"network          {architecture(model)}, lambda {s['lambda']:g}, {s['optimizer']}, "
        f"{result['n_iter']} iterations, {s['dtype']}, seed {s['seed']}",
        f"data             {data}",
        f"stopped          {_stopped_text(result)}",
        f"final cost       {result['final_cost']:.6f}",
        f"train accuracy   {percent(result['train_accuracy'])}",
        f"test accuracy    {percent(result['test_accuracy'])}" + ("" if result["m_test"] else " (no held-out part)"),
        f"time             {result['seconds']:.2f} s",
        *cluster_lines(result),
        f"model saved to   {result['model'] or 'nowhere (see the error below)'}",
    ]
    if result.get("report"):
        lines.append(f"report           {result['report']}")
    return lines
