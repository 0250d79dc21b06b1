"""A continuation: where a training run stands, enough for another run to go on from there.

One value serves every way of going on with a run: ``train(..., resume=...)``, the
states ``train(..., checkpoint=...)`` hands out after each iteration, a checkpoint file
(:meth:`Continuation.save`, :meth:`Continuation.load`, ``nnlearn train --resume``), and the
estimator's ``warm_start`` and ``partial_fit``. It holds the weights; the optimiser's state
(its memory, random state and counters, in one of the checkpoint layouts of
:mod:`nnlearn.training._checkpoints`), or none, to start an optimiser afresh from the
weights; and the exactness record of the run that made it (:mod:`nnlearn.training._exactness`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core import pack
from ._checkpoints import load_checkpoint, save_checkpoint
from ._exactness import EXACT

__all__ = ["Continuation"]


@dataclass(frozen=True)
class Continuation:
    """Where a training run stands.

    Attributes
    ----------
    x : ndarray, shape (p,), float64
        The weights, packed (:func:`nnlearn.core.pack`).
    state : dict or None
        The optimiser's state after its last iteration, as its checkpoints hold it
        (arrays, numbers and lists; ``history`` the cost after each iteration): going on
        from it reaches the weights of the uninterrupted run. None: only the weights,
        from which a new run starts its optimiser afresh (a warm start).
    exactness : dict
        The ``exact.*`` record of the run that made it: what a resumed run must find
        unchanged to be exact, and a note once a resume was not.
    """

    x: np.ndarray
    state: Mapping[str, Any] | None = None
    exactness: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_weights(cls, thetas: Sequence[np.ndarray]) -> Continuation:
        """Start a new run's optimiser afresh at these weights."""
        return cls(pack(thetas).astype(np.float64))

    @classmethod
    def from_state(cls, state: Mapping[str, Any], exactness: Mapping[str, Any] | None = None) -> Continuation:
        """Go on exactly from an optimiser's state (as a checkpoint holds it)."""
        return cls(np.asarray(state["x"], dtype=np.float64), dict(state), dict(exactness or {}))

    @property
    def n_iter(self) -> int:
        """The iterations the run had done (0 for weights alone)."""
        return 0 if self.state is None else len(self.state.get("history", ()))

    def save(self, path: str | os.PathLike, settings: Mapping[str, Any]) -> Path:
        """Write it as a checkpoint file, with the run's ``settings`` (JSON scalars and lists)
        beside its exactness record; replaces an older checkpoint atomically."""
        if self.state is None:
            raise ValueError("a continuation of weights alone has no optimiser state to checkpoint")
        return save_checkpoint(path, {**settings, **self.exactness}, dict(self.state))

    @classmethod
    def load(cls, path: str | os.PathLike) -> tuple[dict[str, Any], Continuation]:
        """A checkpoint file's settings (its exactness record left out) and its continuation."""
        settings, state = load_checkpoint(path)
        exactness = {key: value for key, value in settings.items() if key.startswith(EXACT)}
        plain = {key: value for key, value in settings.items() if not key.startswith(EXACT)}
        return plain, cls.from_state(state, exactness)
