"""``nnlearn tune``'s options: their default file names, every one checked before any data
are read (:func:`check_options`), and the data checked against them before the search
(:func:`check_data`).

The grid's values are checked by :func:`nnlearn.reporting._tuning_grid.grid_values` (each
setting's one check); an error names the option it came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError, ParameterError
from ..training._settings import SETTINGS, check_setting

__all__ = ["DEFAULT_OUT", "DEFAULT_PLOT", "check_options", "check_data", "check_picture"]

DEFAULT_OUT = "nnlearn-tuned.npz"
DEFAULT_PLOT = "nnlearn-tune.png"


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
        layers.append(tuple(_numbers(item.replace("-", ","), "--hidden", int, "a size or sizes joined by '-' (50-25)")))
    return layers


def check_options(args):
    """Every option, before any data are read; returns the search grid."""
    from ..reporting._tuning_grid import grid_values, make_grid

    for name in ("seed", "optimizer", "dtype", "max_iter"):
        check_setting(name, getattr(args, name), SETTINGS[name].flag)
    if args.cv < 2:
        raise ParameterError(f"--cv must be an integer >= 2 (folds), got {args.cv}")
    if args.check is not None and args.check < 2:
        raise ParameterError(f"--check must be an integer >= 2 (outer folds), got {args.check}")
    if not 0 <= args.test_size < 1:
        raise ParameterError(f"--test-size must be in [0, 1), got {args.test_size}")
    if args.n_jobs is not None and args.n_jobs < 1:
        raise ParameterError(f"--n-jobs must be an integer >= 1, got {args.n_jobs}")
    check_picture(args.plot or DEFAULT_PLOT)
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


def check_picture(path):
    """``--plot``'s suffix must name a format matplotlib writes (checked before the search, not after)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    suffix = Path(path).suffix.lower().lstrip(".")
    supported = FigureCanvasAgg.get_supported_filetypes()
    if suffix not in supported:
        raise ParameterError(
            f"--plot {path}: cannot write .{suffix} pictures; use one of .{', .'.join(sorted(supported))}"
        )


def check_data(args, grid, X_train, y_train):
    """The training part against the options, as ``nnlearn train`` checks its data: two
    classes or more, examples enough of each for the folds (``--cv``, and ``--check``'s
    outer folds with ``--cv`` folds inside each), every candidate network within memory."""
    from ..core import Network
    from ..reporting._tuning import check_folds, check_nested_folds
    from ..training._checks import check_memory

    classes = np.unique(y_train)
    if classes.size < 2:
        raise DataError(f"training data: need at least two classes, got {classes.tolist()}")
    what = f"the {len(y_train)} training examples"
    check_folds(y_train, args.cv, what)
    if args.check:
        try:
            check_nested_folds(y_train, args.check, args.cv, args.seed)
        except ParameterError as exc:
            raise ParameterError(f"--check {args.check} with --cv {args.cv}: {exc}") from None
    for hidden in grid["hidden_layer_sizes"]:  # the units' kinds do not change the memory
        check_memory(Network((X_train.shape[1], *hidden, classes.size)), len(y_train))
