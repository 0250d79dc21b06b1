"""The model being served, and how it is swapped.

Everything a request needs of a model (its id, framing, image side, tiles) is made once
into a :class:`Served`, which never changes. ``app.state.served`` holds the current one:
a request reads it once and uses that object to its end; a finished training run puts a
new one there in one assignment, so a request in flight finishes on the old model.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from ..datasets._builtin import image_side
from ..datasets._images import model_framing
from ..errors import ShapeError
from ..model._model import Model
from ._render import TILE_GAP, tile_columns, tiles_png

__all__ = ["Served", "serve", "describe", "HISTORY_SHOWN"]

#: The entries of a model's history that ``GET /api/model`` shows.
HISTORY_SHOWN = (
    "data",
    "optimizer",
    "max_iter",
    "n_iter",
    "stop_reason",
    "seconds",
    "seed",
    "test_size",
    "split_seed",
    "train_accuracy",
    "test_accuracy",
    "stopped_by",
)


@dataclass(frozen=True, eq=False)
class Served:
    """A model as served: never changed once made.

    ``figures`` caches the SVG figures made of it (:mod:`nnlearn.web._figures`), under ``lock``.
    """

    model: Model
    id: str
    source: str
    framing: str
    side: int | None
    tiles: bytes | None
    figures: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _fingerprint(model: Model) -> str:
    digest = hashlib.sha256()
    for theta in model.thetas:
        digest.update(theta.tobytes())
    return digest.hexdigest()[:10]


def serve(model: Model, source: str, numbers: itertools.count) -> Served:
    """``model`` made ready to serve; its id counts the models served (``numbers``) and
    names its weights, so it changes with every swap.

    Raises
    ------
    ModelFileError
        The model records a framing this nnlearn does not know.
    """
    framing = model_framing(model.history, source)
    try:
        side: int | None = image_side(model.layer_sizes[0])
    except ShapeError:
        side = None
    # Tiles of the first hidden layer's units: a model without hidden layers has none.
    tiles = tiles_png(model.thetas[0], side) if side is not None and len(model.layer_sizes) > 2 else None
    return Served(model, f"{next(numbers)}-{_fingerprint(model)}", source, framing, side, tiles)


def describe(served: Served) -> dict[str, Any]:
    """The answer of ``GET /api/model``."""
    model = served.model
    history = {key: model.history[key] for key in HISTORY_SHOWN if key in model.history}
    if model.history.get("cost"):
        history["final_cost"] = model.history["cost"][-1]
    units = model.layer_sizes[1]
    tiles = None
    if served.tiles is not None:
        tiles = {
            "url": f"/api/model/tiles.png?model={served.id}",
            "units": units,
            "columns": tile_columns(units),
            "side": served.side,
            "gap": TILE_GAP,
        }
    return {
        "id": served.id,
        "layer_sizes": list(model.layer_sizes),
        "activation": model.network.activation,
        "output": model.network.output,
        "lambda": model.lam,
        "classes": model.classes.tolist(),
        "image_side": served.side,
        "framing": served.framing,
        "source": served.source,
        "history": history,
        "tiles": tiles,
    }
