"""A one-page HTML report on a trained network: settings, numbers and figures.

:func:`write_report` writes ``DIR/index.html`` and, beside it, one PNG file per figure;
the page refers only to those files, so the folder can be moved or zipped as a whole.
Every file is written atomically and ``index.html`` last, so a page that exists has
all its images. While a report is being written, a marker file (:data:`UNFINISHED`)
says so: the pictures a failed or killed write left behind are then known to be its own,
and the next report replaces them without being told to overwrite.

The report names its data for what they are to the model (``data_role``): its held-out
test data, its own training data (a model trained without a held-out part), or other
data; it never calls training data test data.
"""

from __future__ import annotations

import datetime
import html
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ..datasets._check import check_dataset
from ..errors import ShapeError
from ..persist._atomic import OutputExistsError, atomic_write, check_replaceable
from ._plots import plot_digits, plot_hidden_units, save_figure
from ._training_plots import plot_confusion_matrix, plot_cost_history

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..model._model import Model

__all__ = [
    "write_report",
    "report_files",
    "report_clashes",
    "FIGURES",
    "DATA_ROLES",
    "UNFINISHED",
    "most_confidently_wrong",
]

#: What the evaluation data are to the model, and the word the page uses for them:
#: "test", its held-out part; "training", the data it was trained on (it has no
#: held-out part); "other", data not known to be either (they may include its training
#: examples).
DATA_ROLES = {"test": "test", "training": "training", "other": "evaluation"}
# The captions, with {data} for the word of the data's role.
_CAPTIONS = {
    "digits.png": "100 {data} digits at random with the network's predictions",
    "hidden-units.png": "What each unit of the first hidden layer learned (its input weights)",
    "cost.png": "Training cost J per iteration",
    "confusion.png": "Confusion matrix on the {data} data",
    "wrong.png": "The most confidently wrong {data} examples",
}
#: The report's figure files, in page order, with their captions (for test data).
FIGURES = {name: caption.format(data="test") for name, caption in _CAPTIONS.items()}
#: Present in a report's folder while the report is being written.
UNFINISHED = ".nnlearn-report-unfinished"
N_WRONG = 25


def most_confidently_wrong(model: Model, X: ArrayLike, y: ArrayLike, k: int = N_WRONG) -> tuple[np.ndarray, np.ndarray]:
    """The wrongly predicted examples the network was surest of, surest first.

    Returns
    -------
    index : ndarray, shape (<= k,)
        Rows of ``X``.
    confidence : ndarray, shape (<= k,)
        ``model.predict_proba`` of the predicted class.
    """
    proba = model.predict_proba(X)
    predicted = model.classes[np.argmax(proba, axis=1)]
    wrong = np.flatnonzero(predicted != np.asarray(y))
    confidence = proba[wrong].max(axis=1)
    order = np.argsort(-confidence, kind="stable")[:k]
    return wrong[order], confidence[order]


def _figures(
    model: Model, X: np.ndarray, y: np.ndarray, predicted: np.ndarray, noun: str
) -> Iterator[tuple[str, Figure | None, str | None]]:
    """Each figure of the page as (file name, Figure or None, note shown beside or instead)."""
    digits: Figure | None
    hidden: Figure | None
    try:
        digits = plot_digits(X, labels=y, predictions=predicted, n=100, rng=0)
        hidden, note = plot_hidden_units(model), None
    except ShapeError as exc:  # the inputs are not square images: no pictures of them
        digits = hidden = None
        note = f"No image: {exc}."
    yield "digits.png", digits, note
    yield "hidden-units.png", hidden, note
    if len(model.history.get("cost") or []):
        yield "cost.png", plot_cost_history(model), None
    else:
        yield "cost.png", None, "No cost history: the model was not trained by nnlearn.train."
    yield "confusion.png", plot_confusion_matrix(y, predicted, classes=_labels(model, y)), None
    yield from _wrong_figure(model, X, y, predicted, images=digits is not None, noun=noun)


