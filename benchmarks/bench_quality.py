"""How well nnlearn learns the embedded digits, and at what cost: the measurements of docs/quality.md.

    python benchmarks/bench_quality.py cv [NAME ...]     # 5-fold CV of the preset's candidates
    python benchmarks/bench_quality.py table [NAME ...]  # test accuracy against training time
    python benchmarks/bench_quality.py tune              # nnlearn tune --data digits8, timed
    python benchmarks/bench_quality.py markdown          # the tables of docs/quality.md

Every part uses the split ``nnlearn train`` makes (``nnlearn.datasets._builtin.split``: stratified,
80/20, seed 0): 4000 training and 1000 test digits.

* ``cv`` scores each candidate for the ``best`` preset by stratified 5-fold
  cross-validation on the 4000 training digits alone (folds shuffled with seed 0); each
  fold trains with :func:`nnlearn.train`, which distorts the fold's training part only.
  The test fifth is not touched.
* ``table`` trains each setting on the 4000 and scores it once on the 1000: one factor
  at a time around the course's settings and around the preset, and scikit-learn's
  ``MLPClassifier`` on the same split.
* ``tune`` times ``nnlearn tune --data digits8`` (its default grid) in a process of its own.

Results are merged into ``benchmarks/results-quality.json`` entry by entry (each with the
date, seconds and load average of its run), so the parts can be run, and rerun, apart.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common

RESULTS = common.HERE / "results-quality.json"
FOLDS = 5

#: The course's settings, as ``nnlearn train`` uses them.
COURSE = {"hidden_layer_sizes": (25,), "activation": "sigmoid", "output": "sigmoid", "lam": 1.0, "optimizer": "cg"}
_FAST = {"optimizer": "lbfgs", "dtype": "float32", "epsilon_init": "auto"}
_RELU300 = {"hidden_layer_sizes": (300,), "activation": "relu", "output": "softmax", **_FAST}
# Adam at scikit-learn's step size, 0.001; with augmentation every epoch draws fresh copies.
_ADAM = {**_RELU300, "optimizer": "adam", "learning_rate": 0.001}
_ELASTIC = {"copies": 8, "elastic_alpha": 16.2, "elastic_sigma": 2.76}  # Simard et al.'s, scaled to 20x20

#: The candidates for the "best" preset, scored by ``cv``.
CANDIDATES = {
    "relu300-l1-aug4-400": {**_RELU300, "lam": 1.0, "max_iter": 400, "augment": 4},
    "relu300-l1-aug8-400": {**_RELU300, "lam": 1.0, "max_iter": 400, "augment": 8},
    "relu300-l3-aug8-400": {**_RELU300, "lam": 3.0, "max_iter": 400, "augment": 8},
    "relu300-l1-aug8el-400": {**_RELU300, "lam": 1.0, "max_iter": 400, "augment": _ELASTIC},
    "relu300-l1-adam-aug4-60": {**_ADAM, "lam": 1.0, "max_iter": 60, "augment": 4},
    "relu300-l1-adam-aug4-120": {**_ADAM, "lam": 1.0, "max_iter": 120, "augment": 4},
    "relu300-l1-adam-aug8-60": {**_ADAM, "lam": 1.0, "max_iter": 60, "augment": 8},
    "relu300-l3-adam-aug4-120": {**_ADAM, "lam": 3.0, "max_iter": 120, "augment": 4},
    "relu300-l1-adam-aug4-160": {**_ADAM, "lam": 1.0, "max_iter": 160, "augment": 4},
}


def split_digits():
    """The 4000 training and 1000 test digits of ``nnlearn train``'s split."""
    from nnlearn.datasets._builtin import load_digits20, split

    X, y = load_digits20()
    return split(X, y, test_size=0.2, seed=0)


def settings_for(settings):
    """Train's keywords for ``settings``: an augmentation dict becomes an Augment."""
    from nnlearn.training._augment import Augment

    augment = settings.get("augment")
    if isinstance(augment, dict):
        return {**settings, "augment": Augment(**augment)}
    return dict(settings)


