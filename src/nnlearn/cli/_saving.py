"""Where ``nnlearn train`` puts trained weights, and what it says when a run is cut short.

Its outputs are checked before training (:func:`check_outputs`): none may be an input,
exist without ``--force``, or be unwritable. Once a run has trained, its weights are not
lost to a failed write: they go to a fallback file that the command names
(:func:`fallback_dirs`). A stop signal, a second one, or a cluster that went away each
end the command with one line saying what was kept and, where a checkpoint allows it,
the command that resumes the run.
"""

from __future__ import annotations

import os
import shlex
import tempfile
import time
from pathlib import Path

from ..datasets._cache import cache_dir
from ..errors import NNLearnError, ParameterError
from ._common import emit, refuse_existing, refuse_overwriting_inputs, same_path
from ._monitor import say
from ._streams import StdoutFailed


def fallback_dirs():
    """Where trained weights go when their file cannot be written: the user's cache
    directory (``$NNLEARN_CACHE_DIR`` or ``~/.cache/nnlearn``), then the system's
    temporary directory."""
    return [cache_dir() / "rescued", Path(tempfile.gettempdir())]


def check_outputs(args, out, checkpoint, report):
    """Refuse an output that is an input (even with --force), exists (without --force) or
    cannot be written, before training."""
    inputs = [("--data", args.data), ("--resume", args.resume)]
    report_files = [("--report", path) for path in report.report_files(args.report)] if report else []
    refuse_overwriting_inputs(inputs, [("--out", out), *report_files])
    # A resumed run rewrites its own checkpoint: that one pair is no clash.
    refuse_overwriting_inputs(inputs[:1], [("--checkpoint", args.checkpoint)])
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
    if args.checkpoint and not (args.resume and same_path(args.checkpoint, args.resume)):
        refuse_existing(args.checkpoint, args.force, option="--checkpoint")
    if checkpoint and same_path(checkpoint, out):
        raise ParameterError(f"--out {out} and the checkpoint {checkpoint} are the same file; give two names")


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
        why = why_failed(exc)
    stem = Path(out).stem[:80] or "nnlearn-model"
    name = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.npz"
    tried = []
    for directory in fallback_dirs():
        try:
            with monitor.protect(str(directory / name)):
                path = model.save(directory / name)
        except (OSError, NNLearnError) as exc:
            tried.append(f"{directory}: {why_failed(exc)}")
            continue
        return path, [f"cannot write {out} ({why}); the trained weights were saved to {path} instead"]
    return None, [f"cannot write {out} ({why}), nor a fallback ({'; '.join(tried)}): the trained weights are lost"]


def why_failed(exc):
    """Why a write failed, in a few words."""
    from ..persist._atomic import OutputExistsError

    if isinstance(exc, OutputExistsError):
        return "it was created by someone else while this run trained; not replaced without --force"
    if isinstance(exc, OSError) and not isinstance(exc, NNLearnError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _resume_command(args, checkpoint, out):
    words = ["nnlearn", "train", "--resume", str(checkpoint), "--out", str(out)]
    if args.report:
        words += ["--report", str(args.report)]
    if os.path.lexists(out):
        words.append("--force")  # it holds this run's weights so far, which the resumed run replaces
    return shlex.join(words)


def end_interrupted(args, monitor, model, saved, errors, checkpoint, out):
    """A stop signal: the weights reached were saved; say where, and how to go on."""
    kept = [f"weights so far saved to {saved}"] if saved else []
    resume = None
    if checkpoint and (monitor.saved_iteration is not None or same_path(checkpoint, args.resume)):
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
        try:
            emit(args, payload, [])
        except StdoutFailed as exc:  # the signal's status stands; the failure is said below
            errors = [*errors, str(exc)]
    signal_name = "" if monitor.signal_name in (None, "SIGINT") else f" by {monitor.signal_name}"
    say(f"nnlearn train: interrupted{signal_name} after iteration {n_iter}; {'; '.join(kept) or 'nothing saved'}")
    for error in errors:
        say(f"nnlearn train: error: {error}")
    return monitor.exit_status


def end_aborted(args, monitor, checkpoint, out):
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


def end_lost(args, monitor, exc, settings, out):
    """The cluster went away: keep the weights reached so far, and say so in one line."""
    model = exc.model
    if model is None:  # lost before the first iteration ended: there are no weights to keep
        say(f"nnlearn train: error: {exc}; no weights were saved (it happened before the first iteration ended)")
        return 1
    model.history.update(
        data=settings["data"], test_size=args.test_size, split_seed=args.seed, framing=settings["framing"]
    )
    saved, errors = save_weights(model, out, True if Path(out).exists() and args.force else args.force, monitor)
    kept = f"the weights of iteration {model.history['n_iter']} saved to {saved}" if saved else "; ".join(errors)
    say(f"nnlearn train: error: {exc}; {kept}")
    return 1
