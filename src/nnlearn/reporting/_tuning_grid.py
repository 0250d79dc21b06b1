"""The grid ``nnlearn tune`` searches: candidate settings, checked, and the course's own.

A grid maps each searched setting (lambda, hidden layer sizes, activation, output) to the
values to try; every value is checked by the setting's one check
(:func:`nnlearn.training._settings.check_setting`). The search itself is
:mod:`nnlearn.reporting._tuning`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ParameterError
from ..training._settings import DEFAULTS, check_setting

__all__ = ["DEFAULT_GRID", "COURSE_SETTINGS", "make_grid", "grid_values"]

#: The searched settings and their values when not overridden: lambda a decade either side
#: of the course's 1, the course's 25 hidden units and a wider layer, and the course's
#: sigmoid against relu units and a softmax output: 24 candidates, which 5-fold CV on
#: digits8's 1437 training digits scores in about a minute on 2 cores (docs/quality.md).
DEFAULT_GRID: dict[str, tuple] = {
    "lam": (0.1, 1.0, 10.0),
    "hidden_layer_sizes": ((25,), (100,)),
    "activation": ("sigmoid", "relu"),
    "output": ("sigmoid", "softmax"),
}
#: The course's settings, which :func:`nnlearn.reporting._tuning.nested_check` scores the
#: search's choice against.
COURSE_SETTINGS: dict[str, Any] = {
    "lam": DEFAULTS.lam,
    "hidden_layer_sizes": DEFAULTS.hidden_layer_sizes,
    "activation": DEFAULTS.activation,
    "output": DEFAULTS.output,
}


def make_grid(
    lam: Sequence[float] | None = None,
    hidden_layer_sizes: Sequence[int | Sequence[int]] | None = None,
    activation: Sequence[str] | None = None,
    output: Sequence[str] | None = None,
) -> dict[str, tuple]:
    """The search grid: :data:`DEFAULT_GRID` with the values given in place of its own.

    Every value is checked (:class:`ParameterError` naming it) and repeats are dropped.
    """
    given = {"lam": lam, "hidden_layer_sizes": hidden_layer_sizes, "activation": activation, "output": output}
    return {key: grid_values(key, DEFAULT_GRID[key] if values is None else values) for key, values in given.items()}


def grid_values(key: str, values: Sequence) -> tuple:
    """The values of one setting of the grid, checked, in order, without repeats."""
    checks: dict[str, Callable[[Any], Any]] = {
        "lam": lambda value: check_setting("lam", value),
        "hidden_layer_sizes": lambda value: check_setting("hidden_layer_sizes", value),
        "activation": _activation,
        "output": _output,
    }
    if key not in checks:
        raise ParameterError(f"the grid has no setting {key!r}; it searches {', '.join(checks)}")
    values = tuple(values)
    if not values:
        raise ParameterError(f"the grid needs at least one value of {key}")
    return tuple(dict.fromkeys(checks[key](v) for v in values))


def _activation(name: str) -> str:
    return check_setting("activation", name)


def _output(name: str) -> str:
    return check_setting("output", name)
