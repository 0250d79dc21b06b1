"""``nnlearn show``: 100 random digits of a dataset, or a model's hidden units, as a PNG."""

from __future__ import annotations

import os
from pathlib import Path

from ..datasets._builtin import load_data
from ..errors import ParameterError
from ._common import (
    DATA_HELP,
    MODEL_HELP,
    MODEL_SUFFIXES,
    emit,
    load_model_file,
    names_pretrained,
    note_saved,
    refuse_existing,
    refuse_overwriting_inputs,
    writing,
)

SUMMARY = "draw 100 random digits of a dataset, or the hidden units of a model, to a PNG file"
EXAMPLES = """\
  nnlearn show --data digits20 --seed 3
  nnlearn show nnlearn-model.npz --out units.png"""


def add_arguments(p):
    p.add_argument("model", nargs="?", help=f"{MODEL_HELP}: draw its hidden units instead")
    p.add_argument("--data", metavar="NAME|FILE", default="digits20", help=f"{DATA_HELP} (default: digits20)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="which random digits (default: 0)")
    p.add_argument("--out", metavar="FILE", help="PNG file (default: digits.png, or hidden-units.png for a model)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")


def run(args):
    # The figures are only written to files; no window, whatever the environment says.
    os.environ.setdefault("MPLBACKEND", "Agg")
    if (
        args.model is not None
        and not names_pretrained(args.model)
        and Path(args.model).suffix.lower() not in MODEL_SUFFIXES
    ):
        raise ParameterError(f"{args.model}: expected a model file (.npz or .mat); use --data for a dataset")
    out = args.out or ("hidden-units.png" if args.model else "digits.png")
    drawn = ("MODEL", args.model) if args.model is not None else ("--data", args.data)
    refuse_overwriting_inputs([drawn], [("--out", out)])
    refuse_existing(out, args.force)
    from ..reporting import _plots as plots

    if args.model is not None:
        fig = plots.plot_hidden_units(load_model_file(args.model))
        what = f"hidden units of {args.model}"
    else:
        X, y = load_data(args.data)
        fig = plots.plot_digits(X, labels=y, n=100, rng=args.seed)
        what = f"100 random digits of {args.data} (seed {args.seed})"
    with writing(out):
        path = plots.save_figure(fig, out, overwrite=args.force)
    note_saved(args, "the figure", path)
    emit(args, {"figure": str(path), "shows": what}, f"{what} written to {path}")
    return 0
