"""Pictures of images as matplotlib Figures: the data, their distortions, the hidden units.

Every function returns a :class:`matplotlib.figure.Figure` drawn on an Agg canvas and
touches no pyplot state: nothing is drawn on import, no display is needed, and a
figure is freed like any other object once it is no longer referenced. Save one with
:func:`save_figure`, or show it in a notebook by leaving it as a cell's value.

Images follow nnlearn's convention: a row of ``X`` is a square image of side ``s``
unrolled column-major, so ``x.reshape(s, s, order="F")`` is upright. The figures of
training (cost, confusion matrix) are :mod:`nnlearn.reporting._training_plots`'s.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.patches import Rectangle
from numpy.typing import ArrayLike

from ..datasets._builtin import image_side
from ..errors import ParameterError, ShapeError
from ..persist._atomic import atomic_write
from ..training._augment import Augment, distort, upright
from ._curves import figure as _figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..model._model import Model

__all__ = [
    "plot_digits",
    "plot_distortions",
    "plot_hidden_units",
    "save_figure",
    "montage",
]

_WRONG = "#e8322b"
_RIGHT = "#7fe07f"
_LABEL = "#ffd54f"
_GAP = "white"


def montage(images: np.ndarray, ncols: int, pad: int = 1) -> tuple[np.ma.MaskedArray, np.ndarray]:
    """Tile images into one array, as the course's ``displayData`` does.

    Parameters
    ----------
    images : ndarray, shape (k, s, s)
        Upright images.
    ncols : int
    pad : int
        Pixels between tiles and around them; masked, so they show the background.

    Returns
    -------
    grid : masked array, shape (nrows * (s + pad) + pad, ncols * (s + pad) + pad)
    origins : ndarray, shape (k, 2)
        (row, column) of each tile's top-left pixel in ``grid``.
    """
    k, s = len(images), images.shape[1]
    nrows = max(1, math.ceil(k / ncols))
    shape = (nrows * (s + pad) + pad, ncols * (s + pad) + pad)
    # Zeros under the mask: masked_all leaves memory uninitialised, which can be NaN.
    grid = np.ma.masked_array(np.zeros(shape), mask=np.ones(shape, dtype=bool))
    origins = pad + (s + pad) * np.stack([np.arange(k) // ncols, np.arange(k) % ncols], axis=1)
    for image, (r, c) in zip(images, origins):
        grid[r : r + s, c : c + s] = image
    return grid, origins


def _tile_axes(k, tile_inches, title_lines):
    """A figure with one bare axes for k tiles in a grid close to square."""
    ncols = max(1, math.ceil(math.sqrt(k)))
    nrows = max(1, math.ceil(k / ncols))
    width = min(10.0, max(4.5, ncols * tile_inches))
    height = width * nrows / ncols + 0.3 * title_lines
    fig = _figure(width, height)
    ax = fig.add_subplot()
    ax.set_axis_off()
    return fig, ax, ncols


def _show_montage(ax, images, ncols, **imshow_kw):
    grid, origins = montage(images, ncols)
    cmap = imshow_kw.pop("cmap")
    # The masked gaps take the background colour, so the tiles stand apart.
    cmap = colormaps[cmap].with_extremes(bad=_GAP)
    ax.imshow(grid, cmap=cmap, interpolation="nearest", origin="upper", **imshow_kw)
    return origins


def _pick(m, n, rng):
    """Indices of the examples to show: all when m <= n, else n at random."""
    if m <= n:
        return np.arange(m)
    # Not sorted: data sets often come ordered by class, and a grid of 0s, then 1s, ...
    # would hide how the digits vary.
    return np.random.default_rng(rng).choice(m, size=n, replace=False)


def _corner_text(ax, origin, text, color, fontsize, box=None):
    """Text in a tile's top-left corner, outlined (or on a ``box`` colour) to read on any pixel."""
    r, c = origin
    style = (
        dict(bbox=dict(facecolor=box, edgecolor="none", pad=1.0))
        if box
        else dict(path_effects=[patheffects.withStroke(linewidth=2, foreground="black")])
    )
    ax.text(c - 0.1, r - 0.1, text, color=color, fontsize=fontsize, ha="left", va="top", fontweight="bold", **style)


