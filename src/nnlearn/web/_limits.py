"""What the server allows (:class:`Limits`) and the checks of a training request.

A local tool must not become a door: every request is bounded in what it may send and in
the work it may start. The defaults suit a laptop; a test or a benchmark passes its own.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any

from ..core import ACTIVATIONS, OUTPUTS
from ..errors import ParameterError
from ..training._settings import DEFAULTS, OPTIMIZERS, Options

__all__ = ["Limits", "DATASETS", "TRAIN_FIELDS", "train_options", "form_fields"]

#: The data sets a run may train on: the embedded 20x20 digits and scikit-learn's 8x8 ones.
DATASETS = ("digits20", "digits8")


@dataclass(frozen=True)
class Limits:
    """The bounds a server keeps to; each a positive number.

    Attributes
    ----------
    max_body_bytes : int
        A request body (JSON or an image), refused with 413 beyond it.
    max_image_pixels : int
        An image's width times height, checked before it is decoded (400 beyond it).
    max_hidden_units, max_hidden_layers : int
        The largest network a training request may ask for.
    max_iter : int
        Iterations (epochs for sgd and adam) of a run.
    max_run_seconds : float
        Wall time of a run: it stops after the iteration that passes it, keeping its model.
    max_event_streams : int
        Event streams open at once (429 beyond).
    max_connections : int
        Connections uvicorn serves at once (``nnlearn serve``; 503 beyond).
    train_threads : int
        BLAS threads a run may use: fewer than the cores keeps the server responsive.
    hidden_seconds : float
        Seconds between a run's pictures of its hidden units.
    kept_runs : int
        Finished runs whose events are kept for late readers.
    """

    max_body_bytes: int = 8 * 2**20
    max_image_pixels: int = 16_000_000
    max_hidden_units: int = 400
    max_hidden_layers: int = 3
    max_iter: int = 2000
    max_run_seconds: float = 300.0
    max_event_streams: int = 8
    max_connections: int = 64
    train_threads: int = 1
    hidden_seconds: float = 1.0
    kept_runs: int = 8

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            whole = field.type == "int"
            number = isinstance(value, numbers.Real) and not isinstance(value, bool)
            ok = number and math.isfinite(value) and float(value) > 0
            if not ok or (whole and value != int(value)):
                kind = "a positive integer" if whole else "a positive number"
                raise ParameterError(f"Limits.{field.name} must be {kind}, got {value!r}")


#: The fields of ``POST /api/train`` and their defaults (a field left out takes it).
TRAIN_FIELDS: dict[str, Any] = {
    "dataset": "digits20",
    "hidden": list(DEFAULTS.hidden_layer_sizes),
    "lambda": DEFAULTS.lam,
    "activation": DEFAULTS.activation,
    "output": DEFAULTS.output,
    "optimizer": DEFAULTS.optimizer,
    "max_iter": 100,
}


def _choice(body, name, choices):
    value = body[name]
    if not isinstance(value, str) or value not in choices:
        raise ParameterError(f"{name}: {value!r} is not one of {', '.join(choices)}")
    return value


def _integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _hidden(value, limits):
    if _integer(value):
        value = [value]
    if not isinstance(value, list) or not value or not all(_integer(h) and h >= 1 for h in value):
        raise ParameterError(f"hidden: {value!r} is not a list of hidden layer sizes (positive integers)")
    if len(value) > limits.max_hidden_layers:
        raise ParameterError(f"hidden: {len(value)} layers; this server trains {limits.max_hidden_layers} at most")
    if max(value) > limits.max_hidden_units:
        raise ParameterError(
            f"hidden: {max(value)} units in a layer; this server trains {limits.max_hidden_units} at most"
        )
    return tuple(value)


def _lambda(value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ParameterError(f"lambda: {value!r} is not a finite number >= 0")
    return float(value)


def _max_iter(value, limits):
    if not _integer(value) or value < 1:
        raise ParameterError(f"max_iter: {value!r} is not a positive integer")
    if value > limits.max_iter:
        raise ParameterError(f"max_iter: {value} iterations; this server runs {limits.max_iter} at most")
    return value


def train_options(body: Any, limits: Limits) -> tuple[str, Options]:
    """The data set and :class:`~nnlearn.training._settings.Options` of a training request's JSON body.

    Raises
    ------
    ParameterError
        Naming the field: not a JSON object, an unknown field, a value of the wrong kind
        or beyond ``limits``.
    """
    if not isinstance(body, dict):
        raise ParameterError("the body must be a JSON object of training settings")
    unknown = sorted(set(body) - set(TRAIN_FIELDS))
    if unknown:
        raise ParameterError(f"unknown field {unknown[0]!r}; the fields are {', '.join(TRAIN_FIELDS)}")
    body = {**TRAIN_FIELDS, **body}
    options = Options(
        hidden_layer_sizes=_hidden(body["hidden"], limits),
        activation=_choice(body, "activation", tuple(ACTIVATIONS)),
        output=_choice(body, "output", tuple(OUTPUTS)),
        lam=_lambda(body["lambda"]),
        optimizer=_choice(body, "optimizer", OPTIMIZERS),
        max_iter=_max_iter(body["max_iter"], limits),
    )
    return _choice(body, "dataset", DATASETS), options.checked()


def form_fields(limits: Limits) -> list[dict[str, Any]]:
    """The training form's fields as the page builds them (``GET /api/train/fields``): for
    each field its name, default, and its choices (a list of names) or bounds (``min``,
    ``max``; for ``hidden`` also ``max_layers``)."""
    return [
        {"name": "dataset", "default": TRAIN_FIELDS["dataset"], "choices": list(DATASETS)},
        {
            "name": "hidden",
            "default": TRAIN_FIELDS["hidden"],
            "min": 1,
            "max": limits.max_hidden_units,
            "max_layers": limits.max_hidden_layers,
        },
        {"name": "lambda", "default": TRAIN_FIELDS["lambda"], "min": 0},
        {"name": "activation", "default": TRAIN_FIELDS["activation"], "choices": list(ACTIVATIONS)},
        {"name": "output", "default": TRAIN_FIELDS["output"], "choices": list(OUTPUTS)},
        {"name": "optimizer", "default": TRAIN_FIELDS["optimizer"], "choices": list(OPTIMIZERS)},
        {"name": "max_iter", "default": TRAIN_FIELDS["max_iter"], "min": 1, "max": limits.max_iter},
    ]
