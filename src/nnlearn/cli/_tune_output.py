"""What ``nnlearn tune`` prints: its JSON payload, its text, and the command that retrains the choice."""

from __future__ import annotations

import shlex

from ..training._settings import DEFAULTS
from ._common import percent

__all__ = ["make_payload", "payload_text", "retrain_command"]


def _params_json(params):
    return {key: list(value) if isinstance(value, tuple) else value for key, value in params.items()}


def _candidate_json(candidate):
    return {
        **_params_json(candidate.params),
        "mean_accuracy": candidate.mean,
        "std_accuracy": candidate.std,
        "fold_accuracies": list(candidate.scores),
        "train_accuracy": candidate.train_accuracy,
        "fit_seconds": candidate.fit_seconds,
        "rank": candidate.rank,
    }


def make_payload(args, result, check, data, test_accuracy, model, figure, seconds):
    X_train, y_train, X_test, y_test = data
    best = result.best
    payload = {
        "data": args.data,
        "m_train": len(y_train),
        "m_test": 0 if y_test is None else len(y_test),
        "folds": result.folds,
        "optimizer": args.optimizer,
        "max_iter": args.max_iter,
        "seed": args.seed,
        "n_jobs": result.n_jobs,
        "threads_per_job": result.threads_per_job,
        "search_seconds": result.seconds,
        "candidates": [_candidate_json(c) for c in result.ranked()],
        "best": _candidate_json(best),
        "cv_accuracy": best.mean,
        "test_accuracy": test_accuracy,
        "check": None,
        "model": str(model),
        "plot": str(figure),
        "command": retrain_command(args, best.params),
        "seconds": seconds,
    }
    if check is not None:
        payload["check"] = {
            "outer_folds": len(check.chosen_scores),
            "chosen": [_params_json(p) for p in check.chosen],
            "chosen_accuracies": list(check.chosen_scores),
            "course_accuracies": list(check.course_scores),
            "chosen_mean": sum(check.chosen_scores) / len(check.chosen_scores),
            "course_mean": sum(check.course_scores) / len(check.course_scores),
            "chosen_better": check.wins,
            "seconds": check.seconds,
        }
    return payload


def _threads(count):
    return f"{count} BLAS thread{'s' if count > 1 else ''}"


def payload_text(p):
    total = len(p["candidates"])
    test = f"{p['m_test']} test examples held out" if p["m_test"] else "no held-out part"
    lines = [
        f"data        {p['data']}: {p['m_train']} training examples ({test})",
        f"search      {total} candidates x {p['folds']} stratified folds, {p['optimizer']}, {p['max_iter']} "
        f"iterations, {p['n_jobs']} jobs x {_threads(p['threads_per_job'])}, {p['search_seconds']:.1f} s",
        "",
        f"{'rank':>4} {'CV accuracy':>11} {'+-':>6} {'train':>7} {'fit s':>6} {'lambda':>7}  network",
    ]
    for c in p["candidates"]:
        network = f"{'-'.join(map(str, c['hidden_layer_sizes']))} {c['activation']}/{c['output']}"
        lines.append(
            f"{c['rank']:>4} {percent(c['mean_accuracy']):>11} {100 * c['std_accuracy']:>5.2f}% "
            f"{percent(c['train_accuracy']):>7} {c['fit_seconds']:>6.2f} {c['lam']:>7g}  {network}"
        )
    best = p["best"]
    lines += [
        "",
        f"chosen      lambda {best['lam']:g}, {'-'.join(map(str, best['hidden_layer_sizes']))} "
        f"{best['activation']}/{best['output']}: {percent(best['mean_accuracy'])} cross-validated",
    ]
    if p["m_test"]:
        lines.append(f"test        {percent(p['test_accuracy'])} on the {p['m_test']} held-out examples")
    check = p["check"]
    if check is not None:
        lines.append(
            f"check       on {check['outer_folds']} outer folds the search did not choose on: chosen "
            f"{percent(check['chosen_mean'])}, course's settings {percent(check['course_mean'])} "
            f"(chosen better on {check['chosen_better']} of {check['outer_folds']})"
        )
    lines += [
        f"model       {p['model']}",
        f"curve       {p['plot']}",
        f"retrain     {p['command']}",
        f"time        {p['seconds']:.1f} s",
    ]
    return lines


def retrain_command(args, params):
    """The ``nnlearn train`` command line that trains ``params`` as tune did (numbers
    written in full, Python's shortest exact form, so that they parse back the same)."""
    words = ["nnlearn", "train", "--data", args.data, "--hidden", *map(str, params["hidden_layer_sizes"])]
    words += ["--lambda", _number(params["lam"]), "--activation", params["activation"], "--output", params["output"]]
    words += ["--optimizer", args.optimizer, "--max-iter", str(args.max_iter)]
    words += ["--test-size", _number(args.test_size), "--seed", str(args.seed)]
    if args.dtype != DEFAULTS.dtype:
        words += ["--dtype", args.dtype]
    return shlex.join(words)


def _number(value):
    """``1`` for 1.0, ``0.1`` for 0.1, every digit of 0.123456789."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
