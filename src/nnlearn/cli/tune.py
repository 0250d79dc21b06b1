"""``nnlearn tune``: choose lambda, hidden layers, activation and output by cross-validation.

The data are split as ``nnlearn train`` splits them (``--test-size``, ``--seed``); the
search (:func:`nnlearn.reporting._tuning.search`) sees the training part alone, in stratified folds.
The chosen settings are then trained on the whole training part exactly as the printed
``nnlearn train`` command trains them (the same call, split and seed: the same weights),
scored once on the held-out part, and saved with the validation curve of the search.
``--check K`` adds nested cross-validation (:func:`nnlearn.reporting._tuning.nested_check`): is the
choice better than the course's settings on folds it was not chosen on?

This module runs the verb; its options' checks are :mod:`nnlearn.cli._tune_options`', what
it prints :mod:`nnlearn.cli._tune_output`'s.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

from ..datasets._builtin import DATASET_FRAMING, DATASETS, load_data
from ..errors import ParameterError
from ..training._settings import DEFAULTS, SETTINGS
from ._common import DATA_HELP, emit, percent, refuse_existing, same_path, split_data
from ._monitor import say
from ._train_options import add_setting
from ._tune_options import DEFAULT_OUT, DEFAULT_PLOT, check_options
from ._tune_output import make_payload, payload_text

ESTIMATOR_OPTIMIZER = SETTINGS["optimizer"].estimator_default

SUMMARY = "choose lambda, hidden layers, activation and output by cross-validation, and train the best"
EXAMPLES = """\
  nnlearn tune --data digits8
  nnlearn tune --data digits8 --lambda 0.3,1,3 --hidden 25,100,50-25 --activation relu --output softmax
  nnlearn tune --data digits8 --check 3 --json
  nnlearn tune --lambda 1,3 --hidden 100 --cv 3 --max-iter 200 --out tuned.npz --plot tuned.png"""


def add_arguments(p):
    from ..core import ACTIVATIONS, OUTPUTS
    from ..reporting._tuning_grid import DEFAULT_GRID

    grid = DEFAULT_GRID
    p.add_argument("--data", metavar="NAME|FILE", default="digits20", help=f"{DATA_HELP} (default: digits20)")
    p.add_argument(
        "--lambda",
        dest="lam",
        metavar="L,L,...",
        help=f"values of lambda to try (default: {','.join(f'{v:g}' for v in grid['lam'])})",
    )
    p.add_argument(
        "--hidden",
        metavar="H,H,...",
        help="hidden layers to try, each its layer sizes joined by '-' (50-25: two layers) (default: "
        + ",".join("-".join(map(str, h)) for h in grid["hidden_layer_sizes"])
        + ")",
    )
    p.add_argument(
        "--activation",
        metavar="A,A,...",
        help=f"hidden activations to try, of {', '.join(ACTIVATIONS)} (default: {','.join(grid['activation'])})",
    )
    p.add_argument(
        "--output",
        metavar="O,O,...",
        help=f"output layers to try, of {', '.join(OUTPUTS)} (default: {','.join(grid['output'])})",
    )
    add_setting(p, "optimizer", ESTIMATOR_OPTIMIZER, help="how every candidate trains")
    add_setting(p, "max_iter", DEFAULTS.max_iter, help="iterations of each fit")
    p.add_argument("--cv", type=int, default=5, metavar="K", help="stratified cross-validation folds (default: 5)")
    p.add_argument(
        "--check",
        type=int,
        nargs="?",
        const=3,
        default=None,
        metavar="K",
        help="also run nested cross-validation on K outer folds (default K: 3): the search chooses on the other "
        "folds, and its choice and the course's settings are scored on each outer fold (K times the work)",
    )
    p.add_argument(
        "--test-size",
        type=float,
        default=0.2,
        metavar="F",
        help="held-out fraction, split as nnlearn train splits it; the search never sees it (default: 0.2)",
    )
    add_setting(p, "seed", DEFAULTS.seed, help="seeds the split, the folds and every fit")
    add_setting(p, "dtype", DEFAULTS.dtype)
    p.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        metavar="N",
        help="worker processes, each given cores/N BLAS threads (default: this machine's cores)",
    )
    p.add_argument("--out", metavar="FILE", help=f"the chosen model's file (default: {DEFAULT_OUT})")
    p.add_argument("--plot", metavar="FILE", help=f"the validation-curve picture (default: {DEFAULT_PLOT})")
    p.add_argument("--force", action="store_true", help="overwrite an existing model file or picture")
    p.add_argument("--quiet", action="store_true", help="no line per candidate on stderr")


def run(args):
    os.environ.setdefault("MPLBACKEND", "Agg")  # the picture goes to a file, never a window
    grid = check_options(args)
    X, y = load_data(args.data)
    X_train, X_test, y_train, y_test = split_data(X, y, args.test_size, args.seed)
    from ..reporting._tuning import check_folds

    check_folds(y_train, args.cv, f"the {len(y_train)} training examples")
    if args.check:
        check_folds(y_train, args.check, f"the {len(y_train)} training examples")
    out, plot = args.out or DEFAULT_OUT, args.plot or DEFAULT_PLOT
    refuse_existing(out, args.force)
    refuse_existing(plot, args.force, option="--plot")
    if same_path(out, plot):
        raise ParameterError(f"--out {out} and --plot {plot} are the same file; give two names")
    done = {"candidates": 0, "of": 0, "saved": []}
    try:
        with _interrupts_in_finalisers():
            return _tune(args, grid, (X_train, y_train, X_test, y_test), out, plot, done)
    except KeyboardInterrupt:
        where = f" after {done['candidates']} of {done['of']} candidates" if done["of"] else ""
        saved = f"saved only {', '.join(map(str, done['saved']))}" if done["saved"] else "nothing was saved"
        say(f"nnlearn tune: interrupted{where}; {saved}")
        return 130


@contextlib.contextmanager
def _interrupts_in_finalisers():
    """Ctrl-C reaches the whole process group; one that lands while a finaliser runs (a
    weakref callback of the worker pool's) cannot be raised there, and Python would print
    it with a traceback as an ignored exception. Keep it quiet, and raise it once the work
    under way returns."""
    seen = []
    previous = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            seen.append(unraisable)
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous
    if seen:
        raise KeyboardInterrupt


def _tune(args, grid, data, out, plot, done):
    from ..reporting._plots import save_figure
    from ..reporting._tuning import SearchSettings, nested_check, search
    from ..reporting._tuning_plot import plot_search

    X_train, y_train, X_test, y_test = data
    show = not (args.quiet or args.json)
    settings = SearchSettings(
        optimizer=args.optimizer, max_iter=args.max_iter, seed=args.seed, dtype=args.dtype, n_jobs=args.n_jobs
    )
    start = time.perf_counter()

    def progress(i, total, candidate):
        done.update(candidates=done["candidates"] + 1, of=total)
        if show:
            say(
                f"nnlearn tune: [{i:>{len(str(total))}}/{total}] {candidate.describe():<36} "
                f"{percent(candidate.mean):>7} +- {percent(candidate.std)}  ({candidate.fit_seconds:.2f} s a fit)"
            )

    result = search(X_train, y_train, grid, cv=args.cv, settings=settings, progress=progress)
    check = None
    if args.check:
        if show:
            say(f"nnlearn tune: check: the search again inside each of {args.check} outer folds")
        check = nested_check(
            X_train,
            y_train,
            grid,
            outer=args.check,
            cv=args.cv,
            settings=settings,
            progress=_check_progress if show else None,
        )
    model = _retrain(args, result.best.params, X_train, y_train)
    test_accuracy = None if X_test is None else float(model.score(X_test, y_test))
    saved = model.save(out, overwrite=args.force)
    done["saved"].append(saved)
    figure = save_figure(plot_search(result), plot, overwrite=args.force)
    payload = make_payload(args, result, check, data, test_accuracy, saved, figure, time.perf_counter() - start)
    emit(args, payload, payload_text(payload))
    return 0


def _check_progress(k, outer, chosen, chosen_score, course_score):
    from ..reporting._tuning import architecture_of

    say(
        f"nnlearn tune: check fold {k}/{outer}: chose lambda {chosen['lam']:g}, {architecture_of(chosen)}: "
        f"{percent(chosen_score)}; course's settings {percent(course_score)}"
    )


def _retrain(args, params, X_train, y_train):
    """The chosen settings trained as ``nnlearn train`` trains them (the command printed)."""
    from ..training._train import train

    model = train(
        X_train,
        y_train,
        hidden_layer_sizes=params["hidden_layer_sizes"],
        lam=params["lam"],
        optimizer=args.optimizer,
        max_iter=args.max_iter,
        seed=args.seed,
        dtype=args.dtype,
        activation=params["activation"],
        output=params["output"],
    )
    data = args.data if args.data in DATASETS else str(Path(args.data).resolve())
    model.history.update(
        data=data,
        test_size=args.test_size,
        split_seed=args.seed,
        framing=DATASET_FRAMING.get(args.data, "mnist"),
        source="nnlearn tune",
    )
    return model
