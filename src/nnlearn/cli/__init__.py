"""The ``nnlearn`` command line: train, evaluate, predict, check and reproduce the course.

One function per verb, ``cmd_<verb>(args) -> int``, each returning the exit status. Every
mistake a user can make (a missing or malformed file, weights that do not fit the data,
an option out of range) surfaces as an :class:`~nnlearn.errors.NNLearnError` or OSError,
which :func:`main` prints as one line on stderr with exit status 2, never a traceback.
With ``--json`` a verb prints exactly one JSON object on stdout and nothing else there.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import NNLearnError
from ..files import OutputExistsError
from ..settings import OPTIMIZERS
from .common import DATA_HELP, DEFAULT_MODEL
from .course import cmd_gradcheck, cmd_reproduce
from .inspect import cmd_cost, cmd_evaluate, cmd_predict, cmd_report, cmd_show
from .train import cmd_train

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line; the exit status stays argparse's 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


VERBS = {
    "train": ("train a network (default: the course's 400-25-10 on the embedded digits)",
              "  nnlearn train\n  nnlearn train --hidden 50 25 --optimizer lbfgs --test-size 0 --out big.npz\n"
              "  nnlearn train --optimizer fmincg --checkpoint run.ckpt --out m.npz   (Ctrl-C, then:)\n"
              "  nnlearn train --resume run.ckpt --out m.npz"),
    "evaluate": ("accuracy, per-class precision and recall, and the confusion matrix of a model",
                 "  nnlearn evaluate nnlearn-model.npz\n  nnlearn evaluate ex4weights.mat --data digits20 --json"),
    "predict": ("predict the digits in image files (PNG, JPEG) or the examples of a data file",
                "  nnlearn predict nnlearn-model.npz my-seven.png photo-of-a-3.jpg\n"
                "  nnlearn predict nnlearn-model.npz examples.csv --json"),
    "cost": ("the regularised cost J of given weights on a dataset (the course's 0.383770 check)",
             "  nnlearn cost --weights ../shared/data/ex4weights.mat --lambda 1"),
    "gradcheck": ("backpropagation against numerical gradients on the course's debug network",
                  "  nnlearn gradcheck\n  nnlearn gradcheck --hidden 5 4 --lambda 3"),
    "reproduce": ("run the course's notebook step by step and compare every result with the course's",
                  "  nnlearn reproduce\n  nnlearn reproduce --data ex4data1.mat --weights ex4weights.mat"),
    "report": ("write an HTML report of a model on a dataset",
               "  nnlearn report nnlearn-model.npz report/\n  nnlearn report ex4weights.mat --data digits20 report/"),
    "show": ("draw 100 random digits of a dataset, or the hidden units of a model, to a PNG file",
             "  nnlearn show --data digits20 --seed 3\n  nnlearn show nnlearn-model.npz --out units.png"),
}


def _add_train(p):
    # The training options default to None here and to TRAIN_DEFAULTS in cmd_train, so
    # that a resumed run can tell an option given on the command line from a default.
    p.add_argument("--data", metavar="NAME|FILE", default=None, help=f"{DATA_HELP} (default: digits20)")
    p.add_argument("--hidden", type=int, nargs="+", default=None, metavar="N",
                   help="hidden layer sizes (default: 25)")
    p.add_argument("--lambda", dest="lam", type=float, default=None, metavar="L",
                   help="regularisation strength (default: 1)")
    p.add_argument("--optimizer", default=None, metavar="NAME",
                   help=f"one of {', '.join(OPTIMIZERS)} (default: cg)")
    p.add_argument("--max-iter", type=int, default=None, metavar="N",
                   help="iterations; epochs for sgd and adam (default: 400)")
    p.add_argument("--test-size", type=float, default=None, metavar="F",
                   help="held-out fraction of a stratified split; 0 trains on everything (default: 0.2)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seeds the split and the initial weights (default: 0)")
    p.add_argument("--dtype", default=None, metavar="TYPE", help="float64 or float32 (default: float64)")
    p.add_argument("--out", metavar="FILE",
                   help=f"model file to write (default: {DEFAULT_MODEL}); an interrupted run saves its "
                        "weights so far only when --out is given")
    p.add_argument("--report", metavar="DIR", help="also write an HTML report into DIR")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="keep the run's state in FILE (rewritten every --checkpoint-every seconds and at the end)")
    p.add_argument("--checkpoint-every", type=float, default=30.0, metavar="S",
                   help="seconds between checkpoint writes (default: 30)")
    p.add_argument("--resume", metavar="FILE",
                   help="continue the run saved in checkpoint FILE, with its settings, to the weights the "
                        "uninterrupted run reaches (cg and lbfgs replay their saved iterations first)")
    p.add_argument("--force", action="store_true", help="overwrite an existing model file, report or checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_evaluate(p):
    p.add_argument("model", help="nnlearn model (.npz) or Octave weights (.mat)")
    p.add_argument("--data", metavar="NAME|FILE", help=f"{DATA_HELP} (default: the held-out part of the model's training data, "
                                  "as recorded by nnlearn train, else digits20)")


def _add_predict(p):
    p.add_argument("model", help="nnlearn model (.npz) or Octave weights (.mat)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files of one digit each (dark on light or light on dark), or data files")


def _add_cost(p):
    p.add_argument("--weights", required=True, metavar="FILE", help="nnlearn model (.npz) or Octave weights (.mat)")
    p.add_argument("--data", metavar="NAME|FILE", default="digits20", help=f"{DATA_HELP} (default: digits20)")
    p.add_argument("--lambda", dest="lam", type=float, default=0.0, metavar="L", help="regularisation strength (default: 0)")


def _add_gradcheck(p):
    p.add_argument("--hidden", type=int, nargs="+", default=[5], metavar="N",
                   help="hidden layer sizes of the debug network, 3 inputs and 3 outputs (default: 5)")
    p.add_argument("--lambda", dest="lam", type=float, default=0.0, metavar="L", help="regularisation strength (default: 0)")


def _add_reproduce(p):
    p.add_argument("--data", metavar="NAME|FILE", help="the course's ex4data1.mat, or any dataset (default: the embedded digits20)")
    p.add_argument("--weights", metavar="FILE", help="the course's ex4weights.mat (default: the weights trained here)")
    p.add_argument("--max-iter", type=int, default=400, metavar="N", help="training iterations (default: 400, the course's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_report(p):
    p.add_argument("model", help="nnlearn model (.npz) or Octave weights (.mat)")
    p.add_argument("dir", metavar="DIR", help="directory to write index.html and its figures into")
    p.add_argument("--data", metavar="NAME|FILE", help=f"{DATA_HELP} (default: as for evaluate)")
    p.add_argument("--force", action="store_true", help="overwrite an existing report")


def _add_show(p):
    p.add_argument("model", nargs="?", help="a model file (.npz or .mat): draw its hidden units instead")
    p.add_argument("--data", metavar="NAME|FILE", default="digits20", help=f"{DATA_HELP} (default: digits20)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="which random digits (default: 0)")
    p.add_argument("--out", metavar="FILE", help="PNG file (default: digits.png, or hidden-units.png for a model)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")


ARGUMENTS = {"train": _add_train, "evaluate": _add_evaluate, "predict": _add_predict, "cost": _add_cost,
             "gradcheck": _add_gradcheck, "reproduce": _add_reproduce, "report": _add_report, "show": _add_show}
COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "cost": cmd_cost,
            "gradcheck": cmd_gradcheck, "reproduce": cmd_reproduce, "report": cmd_report, "show": cmd_show}


def build_parser():
    parser = _Parser(prog="nnlearn", description="Neural-network learning as the classic course teaches it.",
                     epilog="example:\n  nnlearn train\n\nRun 'nnlearn VERB --help' for a verb's options and examples.",
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, (summary, examples) in VERBS.items():
        p = verbs.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".",
                             epilog=f"example:\n{examples}", formatter_class=argparse.RawDescriptionHelpFormatter)
        ARGUMENTS[name](p)
        p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
        p.set_defaults(run=COMMANDS[name])
    return parser


def _message(exc):
    """One line for an error: its message, with a hint where one helps."""
    if isinstance(exc, OSError) and not isinstance(exc, NNLearnError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    if isinstance(exc, OutputExistsError) and "--force" not in text:
        text += " (pass --force to overwrite)"
    return " ".join(text.split())


def main(argv=None):
    """Run the command line; return the exit status (2 for any user error)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        # The reader went away (`nnlearn predict ... | head`); say nothing more to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (NNLearnError, OSError) as exc:
        print(f"nnlearn {args.verb}: error: {_message(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"nnlearn {args.verb}: error: not enough memory for this network and data", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nnlearn {args.verb}: interrupted", file=sys.stderr)
        return 130
