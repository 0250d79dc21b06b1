"""``nnlearn cost``: the regularised cost J of weights on a dataset (the course's check)."""

from __future__ import annotations

from ..datasets import load_data
from ..settings import check_lambda
from .common import (
    COURSE,
    DATA_HELP,
    PRETRAINED,
    PRETRAINED_TEXT,
    architecture,
    check_fit,
    emit,
    is_pretrained,
    load_weights_or_pretrained,
)

SUMMARY = "the regularised cost J of weights on a dataset (default: the course's pretrained ones, its 0.383770 check)"
EXAMPLES = """\
  nnlearn cost --lambda 1
  nnlearn cost --weights nnlearn-model.npz --data digits20 --lambda 1"""


def add_arguments(p):
    p.add_argument(
        "--weights", metavar="FILE", help=f"nnlearn model (.npz) or Octave weights (.mat) (default: {PRETRAINED_TEXT})"
    )
    p.add_argument("--data", metavar="NAME|FILE", default="digits20", help=f"{DATA_HELP} (default: digits20)")
    p.add_argument(
        "--lambda", dest="lam", type=float, default=0.0, metavar="L", help="regularisation strength (default: 0)"
    )


def course_cost(model, given, data, lam):
    """The course's stated cost for the course's weights on the embedded digits at lambda 0
    or 1; None for anything else, which the course says nothing about."""
    if data != "digits20" or lam not in (0, 1):
        return None
    if given is not None and not is_pretrained(model):
        return None
    return COURSE[f"cost{int(lam)}"]


def run(args):
    check_lambda(args.lam)
    model, name = load_weights_or_pretrained(args.weights)
    X, y = load_data(args.data)
    check_fit(model, X, y, name, args.data)
    J = float(model.cost(X, y, lam=args.lam))
    course = course_cost(model, args.weights, args.data, args.lam)
    result = {
        "cost": J,
        "lambda": args.lam,
        "weights": args.weights or PRETRAINED,
        "data": args.data,
        "m": len(y),
        "layer_sizes": list(model.layer_sizes),
        "activation": model.network.activation,
        "output": model.network.output,
        "course": course,
    }
    weights = args.weights or PRETRAINED_TEXT
    emit(
        args,
        result,
        [
            f"cost J = {J:.6f} at lambda {args.lam:g}" + ("" if course is None else f" (course: {course:.6f})"),
            f"weights {weights} ({architecture(model)}), data {args.data} ({len(y)} examples)",
        ],
    )
    return 0