def plot_digits(
    X: ArrayLike,
    labels: ArrayLike | None = None,
    predictions: ArrayLike | None = None,
    n: int = 100,
    rng: int | np.random.Generator | None = None,
    side: int | None = None,
    title: str | None = None,
) -> Figure:
    """A grid of example images, like the course's ``displayData``, upright.

    Parameters
    ----------
    X : array-like, shape (m, side * side) or (side * side,)
        Images unrolled column-major.
    labels : array-like, shape (m,), optional
        True labels, written in each tile's top-left corner.
    predictions : array-like, shape (m,), optional
        Predicted labels. With ``labels`` too, a wrong prediction gets a red frame and
        reads ``predicted/true``; alone, predictions are written like labels.
    n : int
        Most examples to show; when ``X`` has more rows, ``n`` are picked at random.
    rng : None, int or numpy.random.Generator
        Seeds that pick (None: a fresh pick each call).
    side : int, optional
        Image side; by default sqrt(n_features).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    s = image_side(X.shape[1], side, "plot_digits")
    if int(n) < 1 or len(X) == 0:
        raise ParameterError(f"nothing to show: {len(X)} examples, n={n}")
    keep = _pick(len(X), int(n), rng)
    images = X[keep].reshape(len(keep), s, s, order="F")
    labels = None if labels is None else _aligned(labels, len(X), "labels")[keep]
    predictions = None if predictions is None else _aligned(predictions, len(X), "predictions")[keep]
    fig, ax, ncols = _tile_axes(len(keep), 0.8, 1 if title else 0)
    # One grey scale for the whole grid keeps the tiles comparable to each other.
    origins = _show_montage(ax, images, ncols, cmap="gray", vmin=min(X[keep].min(), 0.0), vmax=X[keep].max())
    fontsize = float(np.clip(fig.get_figwidth() / ncols * 11, 5, 10))
    _annotate_digits(ax, origins, s, labels, predictions, fontsize)
    if title:
        fig.suptitle(title)
    return fig


def _aligned(values, m, name):
    """``values`` as an array of one entry per image."""
    values = np.asarray(values).reshape(-1)
    if len(values) != m:
        raise ShapeError(f"{len(values)} {name} for {m} images")
    return values


def _annotate_digits(ax, origins, s, labels, predictions, fontsize):
    """Labels in the tiles' corners; with both labels and predictions, wrong ones framed."""
    judged = labels is not None and predictions is not None
    shown = predictions if predictions is not None else labels
    if shown is None:
        return
    for i, origin in enumerate(origins):
        if judged and predictions[i] != labels[i]:
            r, c = origin
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), s, s, fill=False, edgecolor=_WRONG, linewidth=2.5))
            _corner_text(ax, origin, f"{predictions[i]}/{labels[i]}", "white", fontsize, box=_WRONG)
        else:
            _corner_text(ax, origin, str(shown[i]), _RIGHT if judged else _LABEL, fontsize)
    if judged:
        n_wrong = int(np.sum(predictions != labels))
        if n_wrong == len(origins):
            subtitle = "red frame: predicted/true"
        elif n_wrong:
            subtitle = f"{n_wrong} of {len(origins)} wrong (red frame: predicted/true)"
        else:
            subtitle = f"all {len(origins)} right"
        ax.set_title(subtitle, fontsize=9, color=_WRONG if n_wrong else "black")


