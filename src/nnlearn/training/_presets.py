"""Named sets of training settings: the course's, and the best this network learns the digits with.

``nnlearn.train(X, y, preset="best")`` and ``nnlearn train --preset best`` start from a
preset's :class:`~nnlearn.training._settings.Options`; settings given besides it override its own.

* ``"course"``: the course's settings, :data:`nnlearn.training._settings.DEFAULTS` (what training
  uses without a preset).
* ``"best"``: the settings chosen by cross-validation on the 4000 training digits of the
  embedded digits' 80/20 split, within a training budget of 3 minutes on 2 cores
  (``docs/quality.md`` holds the measurement that chose them).
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from ..errors import ParameterError
from ._augment import Augment
from ._settings import DEFAULTS, STOPPING, MiniBatch, Options

__all__ = ["PRESETS", "preset_options", "options_with"]

#: The presets by name.
PRESETS: dict[str, Options] = {
    "course": DEFAULTS,
    "best": Options(
        hidden_layer_sizes=(300,),
        activation="relu",
        output="softmax",
        lam=3.0,
        optimizer="adam",
        max_iter=120,
        epsilon_init="auto",
        dtype="float32",
        minibatch=MiniBatch(learning_rate=0.001),
        augment=Augment(copies=4),
    ),
}

# train's keywords that are MiniBatch's own fields rather than Options'.
_MINI_BATCH_KEYWORDS = ("batch_size", "learning_rate")


def preset_options(name: str) -> Options:
    """The options of the preset ``name`` (:class:`ParameterError` naming the known ones)."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ParameterError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def options_with(preset: str | None = None, **settings: Any) -> Options:
    """The options of ``preset`` (default: the course's) with ``settings`` replacing its own.

    ``settings`` are :func:`nnlearn.train`'s keyword names: Options' fields, and
    ``batch_size`` and ``learning_rate`` for its :class:`~nnlearn.training._settings.MiniBatch`.
    """
    base = DEFAULTS if preset is None else preset_options(preset)
    known = {field.name for field in fields(Options)} - {"minibatch"}
    unknown = sorted(set(settings) - known - set(_MINI_BATCH_KEYWORDS))
    if unknown:
        raise ParameterError(f"unknown training settings {', '.join(unknown)}")
    mini = {name: settings.pop(name) for name in _MINI_BATCH_KEYWORDS if name in settings}
    # A stopping setting given here is Options' own; the MiniBatch copy follows it, so
    # that the two never disagree (settings.Options.checked).
    stopping = {name: settings[name] for name in STOPPING if name in settings}
    minibatch: MiniBatch = replace(base.minibatch, **mini, **stopping)
    return replace(base, minibatch=minibatch, **settings)
