"""What a prediction shows: the class probabilities, the input as the network sees it,
the first hidden layer's activations, and the hidden units' weights as tiles.

Images follow nnlearn's convention: an input row is a square image unrolled column-major;
what goes to a browser is row-major and upright, as a canvas reads it.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from ..core import ACTIVATIONS, forward
from ..errors import DataError
from ..model._model import Model

__all__ = ["prediction", "display", "brightness", "tiles_png", "TILE_GAP"]

#: Pixels between two tiles of :func:`tiles_png`, and around them.
TILE_GAP = 1


def display(x: np.ndarray, side: int | None) -> list[float] | None:
    """The input as a picture to show: upright, row-major, clipped to [0, 1] (the bicubic
    resampling of the "mnist" framing overshoots a little); None when it is no image."""
    if side is None:
        return None
    return np.clip(x.reshape(side, side, order="F"), 0.0, 1.0).ravel().tolist()


def brightness(a: np.ndarray, activation: str) -> np.ndarray:
    """Hidden activations on a 0-1 scale for showing, by the ``display`` range of the kind
    ``activation`` (any key of :data:`nnlearn.core.ACTIVATIONS`): (low, high) maps onto
    0-1; None (an unbounded kind) shows each unit relative to the layer's most active one."""
    shown = ACTIVATIONS[activation].display
    if shown is not None:
        low, high = shown
        return np.clip((a - low) / (high - low), 0.0, 1.0)
    top = float(a.max()) if a.size else 0.0
    return np.clip(a / top, 0.0, 1.0) if top > 0 else np.zeros_like(a)


def prediction(model: Model, x: np.ndarray, side: int | None) -> dict[str, Any]:
    """The answer of ``POST /api/predict`` for one input row ``x`` (less the model's id).

    Raises
    ------
    DataError
        The model's outputs are not finite for this input (huge input values).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        proba = model.predict_proba(x[None])[0]
        activations = forward(model.thetas, np.asarray(x[None], dtype=model.dtype), network=model.network)
    if not np.all(np.isfinite(proba)):
        raise DataError("the network's outputs are not finite for this input (are its values far too large?)")
    hidden = activations[1][0] if len(activations) > 2 else np.zeros(0)
    best = int(np.argmax(proba))
    return {
        "prediction": model.classes[best].item(),
        "probabilities": proba.astype(float).tolist(),
        "classes": model.classes.tolist(),
        "input": display(x, side),
        "image_side": side,
        "hidden": np.nan_to_num(hidden.astype(float)).tolist(),
        "hidden_brightness": brightness(hidden.astype(float), model.network.activation).tolist(),
    }


def tile_columns(units: int) -> int:
    """Columns of the tile grid: as square as it gets."""
    return max(1, math.ceil(math.sqrt(units)))


def tiles_png(theta1: np.ndarray, side: int) -> bytes:
    """The first layer's units as one grayscale PNG: unit k's weights (the bias left out)
    as a ``side`` x ``side`` tile, mid-grey 0, each on its own symmetric scale (as
    :func:`nnlearn.reporting._plots.plot_hidden_units` draws them); tile k at row ``k // columns``,
    column ``k % columns`` (:func:`tile_columns`), :data:`TILE_GAP` black pixels apart."""
    from PIL import Image

    W = np.asarray(theta1[:, 1:], dtype=np.float64)
    scale = np.abs(W).max(axis=1, keepdims=True)
    W = 0.5 + 0.5 * W / np.where(scale > 0, scale, 1.0)
    units, columns = len(W), tile_columns(len(W))
    rows = math.ceil(units / columns)
    step = side + TILE_GAP
    sheet = np.zeros((rows * step + TILE_GAP, columns * step + TILE_GAP))
    for k, w in enumerate(W):
        top, left = TILE_GAP + (k // columns) * step, TILE_GAP + (k % columns) * step
        sheet[top : top + side, left : left + side] = w.reshape(side, side, order="F")
    buffer = io.BytesIO()
    Image.fromarray(np.round(255 * sheet).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
