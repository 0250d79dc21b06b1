"""What the server allows (:class:`Limits`) and the checks of a training request.

A local tool must not become a door: every request is bounded in what it may send and in
the work it may start. The defaults suit a laptop; a test or a benchmark passes its own.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ParameterError
from ..training._settings import DEFAULTS, SETTINGS, Options

__all__ = ["Limits", "DATASETS", "TRAIN_FIELDS", "train_options", "form_fields"]

#: The data sets a run may train on: the embedded 20x20 digits and scikit-learn's 8x8 ones.
DATASETS = ("digits20", "digits8")


@dataclass(frozen=True)
class Limits:
    """The bounds a server keeps to; each a positive number.

    Attributes
    ----------
    max_body_bytes : int
        A JSON request body, refused with 413 beyond it.
    max_image_bytes : int
        An image sent as it is (an ``image/*`` body): 20 MiB, which a 12-megapixel phone
        JPEG (3-8 MB) fits with room to spare; 413 beyond it.
    max_decoding : int
        Images decoded at once, in as many threads of the server's own; more wait their
        turn. Each may take up to :data:`nnlearn.datasets._images.MAX_DECODED_BYTES` (64
        MiB) decoded, so decoded pixels take at most this many times that (128 MiB with the
        defaults, besides the smaller working copies), however many arrive; measured, 8 at
        once raised the server's peak memory by 323 MiB.
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
    max_image_bytes: int = 20 * 2**20
    max_decoding: int = 2
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


#: The web form's own field: the data sets a run may train on (the embedded 20x20 digits
#: and scikit-learn's 8x8 ones).
DATASET_FIELD = "dataset"
#: The training settings the form offers (the declaration's ``web``), by their JSON key.
WEB_SETTINGS: dict[str, str] = {spec.web.key: name for name, spec in SETTINGS.items() if spec.web is not None}


def _web_default(name: str) -> Any:
    spec = SETTINGS[name]
    assert spec.web is not None
    value = spec.web.default if spec.web.default is not None else getattr(DEFAULTS, name)
    return list(value) if isinstance(value, tuple) else value


#: The fields of ``POST /api/train`` and their defaults (a field left out takes it).
TRAIN_FIELDS: dict[str, Any] = {
    DATASET_FIELD: DATASETS[0],
    **{key: _web_default(name) for key, name in WEB_SETTINGS.items()},
}


def _bound(name: str, key: str, value: Any, limits: Limits) -> None:
    """A server's own bound on a checked value (the declaration's ``web.limit``)."""
    limit = SETTINGS[name].web.limit  # type: ignore[union-attr]
    if limit == "max_hidden_units":
        if len(value) > limits.max_hidden_layers:
            raise ParameterError(f"{key}: {len(value)} layers; this server trains {limits.max_hidden_layers} at most")
        if max(value) > limits.max_hidden_units:
            raise ParameterError(
                f"{key}: {max(value)} units in a layer; this server trains {limits.max_hidden_units} at most"
            )
    elif limit == "max_iter" and value > limits.max_iter:
        raise ParameterError(f"{key}: {value} iterations; this server runs {limits.max_iter} at most")


def train_options(body: Any, limits: Limits) -> tuple[str, Options]:
    """The data set and :class:`~nnlearn.training.Options` of a training request's JSON body.

    Each field is checked by its setting's declaration, then against the server's limits.

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
    dataset = body[DATASET_FIELD]
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise ParameterError(f"{DATASET_FIELD}: {dataset!r} is not one of {', '.join(DATASETS)}")
    values = {}
    for key, name in WEB_SETTINGS.items():
        value = SETTINGS[name].check(body[key], key)
        _bound(name, key, value, limits)
        values[name] = value
    return dataset, Options(**values).checked()


def form_fields(limits: Limits) -> list[dict[str, Any]]:
    """The training form's fields as the page builds them (``GET /api/train/fields``): for
    each field its name, default, and its choices (a list of names) or bounds (``min``,
    ``max``; for ``hidden`` also ``max_layers``). The lists of kinds are read now: a kind
    registered at run time is offered."""
    fields_ = [{"name": DATASET_FIELD, "default": TRAIN_FIELDS[DATASET_FIELD], "choices": list(DATASETS)}]
    for key, name in WEB_SETTINGS.items():
        field_: dict[str, Any] = {"name": key, "default": TRAIN_FIELDS[key]}
        spec = SETTINGS[name]
        web = spec.web
        assert web is not None
        if spec.choices is not None:
            field_["choices"] = list(spec.choices())
        if web.minimum is not None:
            field_["min"] = web.minimum
        if web.limit is not None:
            field_["max"] = getattr(limits, web.limit)
        if web.limit == "max_hidden_units":
            field_["max_layers"] = limits.max_hidden_layers
        fields_.append(field_)
    return fields_
