"""``nnlearn predict``: the digits in image files, or the examples of data files."""

from __future__ import annotations

import numpy as np

from ..datasets import load_data
from .common import check_fit, emit, load_model_file

SUMMARY = "predict the digits in image files (PNG, JPEG) or the examples of a data file"
EXAMPLES = """\
  nnlearn predict nnlearn-model.npz my-seven.png photo-of-a-3.jpg
  nnlearn predict nnlearn-model.npz examples.csv --json"""


def add_arguments(p):
    p.add_argument("model", help="nnlearn model (.npz) or Octave weights (.mat)")
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files of one digit each (dark on light or light on dark), or data files",
    )


def _inputs(source, model, model_path):
    """Examples from one INPUT: an image file (one example) or a dataset (X, and y)."""
    from ..images import image_to_input, is_image_path

    if is_image_path(source):
        return image_to_input(source, model.layer_sizes[0])[None], None
    X, y = load_data(source)
    check_fit(model, X, None, model_path, source)
    return X, y


def run(args):
    model = load_model_file(args.model)
    rows = []
    for source in args.inputs:
        X, y = _inputs(source, model, args.model)
        proba = model.predict_proba(X)
        best = np.argmax(proba, axis=1)
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
    text = [f"{'input':<24} {'label':>6} {'probability':>12}"]
    for row in rows:
        name = row["input"] if "true_label" not in row else f"{row['input']}[{row['index']}]"
        truth = f"  (true {row['true_label']})" if "true_label" in row else ""
        text.append(f"{name:<24} {str(row['label']):>6} {row['probability']:>12.4f}{truth}")
    emit(args, {"model": args.model, "classes": model.classes, "predictions": rows}, text)
    return 0