def jsonable(settings):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def train_and_score(settings, X, y, X_test, y_test):
    from nnlearn import train

    start = time.perf_counter()
    model = train(X, y, **settings_for(settings), seed=0)
    seconds = time.perf_counter() - start
    return float(model.score(X_test, y_test)), seconds, model.history.get("n_iter")


def run_cv(names):
    from sklearn.model_selection import StratifiedKFold

    X_train, _, y_train, _ = split_digits()  # the test part is never used here
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(X_train, y_train))
    for name in names:
        settings = CANDIDATES[name]
        scores, seconds, iterations = [], [], []
        load = os.getloadavg()
        for k, (inside, held) in enumerate(folds):
            acc, secs, n_iter = train_and_score(
                settings, X_train[inside], y_train[inside], X_train[held], y_train[held]
            )
            scores.append(acc)
            seconds.append(secs)
            iterations.append(n_iter)
            print(f"{name} fold {k}: {100 * acc:.2f}% in {secs:.1f} s", flush=True)
        record = {
            "settings": jsonable(settings),
            "fold_accuracies": scores,
            "mean": float(np.mean(scores)),
            "std": float(np.std(scores)),
            "fold_seconds": seconds,
            "iterations": iterations,
            "load_average": [round(x, 2) for x in load],
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        }
        print(f"{name}: {100 * record['mean']:.2f}% +- {100 * record['std']:.2f}", flush=True)
        save("cv", name, record)


#: The preset chosen from ``cv`` (the lead sets nnlearn.training._presets.PRESETS["best"] to it).
CHOSEN = "relu300-l3-adam-aug4-120"
PRESET = CANDIDATES[CHOSEN]


def _around(base, **change):
    return {**base, **change}


def _without(base, key):
    return {k: v for k, v in base.items() if k != key}


def _optimizer(base, name):
    """``base`` trained by another optimiser: a full-batch one for 400 iterations, a
    mini-batch one for the base's epochs (200 when the base is full-batch), at the
    optimiser's own default step size."""
    settings = {**_without(base, "learning_rate"), "optimizer": name}
    if name in ("cg", "lbfgs", "fmincg"):
        settings["max_iter"] = 400
    elif base["optimizer"] not in ("sgd", "adam"):
        settings["max_iter"] = 200
    return settings


_KINDS = [("sigmoid", "sigmoid"), ("sigmoid", "softmax"), ("tanh", "sigmoid"), ("tanh", "softmax")]
_KINDS += [("relu", "sigmoid"), ("relu", "softmax")]
_COURSE = {**COURSE, "max_iter": 400}


def _factors(name, base):
    """One factor at a time around ``base``: each other optimiser, width of 25, 100 and 300,
    activation x output, and augmentation (4 copies) or none."""
    optimizers = [o for o in ("cg", "lbfgs", "fmincg", "sgd", "adam") if o != base["optimizer"]]
    widths = [w for w in (25, 100, 300) if (w,) != tuple(base["hidden_layer_sizes"])]
    kinds = [(a, o) for a, o in _KINDS if (a, o) != (base["activation"], base["output"])]
    rows = {name: base}
    rows.update({f"{name}, {o}": _optimizer(base, o) for o in optimizers})
    rows.update({f"{name}, {w} units": _around(base, hidden_layer_sizes=(w,)) for w in widths})
    rows.update({f"{name}, {a}/{o}": _around(base, activation=a, output=o) for a, o in kinds})
    if base.get("augment"):
        rows[f"{name}, no augmentation"] = _without(base, "augment")
    else:
        rows[f"{name}, 4 copies"] = _around(base, augment=4)
    return rows


