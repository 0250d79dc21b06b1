"""``nnlearn train``: train, save, report; Ctrl-C, checkpoints and resuming."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..datasets import DATASETS, load_data
from ..errors import ParameterError
from ..settings import DEFAULTS, OPTIMIZERS, check_kinds, check_settings
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

SUMMARY = "train a network (default: the course's 400-25-10 on the embedded digits)"
EXAMPLES = """\
  nnlearn train
  nnlearn train --hidden 50 25 --optimizer lbfgs --test-size 0 --out big.npz
  nnlearn train --hidden 100 --activation relu --output softmax --optimizer lbfgs --out relu.npz
  nnlearn train --optimizer fmincg --checkpoint run.ckpt --out m.npz   (Ctrl-C, then:)
  nnlearn train --resume run.ckpt --out m.npz"""

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
        "--out",
        metavar="FILE",
        help=f"model file to write (default: {DEFAULT_MODEL}); an interrupted run saves its "
        "weights so far only when --out is given",
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
        "uninterrupted run reaches (cg and lbfgs replay their saved iterations first)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing model file, report or checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args):
    resumed, state = _resume(args)
    for dest, default in TRAIN_DEFAULTS.items():
        if getattr(args, dest) is None:
            setattr(args, dest, default)
    if not 0 <= args.seed < 2**32:
        raise ParameterError(f"--seed must be an integer from 0 to 2**32 - 1, got {args.seed}")
    hidden = check_settings(args.hidden, args.lam, args.optimizer, args.max_iter, args.dtype)
    check_kinds(args.activation, args.output)
    if not 0 <= args.test_size < 1:
        raise ParameterError(f"--test-size must be in [0, 1), got {args.test_size}")
    out = args.out or DEFAULT_MODEL
    refuse_existing(out, args.force)
    report = import_report() if args.report else None
    if report is not None:
        if Path(args.report).exists() and not Path(args.report).is_dir():
            raise ParameterError(f"--report {args.report} is a file; give a directory")
        for path in report.report_files(args.report):
            refuse_existing(path, args.force, option="--report")
    checkpoint = args.checkpoint or args.resume
    if args.checkpoint and not resumed:
        refuse_existing(args.checkpoint, args.force, option="--checkpoint")
    if args.checkpoint_every < 0:
        raise ParameterError(f"--checkpoint-every must be >= 0 seconds, got {args.checkpoint_every}")
    X, y = load_data(args.data)
    X_train, X_test, y_train, y_test = split_data(X, y, args.test_size, args.seed)
    settings = _train_settings(args, hidden)
    from ..monitor import Monitor
    from ..training import train

    done = len(state["history"]) if state else 0
    with Monitor(
        args.max_iter, done, not (args.quiet or args.json), checkpoint, settings, args.checkpoint_every
    ) as monitor:
        model = train(
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
            callback=monitor.callback,
            checkpoint=monitor.checkpoint if checkpoint else None,
            resume=state,
        )
    # Recorded so that `nnlearn evaluate MODEL` can judge the model on its held-out part.
    model.history.update(data=settings["data"], test_size=args.test_size, split_seed=args.seed)
    if monitor.interrupted:
        return _interrupted(args, model, checkpoint)
    path = model.save(out, overwrite=args.force)
    result = _train_result(model, path, settings, X_train, y_train, X_test, y_test)
    if report is not None:
        # With --test-size 0 there is no held-out part; the report then judges the training data.
        X_eval, y_eval = (X_train, y_train) if X_test is None else (X_test, y_test)
        result["report"] = str(
            report.write_report(
                model,
                args.report,
                X_eval,
                y_eval,
                X_train=X_train,
                y_train=y_train,
                settings=settings,
                overwrite=args.force,
            )
        )
    emit(args, result, _train_text(result, model))
    return 0


def _train_result(model, path, settings, X_train, y_train, X_test, y_test):
    return {
        "final_cost": model.history["cost"][-1] if model.history["cost"] else None,
        "train_accuracy": model.score(X_train, y_train),
        "test_accuracy": None if X_test is None else model.score(X_test, y_test),
        "seconds": model.history["seconds"],
        "model": None if path is None else str(path),
        "settings": settings,
        "n_iter": model.history["n_iter"],
        "m_train": len(y_train),
        "m_test": 0 if y_test is None else len(y_test),
    }


def _interrupted(args, model, checkpoint):
    """Ctrl-C: keep the weights reached when --out was given, and say what was kept."""
    kept = []
    if args.out:
        kept.append(f"weights so far saved to {model.save(args.out, overwrite=args.force)}")
    if checkpoint:
        kept.append(f"resume with: nnlearn train --resume {checkpoint}")
    if not kept:
        kept.append("nothing saved (give --out to keep the weights, --checkpoint to resume later)")
    n_iter = model.history["n_iter"]
    if args.json:
        print(json.dumps({"interrupted": True, "n_iter": n_iter, "model": args.out, "checkpoint": checkpoint}))
    print(f"nnlearn train: interrupted after iteration {n_iter}; {'; '.join(kept)}", file=sys.stderr)
    return 130


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
}
# Checkpoints written before a setting existed ran with the course's kinds.
RESUMED_BEFORE = {"activation": "sigmoid", "output": "sigmoid"}


def _resume(args):
    """With --resume, the checkpoint's settings and state; options that contradict them are refused."""
    if not args.resume:
        return None, None
    from ..modelio import load_checkpoint

    saved, state = load_checkpoint(args.resume)
    for dest, (option, key) in RESUMED.items():
        given, recorded = getattr(args, dest), saved.get(key, RESUMED_BEFORE.get(key))
        if recorded is None:
            raise ParameterError(f"{args.resume}: the checkpoint does not record {option}")
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


def _train_settings(args, hidden):
    data = args.data
    if data not in DATASETS:
        data = str(Path(data).resolve())
    return {
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
    }


def _train_text(result, model):
    s = result["settings"]
    lines = [
        f"network          {architecture(model)}, lambda {s['lambda']:g}, {s['optimizer']}, "
        f"{result['n_iter']} iterations, {s['dtype']}, seed {s['seed']}",
        f"data             {s['data']}: {result['m_train']} training / {result['m_test']} test examples",
        f"final cost       {result['final_cost']:.6f}",
        f"train accuracy   {percent(result['train_accuracy'])}",
        f"test accuracy    {percent(result['test_accuracy'])}",
        f"time             {result['seconds']:.2f} s",
        f"model saved to   {result['model']}",
    ]
    if "report" in result:
        lines.append(f"report           {result['report']}")
    return lines
