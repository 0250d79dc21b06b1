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

from dataclasses import replace
from typing import Any

from ..errors import ParameterError
from ._augment import Augment
from ._settings import DEFAULTS, SETTINGS, Options

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
        learning_rate=0.001,
        augment=Augment(copies=4),
    ),
}


def preset_options(name: str) -> Options:
    """The options of the preset ``name`` (:class:`ParameterError` naming the known ones)."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ParameterError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def options_with(preset: str | None = None, **settings: Any) -> Options:
    """The options of ``preset`` (default: the course's) with ``settings`` (by their names in
    :data:`~nnlearn.training._settings.SETTINGS`) replacing its own; not yet checked."""
    base = DEFAULTS if preset is None else preset_options(preset)
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ParameterError(f"unknown training settings {', '.join(unknown)}; the settings are {', '.join(SETTINGS)}")
    return replace(base, **settings)
