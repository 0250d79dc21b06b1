"""``nnlearn cost``: the regularised cost J of weights on a dataset (the course's check)."""

from __future__ import annotations

from ..datasets._builtin import load_data
from ..training._settings import check_setting
from ._common import (
    COURSE,
    DATA_HELP,
    MODEL_HELP,
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
  nnlearn cost
  nnlearn cost --lambda 1
  nnlearn cost --weights nnlearn-model.npz --data digits20 --lambda 1"""


def add_arguments(p):
    p.add_argument("--weights", metavar="FILE", help=f"{MODEL_HELP} (default: {PRETRAINED_TEXT})")
    p.add_argument("--data", metavar="NAME|FILE", default="digits20", help=f"{DATA_HELP} (default: digits20)")
    p.add_argument(
        "--lambda",
        dest="lam",
        type=float,
        default=None,
        metavar="L",
        help="regularisation strength (default: the course's two, 0 and 1)",
    )


def is_course_setting(model, given, data):
    """The course's weights on the embedded digits: the setting the course states figures for."""
    return data == "digits20" and (given is None or is_pretrained(model))


def course_cost(model, given, data, lam):
    """The course's stated cost in its setting at lambda 0 or 1; None for anything else,
    which the course says nothing about."""
    if not is_course_setting(model, given, data) or lam not in (0, 1):
        return None
    return COURSE[f"cost{int(lam)}"]


def run(args):
    lams = [0.0, 1.0] if args.lam is None else [check_setting("lam", args.lam, "--lambda")]
    model, name = load_weights_or_pretrained(args.weights)
    X, y = load_data(args.data)
    check_fit(model, X, y, name, args.data)
    costs = [(lam, float(model.cost(X, y, lam=lam)), course_cost(model, args.weights, args.data, lam)) for lam in lams]
    accuracy = model.score(X, y)
    course_accuracy = COURSE["pretrained_accuracy"] if is_course_setting(model, args.weights, args.data) else None
    J, course = costs[-1][1], costs[-1][2]
    result = {
        "cost": J,
        "lambda": costs[-1][0],
        "course": course,
        "costs": [{"lambda": lam, "cost": cost, "course": stated} for lam, cost, stated in costs],
        "accuracy": accuracy,
        "course_accuracy": course_accuracy,
        "weights": args.weights or PRETRAINED,
        "data": args.data,
        "m": len(y),
        "layer_sizes": list(model.layer_sizes),
        "activation": model.network.activation,
        "output": model.network.output,
    }
    weights = args.weights or PRETRAINED_TEXT
    lines = [
        f"cost J = {cost:.6f} at lambda {lam:g}" + ("" if stated is None else f" (course: {stated:.6f})")
        for lam, cost, stated in costs
    ]
    lines.append(
        f"accuracy {100 * accuracy:.2f}%"
        + ("" if course_accuracy is None else f" (course: ~{100 * course_accuracy:.1f}% on its own data)")
    )
    lines.append(f"weights {weights} ({architecture(model)}), data {args.data} ({len(y)} examples)")
    emit(args, result, lines)
    return 0