#: The rows of the table: ("nnlearn", settings) trained by nnlearn.train, or ("sklearn", settings).
#: The mini-batch optimisers stop once their epoch cost has not improved by 1e-4 for 10
#: epochs; with augmentation they see fresh distortions every epoch.
TABLE = {
    **{name: ("nnlearn", settings) for name, settings in _factors("course", _COURSE).items()},
    **{name: ("nnlearn", settings) for name, settings in _factors("preset", PRESET).items()},
    "MLPClassifier 300 relu adam": ("sklearn", {"copies": 0}),
    "MLPClassifier 300 relu adam, 4 copies": ("sklearn", {"copies": 4}),
}


def train_sklearn(settings, X, y, X_test, y_test):
    """scikit-learn's MLPClassifier (300 relu units, adam, its defaults otherwise) on the
    originals and ``copies`` affine-distorted copies made once by nnlearn.augment."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from nnlearn.training._augment import distort

    start = time.perf_counter()
    copies = settings["copies"]
    if copies:
        X = np.concatenate([X, distort(X, copies=copies, seed=0)])
        y = np.concatenate([y] * (copies + 1))
    estimator = MLPClassifier(hidden_layer_sizes=(300,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    seconds = time.perf_counter() - start
    return float(estimator.score(X_test, y_test)), seconds, estimator.n_iter_


def run_table(names):
    check_preset()
    X_train, X_test, y_train, y_test = split_digits()
    for name in names:
        kind, settings = TABLE[name]
        load = os.getloadavg()
        fit = train_and_score if kind == "nnlearn" else train_sklearn
        accuracy, seconds, iterations = fit(settings, X_train, y_train, X_test, y_test)
        print(f"{name}: {100 * accuracy:.2f}% in {seconds:.1f} s ({iterations} iterations)", flush=True)
        record = {
            "kind": kind,
            "settings": jsonable(settings),
            "test_accuracy": accuracy,
            "seconds": seconds,
            "iterations": iterations,
            "load_average": [round(x, 2) for x in load],
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        }
        save("table", name, record)


def check_preset():
    """Say so when nnlearn's "best" preset is not the one chosen here."""
    from dataclasses import fields

    try:
        from nnlearn.training._presets import PRESETS, options_with
    except ImportError:
        print("warning: nnlearn.training._presets is missing", file=sys.stderr)
        return
    best, chosen = PRESETS["best"].checked(), options_with(None, **settings_for(PRESET)).checked()
    differ = [f.name for f in fields(chosen) if getattr(best, f.name) != getattr(chosen, f.name)]
    if differ:
        print(f"warning: PRESETS['best'] differs from {CHOSEN} in {', '.join(differ)}", file=sys.stderr)


def run_tune():
    """``nnlearn tune --data digits8`` (the default grid) in a process of its own, then with ``--check``."""
    for name, extra in (("digits8", []), ("digits8 --check", ["--check"])):
        load = os.getloadavg()
        with tempfile.TemporaryDirectory() as work:
            command = [str(Path(sys.executable).parent / "nnlearn"), "tune", "--data", "digits8", "--json", *extra]
            if not extra:  # the picture of docs/quality.md
                command += ["--plot", str(common.ROOT / "docs" / "images" / "tune-digits8.png"), "--force"]
            start = time.perf_counter()
            done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=True)
            seconds = time.perf_counter() - start
        result = json.loads(done.stdout)
        record = {
            "command": " ".join(["nnlearn tune --data digits8", *extra]),
            "seconds": seconds,
            "search_seconds": result["search_seconds"],
            "candidates": len(result["candidates"]),
            "folds": result["folds"],
            "n_jobs": result["n_jobs"],
            "threads_per_job": result["threads_per_job"],
            "best": result["best"],
            "test_accuracy": result["test_accuracy"],
            "check": result["check"],
            "course_cv_accuracy": next(
                c["mean_accuracy"]
                for c in result["candidates"]
                if (c["lam"], c["hidden_layer_sizes"], c["activation"], c["output"])
                == (1.0, [25], "sigmoid", "sigmoid")
            ),
            "load_average": [round(x, 2) for x in load],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        }
        print(f"nnlearn tune --data digits8 {' '.join(extra)}: {seconds:.1f} s", flush=True)
        save("tune", name, record)


