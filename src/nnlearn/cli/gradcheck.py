"""``nnlearn gradcheck``: backpropagation against numerical gradients, as the course checks it."""

from __future__ import annotations

from ..core import Network
from ..settings import check_hidden, check_kinds, check_lambda
from .common import COURSE, add_kinds, emit

SUMMARY = "backpropagation against numerical gradients on the course's debug network"
EXAMPLES = """\
  nnlearn gradcheck
  nnlearn gradcheck --hidden 5 4 --lambda 3
  nnlearn gradcheck --activation tanh --output softmax"""

GRADCHECK_TOLERANCE = COURSE["gradcheck"]  # the course's criterion for a correct backpropagation


def add_arguments(p):
    p.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=[5],
        metavar="N",
        help="hidden layer sizes of the debug network, 3 inputs and 3 outputs (default: 5)",
    )
    add_kinds(p)
    p.add_argument(
        "--lambda", dest="lam", type=float, default=0.0, metavar="L", help="regularisation strength (default: 0)"
    )


def run(args):
    from ..gradcheck import check_gradients

    hidden = check_hidden(args.hidden)
    check_lambda(args.lam)
    network = Network((3, *hidden, 3), *check_kinds(args.activation, args.output))
    layer_sizes = network.layer_sizes
    difference, numgrad, grad = check_gradients(network, args.lam, return_columns=True)
    passed = difference < GRADCHECK_TOLERANCE
    result = {
        "layer_sizes": list(layer_sizes),
        "activation": network.activation,
        "output": network.output,
        "lambda": args.lam,
        "numerical": numgrad,
        "analytical": grad,
        "relative_difference": difference,
        "passed": bool(passed),
    }
    lines = [f"{'numerical':>12} {'analytical':>12}"]
    lines += [f"{a:>12.8f} {b:>12.8f}" for a, b in zip(numgrad, grad, strict=True)]
    lines += [
        "The two columns should be very similar (left: numerical gradient, right: backpropagation).",
        f"Debug network {network.describe()}, lambda {args.lam:g}; a correct backpropagation "
        f"gives a relative difference below {GRADCHECK_TOLERANCE:g}.",
        "",
        f"Relative Difference: {difference:.1e}",
    ]
    emit(args, result, lines)
    return 0 if passed else 1
