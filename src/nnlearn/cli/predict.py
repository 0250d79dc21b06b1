"""``nnlearn predict``: the digits in image files, or the examples of data files.

Each INPUT is predicted on its own: a bad one gets an error line on stderr and the others
are still reported; the exit status is 2 when any failed.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..datasets._builtin import load_data
from ..errors import ModelFileError, NNLearnError
from ..persist._reading import regular_file
from ._common import MODEL_HELP, check_fit, emit, load_model_file, names_pretrained
from ._monitor import say

SUMMARY = "predict the digits in image files (PNG, JPEG) or the examples of a data file"
EXAMPLES = """\
  nnlearn predict nnlearn-model.npz my-seven.png photo-of-a-3.jpg
  nnlearn predict nnlearn-model.npz examples.csv --json"""

#: The largest model file read: a 784-1000-1000-10 network of float64 weights is 14 MB.
MAX_MODEL_BYTES = 2 * 2**30


def add_arguments(p):
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files of one digit each (dark on light or light on dark), framed as the model's training "
        "digits were; or data files (a CSV file's last column is a label only if it has one column more than "
        "the model has inputs) or dataset names",
    )


def _inputs(source, model, model_path, framing):
    """Examples from one INPUT: an image file (one example) or a dataset (X, and y or None)."""
    from ..datasets._images import image_to_input, is_image_path

    n_inputs = model.layer_sizes[0]
    if is_image_path(source):
        return image_to_input(source, n_inputs, framing)[None], None
    X, y = load_data(source, labels=None, n_features=n_inputs)
    check_fit(model, X, None, model_path, source)
    return X, y


def _one_line(exc):
    """An error's message on one line, as ``nnlearn.cli.main`` prints it."""
    if isinstance(exc, OSError) and not isinstance(exc, NNLearnError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _predict_one(source, model, model_path, framing):
    """The rows of one INPUT, and the image warnings it gave (each one line)."""
    from ..datasets._images import ImageWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImageWarning)
        X, y = _inputs(source, model, model_path, framing)
    notes = []
    for warning in caught:
        if issubclass(warning.category, ImageWarning):
            notes.append(" ".join(str(warning.message).split()))
        else:  # not ours to judge: pass it on as it came
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    proba = model.predict_proba(X)
    best = np.argmax(proba, axis=1)
    rows = []
    for i in range(len(X)):
        row = {
            "input": source,
            "index": i,
            "label": model.classes[best[i]],
            "probability": proba[i, best[i]],
            "probabilities": proba[i],
        }
        if y is not None:
            row["true_label"] = y[i]
        rows.append(row)
    return rows, notes


def run(args):
    from ..datasets._images import is_image_path, model_framing

    # Before anything reads it: a FIFO would hang the reader, /dev/zero fill the memory.
    if not names_pretrained(args.model):
        regular_file(args.model, ModelFileError, "model file", MAX_MODEL_BYTES)
    model = load_model_file(args.model)
    framing = model_framing(model.history, args.model) if any(map(is_image_path, args.inputs)) else None
    rows, results = [], []
    for source in args.inputs:
        try:
            found, notes = _predict_one(source, model, args.model, framing)
        except (NNLearnError, OSError) as exc:
            message = _one_line(exc)
            say(f"nnlearn predict: error: {message}")
            results.append({"input": source, "error": message})
            continue
        for note in notes:
            say(f"nnlearn predict: warning: {note}")
        rows.extend(found)
        results.append({"input": source, "examples": len(found), "warnings": notes})
    failed = sum("error" in result for result in results)
    payload = {"model": args.model, "classes": model.classes, "predictions": rows, "inputs": results}
    if framing is not None:
        payload["framing"] = framing
    text = [f"{'input':<24} {'label':>6} {'probability':>12}"]
    for row in rows:
        name = row["input"] if is_image_path(row["input"]) else f"{row['input']}[{row['index']}]"
        truth = f"  (true {row['true_label']})" if "true_label" in row else ""
        text.append(f"{name:<24} {str(row['label']):>6} {row['probability']:>12.4f}{truth}")
    if rows or args.json:  # errors alone leave stdout empty; --json always gives its one object
        emit(args, payload, text)
    return 2 if failed else 0
