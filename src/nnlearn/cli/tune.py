"""``nnlearn tune``: choose lambda, hidden layers, activation and output by cross-validation.

The data are split as ``nnlearn train`` splits them (``--test-size``, ``--seed``); the
search (:func:`nnlearn.reporting._tuning.search`) sees the training part alone, in stratified folds.
The chosen settings are then trained on the whole training part exactly as the printed
``nnlearn train`` command trains them (the same call, split and seed: the same weights),
scored once on the held-out part, and saved with the validation curve of the search.
``--check K`` adds nested cross-validation (:func:`nnlearn.reporting._tuning.nested_check`): is the
choice better than the course's settings on folds it was not chosen on?
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

from ..datasets._builtin import DATASET_FRAMING, DATASETS, load_data
from ..errors import ParameterError
from ..optim import OPTIMIZERS
from ..training._settings import DEFAULTS, SETTINGS, check_setting
from ._common import DATA_HELP, emit, percent, refuse_existing, same_path, split_data
from ._monitor import say

ESTIMATOR_OPTIMIZER = SETTINGS["optimizer"].estimator_default

SUMMARY = "choose lambda, hidden layers, activation and output by cross-validation, and train the best"
EXAMPLES = """\
  nnlearn tune --data digits8
  nnlearn tune --data digits8 --lambda 0.3,1,3 --hidden 25,100,50-25 --activation relu --output softmax
  nnlearn tune --data digits8 --check 3 --json
  nnlearn tune --lambda 1,3 --hidden 100 --cv 3 --max-iter 200 --out tuned.npz --plot tuned.png"""

DEFAULT_OUT = "nnlearn-tuned.npz"
DEFAULT_PLOT = "nnlearn-tune.png"


def add_arguments(p):
    from ..core import ACTIVATIONS, OUTPUTS
    from ..reporting._tuning import DEFAULT_GRID

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
    p.add_argument(
        "--optimizer",
        default=ESTIMATOR_OPTIMIZER,
        metavar="NAME",
        help=f"how every candidate trains, one of {', '.join(OPTIMIZERS)} (default: {ESTIMATOR_OPTIMIZER})",
    )
    p.add_argument(
        "--max-iter",
        type=int,
        default=DEFAULTS.max_iter,
        metavar="N",
        help=f"iterations of each fit (default: {DEFAULTS.max_iter})",
    )
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
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULTS.seed,
        metavar="N",
        help=f"seeds the split, the folds and every fit (default: {DEFAULTS.seed})",
    )
    p.add_argument("--dtype", default=DEFAULTS.dtype, metavar="TYPE", help="float64 or float32 (default: float64)")
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
    grid = _check_options(args)
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
        return _tune(args, grid, (X_train, y_train, X_test, y_test), out, plot, done)
    except KeyboardInterrupt:
        where = f" after {done['candidates']} of {done['of']} candidates" if done["of"] else ""
        saved = f"saved only {', '.join(map(str, done['saved']))}" if done["saved"] else "nothing was saved"
        say(f"nnlearn tune: interrupted{where}; {saved}")
        return 130


def _tune(args, grid, data, out, plot, done):
    from ..reporting._plots import save_figure
    from ..reporting._tuning import nested_check, plot_search, search

    X_train, y_train, X_test, y_test = data
    show = not (args.quiet or args.json)
    common = {"optimizer": args.optimizer, "max_iter": args.max_iter, "seed": args.seed, "dtype": args.dtype}
    start = time.perf_counter()

    def progress(i, total, candidate):
        done.update(candidates=done["candidates"] + 1, of=total)
        if show:
            say(
                f"nnlearn tune: [{i:>{len(str(total))}}/{total}] {candidate.describe():<36} "
                f"{percent(candidate.mean):>7} +- {percent(candidate.std)}  ({candidate.fit_seconds:.2f} s a fit)"
            )

    result = search(X_train, y_train, grid, cv=args.cv, n_jobs=args.n_jobs, progress=progress, **common)
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
            n_jobs=args.n_jobs,
            progress=_check_progress if show else None,
            **common,
        )
    model = _retrain(args, result.best.params, X_train, y_train)
    test_accuracy = None if X_test is None else float(model.score(X_test, y_test))
    saved = model.save(out, overwrite=args.force)
    done["saved"].append(saved)
    figure = save_figure(plot_search(result), plot, overwrite=args.force)
    payload = _payload(args, result, check, data, test_accuracy, saved, figure, time.perf_counter() - start)
    emit(args, payload, _text(payload))
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


# ------------------------------------------------------------------------ checks


def _split_list(text, option):
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise ParameterError(f"{option} {text!r}: give values separated by commas, none empty")
    return items


def _numbers(text, option, kind, what):
    values = []
    for item in _split_list(text, option):
        try:
            values.append(kind(item))
        except ValueError:
            raise ParameterError(f"{option}: {item!r} is not {what}") from None
    return values


def _hidden(text):
    layers = []
    for item in _split_list(text, "--hidden"):
        sizes = _numbers(item.replace("-", ","), "--hidden", int, "a size or sizes joined by '-' (50-25)")
        if any(size < 1 for size in sizes):
            raise ParameterError(f"--hidden: {item!r}: layer sizes must be positive integers")
        layers.append(tuple(sizes))
    return layers


def _check_options(args):
    """Every option, before any data are read; returns the search grid."""
    from ..reporting._tuning import grid_values, make_grid

    for name, flag in (
        ("seed", "--seed"),
        ("optimizer", "--optimizer"),
        ("dtype", "--dtype"),
        ("max_iter", "--max-iter"),
    ):
        check_setting(name, getattr(args, name), flag)
    if args.cv < 2:
        raise ParameterError(f"--cv must be an integer >= 2 (folds), got {args.cv}")
    if args.check is not None and args.check < 2:
        raise ParameterError(f"--check must be an integer >= 2 (outer folds), got {args.check}")
    if not 0 <= args.test_size < 1:
        raise ParameterError(f"--test-size must be in [0, 1), got {args.test_size}")
    if args.n_jobs is not None and args.n_jobs < 1:
        raise ParameterError(f"--n-jobs must be an integer >= 1, got {args.n_jobs}")
    _check_picture(args.plot or DEFAULT_PLOT)
    given = {
        "lam": ("--lambda", args.lam, lambda text: _numbers(text, "--lambda", float, "a number")),
        "hidden_layer_sizes": ("--hidden", args.hidden, _hidden),
        "activation": ("--activation", args.activation, lambda text: _split_list(text, "--activation")),
        "output": ("--output", args.output, lambda text: _split_list(text, "--output")),
    }
    grid = {}
    for key, (option, text, parse) in given.items():
        if text is None:
            continue
        try:
            grid[key] = grid_values(key, parse(text))
        except ParameterError as exc:
            message = str(exc)
            raise ParameterError(message if message.startswith(option) else f"{option}: {message}") from None
    return make_grid(**grid)


def _check_picture(path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    suffix = Path(path).suffix.lower().lstrip(".")
    supported = FigureCanvasAgg.get_supported_filetypes()
    if suffix not in supported:
        raise ParameterError(
            f"--plot {path}: cannot write .{suffix} pictures; use one of .{', .'.join(sorted(supported))}"
        )


# ---------------------------------------------------------------------- output


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


def _payload(args, result, check, data, test_accuracy, model, figure, seconds):
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


def _text(p):
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
