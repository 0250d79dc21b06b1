"""``nnlearn gradcheck``: backpropagation against numerical gradients, as the course checks it."""

from __future__ import annotations

from ..core import Network
from ..errors import ParameterError
from ..training._settings import DEFAULTS, check_setting
from ._common import COURSE, emit
from ._train_options import add_setting

SUMMARY = "backpropagation against numerical gradients on the course's debug network"
EXAMPLES = """\
  nnlearn gradcheck
  nnlearn gradcheck --hidden 5 4 --lambda 3
  nnlearn gradcheck --activation tanh --output softmax"""

GRADCHECK_TOLERANCE = COURSE["gradcheck"]  # the course's criterion for a correct backpropagation
# Central differences cost two evaluations per weight, so the check grows with the square
# of the weights: 20,000 weights take seconds, 200,000 would take many minutes. Larger
# networks are checked along random directions (nnlearn.core.gradcheck.check_directional).
MAX_WEIGHTS = 20_000


def add_arguments(p):
    p.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        default=[5],
        metavar="N",
        help="hidden layer sizes of the debug network, 3 inputs and 3 outputs (default: 5)",
    )
    add_setting(p, "activation", DEFAULTS.activation)
    add_setting(p, "output", DEFAULTS.output)
    p.add_argument(
        "--lambda", dest="lam", type=float, default=0.0, metavar="L", help="regularisation strength (default: 0)"
    )


def run(args):
    from ..core.gradcheck import check_gradients

    hidden = check_setting("hidden_layer_sizes", args.hidden, "--hidden")
    check_setting("lam", args.lam, "--lambda")
    kinds = (
        check_setting("activation", args.activation, "--activation"),
        check_setting("output", args.output, "--output"),
    )
    network = Network((3, *hidden, 3), *kinds)
    if network.n_weights > MAX_WEIGHTS:
        raise ParameterError(
            f"--hidden {' '.join(map(str, hidden))} makes a debug network of {network.n_weights:,} weights; the "
            f"check takes two cost evaluations per weight, so it is limited to {MAX_WEIGHTS:,} weights (a network "
            "of any size can be checked along random directions with nnlearn.core.gradcheck.check_directional)"
        )
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