def _wrong_figure(model, X, y, predicted, images, noun):
    index, confidence = most_confidently_wrong(model, X, y)
    if index.size == 0:
        yield "wrong.png", None, f"Every {noun} example is predicted right."
        return
    note = "In order, surest first; predicted probability: " + ", ".join(f"{p:.2f}" for p in confidence) + "."
    fig = None
    if images:
        fig = plot_digits(
            X[index],
            labels=y[index],
            predictions=predicted[index],
            n=index.size,
            title=f"The {index.size} most confidently wrong {noun} examples",
        )
    yield "wrong.png", fig, note


def _labels(model, y):
    try:
        return np.union1d(model.classes, y)
    except TypeError:  # labels of mixed kinds cannot be sorted together
        return model.classes


def _numbers(model, X, y, predicted, X_train, y_train, role):
    """(name, value) rows of the numbers table, values already formatted."""
    history = model.history
    costs = history.get("cost") or []
    noun = DATA_ROLES[role]
    rows = [
        ("layer sizes", " - ".join(str(s) for s in model.layer_sizes)),
        ("hidden activation", model.network.activation),
        ("output", model.network.output),
        ("lambda", f"{model.lam:g}"),
        (f"{noun} examples" + (" (no held-out part)" if role == "training" else ""), f"{len(y)}"),
        (f"{noun} accuracy", f"{np.mean(predicted == y):.2%}"),
        # Unregularised: the penalty lam/(2m) sum(theta^2) grows as the test set shrinks,
        # which would make a small test set look worse than the model is.
        (f"{noun} cost J (lambda 0)", f"{model.cost(X, y, lam=0.0):.6f}"),
    ]
    # Training data evaluated as such are not listed twice.
    if X_train is not None and y_train is not None and role != "training":
        X_train, y_train = check_dataset(X_train, y_train, "report training data")
        rows += [
            ("training examples", f"{len(y_train)}"),
            ("training accuracy", f"{model.score(X_train, y_train):.2%}"),
        ]
    rows += [
        ("optimizer", history.get("optimizer")),
        ("final training cost J", f"{costs[-1]:.6f}" if len(costs) else None),
        ("iterations", history.get("n_iter")),
        ("cost evaluations", history.get("n_evals")),
        ("training time", f"{history['seconds']:.2f} s" if "seconds" in history else None),
        ("seed", history.get("seed")),
        ("dtype", history.get("dtype")),
    ]
    return [(name, value) for name, value in rows if value is not None]


def _per_class(model, y, predicted):
    from sklearn.metrics import precision_recall_fscore_support

    labels = _labels(model, y)
    precision, recall, f1, support = precision_recall_fscore_support(y, predicted, labels=labels, zero_division=0)
    return [(label, p, r, f, s) for label, p, r, f, s in zip(labels, precision, recall, f1, support)]