def plot_distortions(
    X: ArrayLike,
    copies: int = 5,
    n: int = 8,
    rng: int | np.random.Generator | None = None,
    settings: Augment | None = None,
    side: int | None = None,
) -> Figure:
    """Originals beside distorted copies of them (:func:`nnlearn.training._augment.distort`), upright.

    One row per original: the original in the first column, ``copies`` distortions after
    it. ``n`` originals are picked at random when ``X`` has more rows; ``rng`` seeds the
    pick and the distortions; ``settings`` sets their sizes (default: ``Augment()``'s).
    """
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    s = image_side(X.shape[1], side, "plot_distortions")
    if int(n) < 1 or int(copies) < 1 or len(X) == 0:
        raise ParameterError(f"nothing to show: {len(X)} examples, n={n}, copies={copies}")
    generator = np.random.default_rng(rng)
    originals = X[_pick(len(X), int(n), generator)]
    settings = settings or Augment()
    distorted = distort(originals, copies=int(copies), settings=settings, seed=generator, side=s)
    k, ncols = len(originals), int(copies) + 1
    # Row i of the grid: original i, then its copies (distort returns copy j of row i at j * k + i).
    rows = np.concatenate([originals[None], distorted.reshape(ncols - 1, k, -1)]).transpose(1, 0, 2)
    images = upright(rows.reshape(k * ncols, -1), s, settings.order)
    width = min(10.0, max(4.5, ncols * 0.8))
    fig = _figure(width, width * k / ncols + 0.3)
    ax = fig.add_subplot()
    ax.set_axis_off()
    _show_montage(ax, images, ncols, cmap="gray", vmin=min(X.min(), 0.0), vmax=X.max())
    ax.set_title(f"originals (left) and {copies} distorted copies of each", fontsize=9)
    return fig


def plot_hidden_units(model: Model) -> Figure:
    """What each unit of the first hidden layer looks for: its weights as an image.

    Each row of ``theta1[:, 1:]`` (the bias column left out) has one weight per input
    pixel; shown as an image of the input's shape, mid-grey is 0, white pulls the unit
    on and black off. Each tile has its own symmetric scale, +-max|w| of that unit,
    because the units' weights differ in size and one scale would blank the small ones.

    Parameters
    ----------
    model : nnlearn.Model
        Its inputs must be square images unrolled column-major.

    Returns
    -------
    matplotlib.figure.Figure
    """
    W = np.asarray(model.thetas[0][:, 1:], dtype=np.float64)
    s = image_side(W.shape[1], source="the model's hidden units")
    scale = np.abs(W).max(axis=1, keepdims=True)
    W = W / np.where(scale > 0, scale, 1.0)
    images = W.reshape(len(W), s, s, order="F")
    fig, ax, ncols = _tile_axes(len(W), 1.2, 1)
    origins = _show_montage(ax, images, ncols, cmap="gray", vmin=-1.0, vmax=1.0)
    if len(W) <= 64:
        fontsize = float(np.clip(fig.get_figwidth() / ncols * 8, 5, 9))
        for k, origin in enumerate(origins, start=1):
            _corner_text(ax, origin, str(k), _LABEL, fontsize)
    sizes = " - ".join(str(size) for size in model.layer_sizes)
    fig.suptitle(f"First hidden layer: {len(W)} units (network {sizes})", fontsize=11)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Save a figure atomically; the format follows the suffix (``.png``, ``.svg``, ``.pdf``, ...).

    Raises
    ------
    nnlearn.persist._atomic.OutputExistsError
        ``path`` exists and ``overwrite`` is false.
    ParameterError
        The suffix names no format matplotlib writes.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".") or "png"
    supported = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in supported:
        raise ParameterError(f"{path}: cannot write .{fmt} images; use one of .{', .'.join(sorted(supported))}")
    # A tight box keeps a title that is wider than a small grid from being cut off.
    return atomic_write(
        path, lambda f: fig.savefig(f, format=fmt, dpi=100, bbox_inches="tight", pad_inches=0.1), overwrite=overwrite
    )