def save(part, name, record):
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("machine", common.machine())
    results.setdefault(part, {})[name] = record
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


def describe(settings):
    """A setting in a few words: ``300 relu/softmax, lambda 1, lbfgs 400, float32, 8 copies``."""
    if "copies" in settings and len(settings) == 1:
        return f"300 relu/softmax, adam (scikit-learn's defaults), {settings['copies'] or 'no'} copies"
    hidden = "-".join(map(str, settings["hidden_layer_sizes"]))
    words = [
        f"{hidden} {settings['activation']}/{settings['output']}",
        f"lambda {settings['lam']:g}",
        f"{settings['optimizer']} {settings.get('max_iter', 400)}"
        + (f" (step {settings['learning_rate']:g})" if settings.get("learning_rate") else ""),
        settings.get("dtype", "float64"),
    ]
    augment = settings.get("augment")
    if isinstance(augment, dict):
        words.append(
            f"{augment['copies']} copies, elastic alpha {augment['elastic_alpha']:g} sigma {augment['elastic_sigma']:g}"
        )
    elif augment:
        words.append(f"{augment} copies")
    return ", ".join(words)


def markdown():
    results = json.loads(RESULTS.read_text())
    lines = ["### Cross-validation of the preset's candidates", ""]
    lines += [
        "| candidate | settings | CV accuracy | folds | s per fold | load |",
        "| --- | --- | ---: | --- | ---: | ---: |",
    ]
    for name, r in sorted(results.get("cv", {}).items(), key=lambda item: -item[1]["mean"]):
        folds = " ".join(f"{100 * a:.2f}" for a in r["fold_accuracies"])
        lines.append(
            f"| {name} | {describe(r['settings'])} | {100 * r['mean']:.2f}% +- {100 * r['std']:.2f} | {folds} "
            f"| {np.mean(r['fold_seconds']):.0f} | {r['load_average'][0]:.1f} |"
        )
    lines += ["", "### Test accuracy against training time", ""]
    lines += ["| row | settings | test accuracy | training s | iterations | load |"]
    lines += ["| --- | --- | ---: | ---: | ---: | ---: |"]
    for name, (_kind, settings) in TABLE.items():
        r = results.get("table", {}).get(name)
        if r is not None:
            lines.append(
                f"| {name} | {describe(settings)} | {100 * r['test_accuracy']:.2f}% | {r['seconds']:.1f} "
                f"| {r['iterations']} | {r['load_average'][0]:.1f} |"
            )
    lines += ["", "### nnlearn tune --data digits8", ""]
    for r in results.get("tune", {}).values():
        best = r["best"]
        lines.append(
            f"* `{r['command']}`: {r['seconds']:.0f} s ({r['search_seconds']:.0f} s searching {r['candidates']} "
            f"candidates x {r['folds']} folds, {r['n_jobs']} jobs x {r['threads_per_job']} thread), load "
            f"{r['load_average']}; chose lambda {best['lam']:g}, {best['hidden_layer_sizes']} "
            f"{best['activation']}/{best['output']}, {100 * best['mean_accuracy']:.2f}% CV "
            f"(course's settings {100 * r['course_cv_accuracy']:.2f}%), {100 * r['test_accuracy']:.2f}% test"
        )
        if r["check"]:
            c = r["check"]
            lines.append(
                f"  check on {c['outer_folds']} outer folds: chosen {100 * c['chosen_mean']:.2f}%, course's "
                f"{100 * c['course_mean']:.2f}%, chosen better on {c['chosen_better']}"
            )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["cv", "table", "tune", "markdown"])
    parser.add_argument("names", nargs="*", help="entries to run (default: all of the part)")
    args = parser.parse_args(argv)
    if args.part == "cv":
        run_cv(args.names or list(CANDIDATES))
    elif args.part == "table":
        run_table(args.names or list(TABLE))
    elif args.part == "tune":
        run_tune()
    else:
        print(markdown())


if __name__ == "__main__":
    main()
