"""``nnlearn evaluate``: accuracy, per-class precision and recall, and the confusion matrix.

The data are named for what they are to the model (:func:`~nnlearn.cli._common.data_role`):
its held-out test part, its own training data, or other data.
"""

from __future__ import annotations

import numpy as np

from ._common import (
    DATA_HELP,
    MODEL_HELP,
    architecture,
    check_fit,
    data_role,
    emit,
    evaluation_data,
    load_model_file,
    percent,
)

SUMMARY = "accuracy, per-class precision and recall, and the confusion matrix of a model"
EXAMPLES = """\
  nnlearn evaluate nnlearn-model.npz
  nnlearn evaluate pretrained --data digits20 --json"""


def add_arguments(p):
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument(
        "--data",
        metavar="NAME|FILE",
        help=f"{DATA_HELP} (default: the held-out part of the model's training data, "
        "as recorded by nnlearn train, else digits20)",
    )


def run(args):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    model = load_model_file(args.model)
    X, y, data = evaluation_data(args, model)
    role, note = data_role(args, model)
    check_fit(model, X, y, args.model, data)
    predicted = model.predict(X)
    # Sorted, so Octave weights (outputs 1..9, 0) read in digit order like any model.
    classes = np.sort(model.classes)
    precision, recall, f1, support = precision_recall_fscore_support(y, predicted, labels=classes, zero_division=0)
    result = {
        "model": args.model,
        "network": _network_json(model),
        "data": data,
        "data_role": role,
        "m": len(y),
        "accuracy": float(np.mean(predicted == y)),
        "classes": classes,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "confusion_matrix": confusion_matrix(y, predicted, labels=classes),
    }
    emit(args, result, _evaluate_text(result, model, note))
    return 0


def _network_json(model):
    network = model.network
    return {"layer_sizes": list(network.layer_sizes), "activation": network.activation, "output": network.output}


def _evaluate_text(r, model, note):
    lines = [
        f"model     {r['model']} ({architecture(model)})",
        f"data      {r['data']}: {r['m']} {'test ' if r['data_role'] == 'test' else ''}examples"
        + (f", {note}" if note else ""),
        f"accuracy  {percent(r['accuracy'])}",
        "",
        f"{'class':>8} {'precision':>10} {'recall':>8} {'f1':>8} {'support':>8}",
    ]
    for row in zip(r["classes"], r["precision"], r["recall"], r["f1"], r["support"], strict=True):
        lines.append(f"{str(row[0]):>8} {row[1]:>10.4f} {row[2]:>8.4f} {row[3]:>8.4f} {int(row[4]):>8d}")
    width = max(5, *(len(str(c)) for c in r["classes"]), len(str(r["confusion_matrix"].max())))
    lines += ["", "confusion matrix (rows: true label, columns: predicted label)"]
    lines.append(" " * (width + 1) + " ".join(f"{str(c):>{width}}" for c in r["classes"]))
    for label, counts in zip(r["classes"], r["confusion_matrix"], strict=True):
        lines.append(f"{str(label):>{width}} " + " ".join(f"{int(n):>{width}d}" for n in counts))
    return lines