def _table(rows, header=None):
    esc = lambda value: html.escape(str(value))  # noqa: E731
    head = "" if header is None else "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>\n"
    body = "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>\n" for row in rows)
    return f"<table>\n{head}{body}</table>"


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 980px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.1em; } .when { color: #777; margin-top: 0; }
section { margin: 2em 0; } .columns { display: flex; gap: 3em; flex-wrap: wrap; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }
th { background: #f3f3f3; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-weight: 600; margin-bottom: 0.4em; } .note { color: #555; font-size: 0.92em; }
"""


def _figure_html(name, caption, note):
    img = f'<img src="{html.escape(name)}" alt="{html.escape(caption)}">' if name else ""
    note = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return f"<figure><figcaption>{html.escape(caption)}</figcaption>{img}{note}</figure>"


def _page(settings, numbers, per_class, figures, noun):
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    from .._version import __version__

    settings_html = _table(settings.items()) if settings else '<p class="note">None given.</p>'
    per_class_rows = [(c, f"{p:.3f}", f"{r:.3f}", f"{f:.3f}", s) for c, p, r, f, s in per_class]
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>nnlearn report</title><style>{_STYLE}</style></head>
<body>
<h1>nnlearn report</h1>
<p class="when">{html.escape(when)}, nnlearn {html.escape(__version__)}</p>
<div class="columns">
<section><h2>Settings</h2>
{settings_html}</section>
<section><h2>Numbers</h2>
{_table(numbers)}</section>
<section><h2>Per class ({html.escape(noun)} data)</h2>
{_table(per_class_rows, ("class", "precision", "recall", "F1", "examples"))}</section>
</div>
<section><h2>Figures</h2>
{"".join(figures)}
</section>
</body>
</html>
"""


def report_files(directory: str | os.PathLike) -> list[Path]:
    """The files :func:`write_report` writes into ``directory``: index.html and the figures."""
    return [Path(directory) / name for name in ("index.html", *FIGURES)]


def report_clashes(directory: str | os.PathLike) -> list[Path]:
    """The files of ``directory`` that a report would replace and that are not its own leftovers.

    Pictures left by a report whose writing did not finish (:data:`UNFINISHED` is there)
    are that report's, and are replaced without asking; a finished report's
    ``index.html``, or files of the report's names made by anything else, are clashes.
    """
    directory = Path(directory)
    existing = [path for path in report_files(directory) if os.path.lexists(path)]
    if os.path.lexists(directory / UNFINISHED):
        return [path for path in existing if path.name == "index.html"]
    return existing


def write_report(
    model: Model,
    directory: str | os.PathLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    training: tuple[ArrayLike, ArrayLike] | None = None,
    settings: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    data_role: str = "test",
) -> Path:
    """Write a one-page HTML report on ``model``, with its figures as PNG files beside it.

    Parameters
    ----------
    model : nnlearn.Model
    directory : str or Path
        Created if needed; receives ``index.html`` and the files in :data:`FIGURES`.
    X : array-like, shape (m, n)
    y : array-like, shape (m,)
        The evaluation data (see ``data_role``).
    training : (X_train, y_train), optional
        The training data, for the training accuracy.
    settings : dict, optional
        Shown as given (e.g. the command line's options); every value is escaped.
    overwrite : bool
        Replace an existing report; otherwise raise :class:`OutputExistsError` (the
        leftovers of a report whose writing did not finish are replaced regardless).
    data_role : {"test", "training", "other"}
        What ``X, y`` are to the model (:data:`DATA_ROLES`), for the page's words.

    Returns
    -------
    pathlib.Path
        ``directory / "index.html"``.
    """
    if data_role not in DATA_ROLES:
        raise ValueError(f"data_role must be one of {', '.join(DATA_ROLES)}, got {data_role!r}")
    noun = DATA_ROLES[data_role]
    directory = Path(directory)
    index = directory / "index.html"
    # Checked before any work, so a refused report leaves the folder as it was. A device
    # or FIFO under a report's file name is never replaced, whatever overwrite says.
    for path in report_files(directory):
        check_replaceable(path, overwrite=True)
    clashes = report_clashes(directory)
    if clashes and not overwrite:
        raise OutputExistsError(f"{clashes[0]}: file exists; choose another folder or allow overwriting")
    X, y = check_dataset(X, y, "report data")
    predicted = model.predict(X)
    X_train, y_train = training if training is not None else (None, None)
    marker = directory / UNFINISHED
    atomic_write(marker, lambda f: f.write(f"nnlearn report being written by process {os.getpid()}\n".encode()), True)
    figures = []
    for name, fig, note in _figures(model, X, y, predicted, noun):
        if fig is not None:
            save_figure(fig, directory / name, overwrite=True)
        elif (directory / name).is_file():
            (directory / name).unlink()  # a stale picture from an earlier report
        figures.append(_figure_html(name if fig is not None else None, _CAPTIONS[name].format(data=noun), note))
    page = _page(
        dict(settings or {}),
        _numbers(model, X, y, predicted, X_train, y_train, data_role),
        _per_class(model, y, predicted),
        figures,
        noun,
    )
    atomic_write(index, lambda f: f.write(page.encode("utf-8")), overwrite=True)
    marker.unlink()
    return index
