"""Verbs that look at a model: ``evaluate``, ``predict``, ``cost``, ``report``, ``show``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..datasets import load_data
from ..errors import ParameterError
from ..settings import check_lambda
from .common import (
    MODEL_SUFFIXES,
    architecture,
    check_fit,
    emit,
    evaluation_data,
    load_model_file,
    percent,
    refuse_existing,
)


def cmd_evaluate(args):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    model = load_model_file(args.model)
    X, y, data = evaluation_data(args, model)
    check_fit(model, X, y, args.model, data)
    predicted = model.predict(X)
    # Sorted, so Octave weights (outputs 1..9, 0) read in digit order like any model.
    classes = np.sort(model.classes)
    precision, recall, f1, support = precision_recall_fscore_support(y, predicted, labels=classes, zero_division=0)
    result = {
        "model": args.model, "data": data, "m": len(y), "accuracy": float(np.mean(predicted == y)),
        "classes": classes, "precision": precision, "recall": recall, "f1": f1, "support": support,
        "confusion_matrix": confusion_matrix(y, predicted, labels=classes),
    }
    emit(args, result, _evaluate_text(result, model))
    return 0


def _evaluate_text(r, model):
    lines = [
        f"model     {r['model']} ({architecture(model)})",
        f"data      {r['data']}: {r['m']} examples",
        f"accuracy  {percent(r['accuracy'])}",
        "",
        f"{'class':>8} {'precision':>10} {'recall':>8} {'f1':>8} {'support':>8}",
    ]
    for row in zip(r["classes"], r["precision"], r["recall"], r["f1"], r["support"]):
        lines.append(f"{str(row[0]):>8} {row[1]:>10.4f} {row[2]:>8.4f} {row[3]:>8.4f} {int(row[4]):>8d}")
    width = max(5, *(len(str(c)) for c in r["classes"]), len(str(r["confusion_matrix"].max())))
    lines += ["", "confusion matrix (rows: true label, columns: predicted label)"]
    lines.append(" " * (width + 1) + " ".join(f"{str(c):>{width}}" for c in r["classes"]))
    for label, counts in zip(r["classes"], r["confusion_matrix"]):
        lines.append(f"{str(label):>{width}} " + " ".join(f"{int(n):>{width}d}" for n in counts))
    return lines


# ---------------------------------------------------------------------------- predict


def _inputs(source, model, model_path):
    """Examples from one INPUT: an image file (one example) or a dataset (X, and y)."""
    from ..images import image_to_input, is_image_path

    if is_image_path(source):
        return image_to_input(source, model.layer_sizes[0])[None], None
    X, y = load_data(source)
    check_fit(model, X, None, model_path, source)
    return X, y


def cmd_predict(args):
    model = load_model_file(args.model)
    rows = []
    for source in args.inputs:
        X, y = _inputs(source, model, args.model)
        proba = model.predict_proba(X)
        best = np.argmax(proba, axis=1)
        for i in range(len(X)):
            row = {"input": source, "index": i, "label": model.classes[best[i]], "probability": proba[i, best[i]],
                   "probabilities": proba[i]}
            if y is not None:
                row["true_label"] = y[i]
            rows.append(row)
    text = [f"{'input':<24} {'label':>6} {'probability':>12}"]
    for row in rows:
        name = row["input"] if "true_label" not in row else f"{row['input']}[{row['index']}]"
        truth = f"  (true {row['true_label']})" if "true_label" in row else ""
        text.append(f"{name:<24} {str(row['label']):>6} {row['probability']:>12.4f}{truth}")
    emit(args, {"model": args.model, "classes": model.classes, "predictions": rows}, text)
    return 0


def cmd_cost(args):
    check_lambda(args.lam)
    model = load_model_file(args.weights)
    X, y = load_data(args.data)
    check_fit(model, X, y, args.weights, args.data)
    J = float(model.cost(X, y, lam=args.lam))
    result = {"cost": J, "lambda": args.lam, "weights": args.weights, "data": args.data, "m": len(y),
              "layer_sizes": list(model.layer_sizes)}
    emit(args, result, [
        f"cost J = {J:.6f} at lambda {args.lam:g}",
        f"weights {args.weights} ({architecture(model)}), data {args.data} ({len(y)} examples)",
    ])
    return 0


def cmd_report(args):
    model = load_model_file(args.model)
    X, y, data = evaluation_data(args, model)
    check_fit(model, X, y, args.model, data)
    from ..report import write_report

    settings = {"model": args.model, "data": data, "layer_sizes": list(model.layer_sizes), "lambda": model.lam}
    settings.update({k: v for k, v in model.history.items() if k in ("optimizer", "max_iter", "seed", "dtype")})
    path = write_report(model, args.dir, X, y, settings=settings, overwrite=args.force)
    emit(args, {"report": str(path), "model": args.model, "data": data, "m": len(y)}, f"report written to {path}")
    return 0


def cmd_show(args):
    # The figures are only written to files; no window, whatever the environment says.
    os.environ.setdefault("MPLBACKEND", "Agg")
    if args.model is not None and Path(args.model).suffix.lower() not in MODEL_SUFFIXES:
        raise ParameterError(f"{args.model}: expected a model file (.npz or .mat); use --data for a dataset")
    out = args.out or ("hidden-units.png" if args.model else "digits.png")
    refuse_existing(out, args.force)
    from .. import plots

    if args.model is not None:
        fig = plots.plot_hidden_units(load_model_file(args.model))
        what = f"hidden units of {args.model}"
    else:
        X, y = load_data(args.data)
        fig = plots.plot_digits(X, labels=y, n=100, rng=args.seed)
        what = f"100 random digits of {args.data} (seed {args.seed})"
    path = plots.save_figure(fig, out, overwrite=args.force)
    emit(args, {"figure": str(path), "shows": what}, f"{what} written to {path}")
    return 0
