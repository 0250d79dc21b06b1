"""``nnlearn reproduce``: the course's notebook step by step, each result beside the course's."""

from __future__ import annotations

from ..datasets._builtin import load_data
from ..training._settings import check_setting
from ._common import (
    ACCURACY_MARGIN,
    COST_TOLERANCE,
    COURSE,
    PRETRAINED_ACCURACY_MARGIN,
    PRETRAINED_TEXT,
    check_fit,
    emit,
    load_weights_or_pretrained,
    percent,
)

SUMMARY = "run the course's notebook step by step and compare every result with the course's"
EXAMPLES = """\
  nnlearn reproduce
  nnlearn reproduce --data ex4data1.mat --weights ex4weights.mat"""

# The notebook's training run: its network, lambda, optimiser and seed (not DEFAULTS, which
# may move on; these are the course's).
COURSE_HIDDEN, COURSE_LAMBDA, COURSE_OPTIMIZER, COURSE_MAX_ITER = (25,), 1.0, "cg", 400


def add_arguments(p):
    p.add_argument(
        "--data", metavar="NAME|FILE", help="the course's ex4data1.mat, or any dataset (default: the embedded digits20)"
    )
    p.add_argument(
        "--weights", metavar="FILE", help=f"the course's ex4weights.mat, or any weights (default: {PRETRAINED_TEXT})"
    )
    p.add_argument(
        "--max-iter",
        type=int,
        default=COURSE_MAX_ITER,
        metavar="N",
        help=f"training iterations (default: {COURSE_MAX_ITER}, the course's)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _check(name, value, course, matched, tolerance, fmt):
    return {
        "step": name,
        "value": value,
        "course": course,
        "tolerance": tolerance,
        "matched": bool(matched),
        "format": fmt,
    }


def _reproduce_training(args, X, y):
    from ..training._train import train
    from ._monitor import Monitor

    with Monitor(args.max_iter, show=not (args.quiet or args.json)) as monitor:
        model = train(
            X,
            y,
            hidden_layer_sizes=COURSE_HIDDEN,
            lam=COURSE_LAMBDA,
            optimizer=COURSE_OPTIMIZER,
            max_iter=args.max_iter,
            seed=0,
            callback=monitor.callback,
        )
    if monitor.interrupted:
        raise KeyboardInterrupt
    return model


def run(args):
    """Exit status 0 when every step matches the course, 1 when any does not."""
    from ..core import sigmoid_gradient
    from ..core.gradcheck import check_gradients

    check_setting("max_iter", args.max_iter, "--max-iter")
    data = args.data or "digits20"
    # The weights are loaded and checked against the data before the (long) training run.
    model, name = load_weights_or_pretrained(args.weights)
    X, y = load_data(data)
    check_fit(model, X, y, name, data)
    checks = [_cost_check(model, X, y, lam, COURSE[f"cost{lam}"]) for lam in (0, 1)]
    accuracy = model.score(X, y)
    checks.append(
        _check(
            "pretrained accuracy",
            accuracy,
            COURSE["pretrained_accuracy"],
            abs(accuracy - COURSE["pretrained_accuracy"]) <= PRETRAINED_ACCURACY_MARGIN,
            f"+-{100 * PRETRAINED_ACCURACY_MARGIN:g} pts",
            "%",
        )
    )
    g0 = float(sigmoid_gradient(0.0))
    checks.append(
        _check(
            "sigmoid gradient at 0",
            g0,
            COURSE["sigmoid_gradient"],
            abs(g0 - COURSE["sigmoid_gradient"]) < 1e-12,
            "+-1e-12",
            ".6f",
        )
    )
    diff = check_gradients((3, 5, 3), lam=1.0)  # lambda 1, as the notebook checks it
    checks.append(
        _check(
            "gradient check, relative difference",
            diff,
            COURSE["gradcheck"],
            diff < COURSE["gradcheck"],
            "< 1e-9",
            ".1e",
        )
    )
    trained = _reproduce_training(args, X, y)
    accuracy = trained.score(X, y)
    checks.append(
        _check(
            f"training accuracy after {trained.history['n_iter']} CG iterations",
            accuracy,
            COURSE["accuracy"],
            accuracy >= COURSE["accuracy"] - ACCURACY_MARGIN,
            f">= {100 * (COURSE['accuracy'] - ACCURACY_MARGIN):.1f}%",
            "%",
        )
    )
    result = {
        "data": _data_note(args),
        "weights": _weights_note(args),
        "checks": checks,
        "all_matched": all(c["matched"] for c in checks),
    }
    emit(args, result, _reproduce_text(result))
    return 0 if result["all_matched"] else 1


def _cost_check(model, X, y, lam, course):
    J = float(model.cost(X, y, lam=lam))
    return _check(f"cost at lambda {lam}", J, course, abs(J - course) <= COST_TOLERANCE, f"+-{COST_TOLERANCE:g}", ".6f")


def _data_note(args):
    if args.data:
        return f"{args.data}"
    return "digits20, the embedded 5000 MNIST digits at 20x20 (not the course's ex4data1.mat)"


def _weights_note(args):
    if args.weights:
        return f"{args.weights} (given)"
    return (
        f"{PRETRAINED_TEXT}: the costs and the pretrained accuracy are theirs; "
        "the training accuracy is that of the network trained here"
    )


def _reproduce_text(result):
    lines = [f"data     {result['data']}", f"weights  {result['weights']}", ""]
    lines.append(f"{'step':<42} {'nnlearn':>10} {'course':>10}  {'match if':<10} matched")
    for c in result["checks"]:
        value, course = (
            (percent(c["value"]), percent(c["course"]))
            if c["format"] == "%"
            else (format(c["value"], c["format"]), format(c["course"], c["format"]))
        )
        if c["step"].startswith("gradient check"):
            course = f"< {course}"
        elif c["step"] == "pretrained accuracy":
            course = f"~{100 * c['course']:.1f}%"  # the course states about 97.5%
        matched = "yes" if c["matched"] else "NO"
        lines.append(f"{c['step']:<42} {value:>10} {course:>10}  {c['tolerance']:<10} {matched}")
    lines.append("")
    lines.append(f"{sum(c['matched'] for c in result['checks'])} of {len(result['checks'])} steps match the course")
    return lines
