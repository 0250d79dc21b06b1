"""Augmentation: more training digits made by distorting the ones there are.

Simard, Steinkraus and Platt (2003, "Best practices for convolutional neural networks
applied to visual document analysis") stretched MNIST's 60,000 digits with small affine
distortions (rotation, scaling, shearing, shifting) and elastic ones (a random
displacement field, smoothed with a Gaussian). :func:`distort` makes such copies of image
rows; :class:`Augment` holds how many and how large, and is what
``nnlearn.train(..., augment=...)`` takes.

Images follow nnlearn's convention (``nnlearn.datasets._builtin``): a row of ``X`` is a square
image of side ``s`` unrolled column-major, so ``x.reshape(s, s, order="F")`` is upright;
every dataset nnlearn loads (digits20, digits8, MNIST) is laid out so. ``order="C"`` takes
rows unrolled row-major instead (scikit-learn's ``load_digits().data``). The distortions
act on the upright image, whichever the layout.

Every image gets its own transform. The elastic fields are drawn for :data:`CHUNK` images at
a time, to bound their memory; the sampling coordinates and the bilinear resampling (so the
values stay between the originals') are computed in NumPy for :data:`BLOCK` images at a time,
whose arrays stay in the cache. The resampling is :func:`scipy.ndimage.map_coordinates`'s
(``order=1, mode="grid-constant"``) operation for operation, so its values are the same bit
for bit (``tests/test_augment.py`` checks it), without a call per image.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import gaussian_filter

from ..errors import ParameterError

__all__ = [
    "Augment",
    "check_augment",
    "distort",
    "Affine",
    "warp",
    "augmented",
    "simard_elastic",
    "augment_record",
    "upright",
    "unrolled",
    "ORDERS",
    "CHUNK",
    "BLOCK",
]

#: The layouts of a row: "F" column-major (nnlearn's, the course's), "C" row-major.
ORDERS = ("F", "C")
#: Images whose elastic fields are drawn and smoothed at once: 2 * 8 * CHUNK * s * s bytes
#: (26 MB for 20x20 images).
CHUNK = 4096
#: Images whose coordinates and interpolation are computed at once: their arrays (3.2 kB an
#: image each, for 20x20 pixels) stay in the cache. Fastest from 128 to 256 (docs/augment.md).
BLOCK = 192
# Simard et al.'s elastic distortion of 29x29 digits: alpha 34, sigma 4 pixels.
_SIMARD_SIDE, _SIMARD_ALPHA, _SIMARD_SIGMA = 29, 34.0, 4.0


@dataclass(frozen=True, kw_only=True)
class Augment:
    """How many distorted copies of each training image to make, and how distorted.

    Each copy draws its own transform, uniformly within these bounds. A size of 0 turns
    that distortion off. The default is affine distortions only; the elastic field is
    off until ``elastic_alpha`` is given (:func:`simard_elastic` gives Simard et al.'s,
    scaled to a side). Sizes in pixels that default to None follow the image's side:
    ``shift`` is a tenth of it (2 pixels of a 20x20 digit), ``elastic_sigma`` Simard et
    al.'s 4 pixels of a 29x29 digit scaled to it.

    Attributes
    ----------
    copies : int
        Distorted copies of each image (>= 1); the originals are kept besides.
    rotation : float
        Largest rotation, degrees either way.
    scale : float
        Largest change of size, a fraction: the factor lies in [1 - scale, 1 + scale].
    shear : float
        Largest horizontal shear: a row moves sideways by up to ``shear`` times its
        distance from the centre.
    shift : float or None
        Largest shift, pixels, each of right and down.
    elastic_alpha : float
        The elastic field's size: uniform random displacements in [-1, 1], smoothed by a
        Gaussian of ``elastic_sigma`` pixels, times ``elastic_alpha`` pixels (0: off).
    elastic_sigma : float or None
        The field's smoothness, pixels.
    side : int or None
        The images' side; None: the square root of the number of features.
    order : {"F", "C"}
        How a row unrolls its image: column-major (nnlearn's) or row-major.
    """

    copies: int = 4
    rotation: float = 10.0
    scale: float = 0.1
    shear: float = 0.15
    shift: float | None = None
    elastic_alpha: float = 0.0
    elastic_sigma: float | None = None
    side: int | None = None
    order: str = "F"

    def checked(self) -> Augment:
        """These settings checked (:class:`ParameterError` naming the bad one)."""
        if not _is_int(self.copies, 1):
            raise ParameterError(f"augment copies must be an integer >= 1, got {self.copies!r}")
        for name in ("rotation", "scale", "shear", "shift", "elastic_alpha", "elastic_sigma"):
            value = getattr(self, name)
            optional = name in ("shift", "elastic_sigma")
            if (value is None and optional) or _is_size(value):
                continue
            raise ParameterError(f"augment {name} must be a finite number >= 0, got {value!r}")
        if not self.scale < 1:
            raise ParameterError(f"augment scale must be below 1 (a factor 1 - scale > 0), got {self.scale!r}")
        if self.side is not None and not _is_int(self.side, 1):
            raise ParameterError(f"augment side must be an integer >= 1, got {self.side!r}")
        if self.order not in ORDERS:
            raise ParameterError(f"augment order must be 'F' (column-major) or 'C' (row-major), got {self.order!r}")
        return replace(self, copies=int(self.copies))

    def sizes(self, side: int) -> dict[str, float]:
        """The distortion sizes for images of ``side`` pixels, the defaults worked out."""
        return {
            "rotation": float(self.rotation),
            "scale": float(self.scale),
            "shear": float(self.shear),
            "shift": 0.1 * side if self.shift is None else float(self.shift),
            "elastic_alpha": float(self.elastic_alpha),
            "elastic_sigma": simard_elastic(side)[1] if self.elastic_sigma is None else float(self.elastic_sigma),
        }


def simard_elastic(side: int) -> tuple[float, float]:
    """Simard et al.'s elastic field (alpha 34, sigma 4 pixels on 29x29 digits) scaled to
    images of ``side`` pixels: (alpha, sigma), about (16.2, 2.76) for 20x20 digits.

    Sigma, the field's smoothness, goes with the side; so does the displacement, about
    alpha / sigma pixels, so alpha goes with the side squared.
    """
    ratio = side / _SIMARD_SIDE
    return _SIMARD_ALPHA * ratio**2, _SIMARD_SIGMA * ratio


def augment_record(settings: Augment, n_features: int) -> dict[str, Any]:
    """What a run distorted, as flat JSON scalars (a model's history, a checkpoint's
    settings): ``augment`` (the copies) and ``augment_<size>``, with the sizes that follow
    the side worked out for images of ``n_features`` pixels."""
    sizes = settings.sizes(_side(n_features, settings.side))
    record: dict[str, Any] = {"augment": settings.copies}
    record.update({f"augment_{name}": value for name, value in sizes.items()})
    record["augment_order"] = settings.order
    return record


def check_augment(augment: None | int | Augment) -> Augment | None:
    """``train``'s ``augment``: None or 0 (off), a number of copies, or an :class:`Augment`."""
    if augment is None:
        return None
    if isinstance(augment, Augment):
        return augment.checked()
    if _is_int(augment, 0):
        return None if augment == 0 else Augment(copies=int(augment))
    raise ParameterError(
        f"augment must be a number of distorted copies >= 0 or an nnlearn.training._augment.Augment, got {augment!r}"
    )


def distort(
    X: ArrayLike,
    *,
    copies: int = 1,
    settings: Augment | None = None,
    seed: int | np.random.Generator | None = None,
    **sizes: Any,
) -> np.ndarray:
    """Distorted copies of image rows, each with its own random transform.

    Parameters
    ----------
    X : array-like, shape (m, n)
        Images of side s = sqrt(n) (or ``side``), one per row, in ``order``.
    copies : int
        Copies of each row.
    settings : Augment, optional
        The distortions' sizes, side and order (default: :class:`Augment`'s); keyword
        arguments (``rotation=``, ``shift=``, ``order=``, ...) replace single ones.
    seed : int, Generator or None
        The draws: the same seed gives the same copies; a Generator is advanced.

    Returns
    -------
    ndarray, shape (copies * m, n), X's dtype (float64 for integers)
        Row ``j * m + i`` is copy j of row i, in X's layout, clipped to the range of X's
        values.
    """
    settings = replace(settings or Augment(), copies=copies, **sizes).checked()
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ParameterError(f"distort needs a 2-D array of one image per row, got shape {X.shape}")
    dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float64)
    side = _side(X.shape[1], settings.side)
    images = upright(X, side, settings.order)
    sizes = settings.sizes(side)
    rng = np.random.default_rng(seed)
    low, high = float(X.min()), float(X.max())
    # The background the distortions bring in from beyond the edge: what the originals'
    # borders mostly hold (0 for digits, whatever the data's scaling).
    background = float(np.median(np.concatenate([images[:, [0, -1], :].ravel(), images[:, :, [0, -1]].ravel()])))
    m = X.shape[0]
    out = np.empty((settings.copies * m, side, side), dtype=dtype)
    # The transforms are drawn for all copies first and the elastic fields chunk by chunk:
    # a Generator's uniform doubles come one per 64-bit draw, so the chunks do not change them.
    count = settings.copies * m
    draws = _draw_affine(rng, count, sizes)
    for start in range(0, count, CHUNK):
        stop = min(start + CHUNK, count)
        rows = np.arange(start, stop) % m
        field = _elastic_field(rng, stop - start, side, sizes["elastic_alpha"], sizes["elastic_sigma"])
        params = {k: v[start:stop] for k, v in draws.items()}
        _warp(images, rows, params, field, background, out[start:stop])
    np.clip(out, low, high, out=out)
    return unrolled(out, settings.order)


@dataclass(frozen=True, kw_only=True)
class Affine:
    """One affine transform of upright images, about their centre: what :func:`warp` applies.

    Each attribute is a number, or one per image; the defaults leave an image as it is.

    Attributes
    ----------
    rotation : float or array-like
        Degrees anticlockwise.
    scale : float or array-like
        The factor of size.
    shear : float or array-like
        A row ``d`` pixels below the centre moves ``shear * d`` pixels right.
    right, down : float or array-like
        Pixels moved, after the rest.
    """

    rotation: ArrayLike = 0.0
    scale: ArrayLike = 1.0
    shear: ArrayLike = 0.0
    right: ArrayLike = 0.0
    down: ArrayLike = 0.0


def warp(
    X: ArrayLike,
    transform: Affine,
    *,
    side: int | None = None,
    order: str = "F",
    background: float = 0.0,
) -> np.ndarray:
    """Each image row transformed as given: what :func:`distort` does with its random draws.

    The upright image is rotated by ``transform.rotation`` degrees anticlockwise, scaled by
    ``transform.scale``, sheared by ``transform.shear`` about its centre, then moved
    ``transform.right`` and ``transform.down`` pixels (:class:`Affine`). Pixels from beyond
    the edge are ``background``.

    Returns
    -------
    ndarray, shape (m, n), X's layout, float64 (or X's float dtype)
    """
    X = np.asarray(X)
    if order not in ORDERS:
        raise ParameterError(f"order must be 'F' (column-major) or 'C' (row-major), got {order!r}")
    side = _side(X.shape[1], side)
    m = X.shape[0]

    def per_row(value):
        return np.broadcast_to(np.asarray(value, dtype=np.float64), (m,))

    params = {
        "rotation": np.radians(per_row(transform.rotation)),
        "scale": per_row(transform.scale),
        "shear": per_row(transform.shear),
        "shift": np.stack([per_row(transform.down), per_row(transform.right)], 1),
    }
    images = upright(X, side, order)
    dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float64)
    out = np.empty((m, side, side), dtype=dtype)
    return unrolled(_warp(images, np.arange(m), params, None, background, out), order)


def augmented(
    X: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    settings: Augment,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The originals followed by ``settings.copies`` distorted copies, with their labels and weights.

    ``y`` may be labels or one-hot rows: each copy takes its original's row of ``y`` and
    its weight.
    """
    copies = distort(X, copies=settings.copies, settings=settings, seed=rng)
    reps = settings.copies + 1
    X_all = np.concatenate([X, copies.astype(X.dtype, copy=False)])
    y_all = np.concatenate([y] * reps)
    weights = None if sample_weight is None else np.concatenate([sample_weight] * reps)
    return X_all, y_all, weights


def upright(X: np.ndarray, side: int, order: str = "F") -> np.ndarray:
    """Rows of ``X`` as upright images, shape (m, side, side) (a view where it can be)."""
    stack = X.reshape(X.shape[0], side, side)
    return stack.transpose(0, 2, 1) if order == "F" else stack


def unrolled(images: np.ndarray, order: str = "F") -> np.ndarray:
    """Upright images, shape (m, s, s), as rows in ``order``: the inverse of :func:`upright`."""
    m, side = images.shape[0], images.shape[1]
    stack = images.transpose(0, 2, 1) if order == "F" else images
    return np.ascontiguousarray(stack).reshape(m, side * side)


def _draw_affine(rng, count, sizes):
    """Each copy's rotation (radians), scale, shear and (down, right) shift."""
    return {
        "rotation": np.radians(rng.uniform(-sizes["rotation"], sizes["rotation"], count)),
        "scale": 1 + rng.uniform(-sizes["scale"], sizes["scale"], count),
        "shear": rng.uniform(-sizes["shear"], sizes["shear"], count),
        "shift": rng.uniform(-sizes["shift"], sizes["shift"], (count, 2)),
    }


def _elastic_field(rng, count, side, alpha, sigma):
    """Displacements (count, 2, side, side) in pixels, or None when the field is off."""
    if alpha == 0:
        return None
    noise = rng.uniform(-1.0, 1.0, (count, 2, side, side))
    if sigma > 0:
        # Simard et al. smooth with the field taken as zero beyond the edge.
        noise = gaussian_filter(noise, sigma=(0, 0, sigma, sigma), mode="constant")
    return alpha * noise


def _warp(images, rows, params, field, background, out):
    """``images[rows]`` (upright, (k, s, s)) each transformed by its parameters (see
    :func:`warp`), written into ``out`` (k, s, s) and returned; :data:`BLOCK` at a time.
    """
    k, side = out.shape[0], out.shape[1]
    inverse = _inverse(params)
    # Each block's images inside a border of 2 background pixels, in one buffer whose
    # border is written once: every tap _bilinear reads lies in it.
    padded = np.full((min(k, BLOCK), side + 4, side + 4), background)
    for start in range(0, k, BLOCK):
        stop = min(start + BLOCK, k)
        block = padded[: stop - start]
        block[:, 2:-2, 2:-2] = images[rows[start:stop]]
        part = None if field is None else field[start:stop]
        out[start:stop] = _bilinear(block, _sources(inverse[start:stop], params["shift"][start:stop], part, side))
    return out


def _inverse(params):
    """A^-1 (k, 2, 2) for each image's A = rotation @ shear @ scale, in (row, column) coordinates."""
    theta, scale, shear = params["rotation"], params["scale"], params["shear"]
    cos, sin = np.cos(theta), np.sin(theta)
    # Rotation [[cos, -sin], [sin, cos]] turns the upright image anticlockwise (rows run
    # down); shear [[1, 0], [shear, 1]]; scale * I. The inverse of their product:
    inverse = np.empty((theta.shape[0], 2, 2))
    inverse[:, 0, 0], inverse[:, 0, 1] = cos, sin
    inverse[:, 1, 0], inverse[:, 1, 1] = -shear * cos - sin, -shear * sin + cos
    inverse /= scale[:, None, None]
    return inverse


def _sources(inverse, shift, field, side):
    """The input coordinates (k, 2, s, s), (row, column), each output pixel samples: an
    output pixel p (row, column from the centre) takes the input at
    A^-1 (p + field(p) - shift) + centre, ``inverse`` (k, 2, 2), ``shift`` (k, 2) (down,
    right), ``field`` (k, 2, s, s) or None.
    """
    centre = (side - 1) / 2
    grid = np.mgrid[0:side, 0:side].astype(np.float64) - centre  # (2, s, s)
    points = grid[None] - shift[:, :, None, None]
    if field is not None:
        points += field
    return np.einsum("kij,kjab->kiab", inverse, points) + centre


def _bilinear(padded, source):
    """Images (k, s + 4, s + 4), a border of 2 background pixels around each, sampled
    bilinearly at ``source`` (k, 2, s, s), coordinates in the unpadded image; (k, s, s).

    What ``map_coordinates(image, source[i], order=1, mode="grid-constant", cval=background)``
    gives for each image, bit for bit: the same operations in the same order. Along an axis
    the taps are floor(x) and floor(x) + 1, weighted 1 - (x - floor(x)) and 1 minus that;
    a tap beyond the edge reads the background; the value is
    ((0 + v00 w0 u0) + v01 w0 u1) + v10 w1 u0) + v11 w1 u1, v_ij the tap (row i, column j),
    w the rows' weights, u the columns'.
    """
    k, width = padded.shape[0], padded.shape[1]
    side = width - 4
    row, col = source[:, 0], source[:, 1]
    low_row, low_col = np.floor(row), np.floor(col)
    w0 = 1.0 - (row - low_row)
    w1 = 1.0 - w0
    u0 = 1.0 - (col - low_col)
    u1 = 1.0 - u0
    # A first tap below -2 or above side - 1 leaves both taps beyond the edge: moved to -2 or
    # side, they read the border instead. Flat indices, exact in float64, into padded.
    np.clip(low_row, -2.0, side, out=low_row)
    np.clip(low_col, -2.0, side, out=low_col)
    low_row *= width
    low_row += low_col
    low_row += (np.arange(k, dtype=np.float64) * (width * width) + (2 * width + 2))[:, None, None]
    tap = low_row.astype(np.intp)
    flat = padded.ravel()
    value = np.take(flat, tap)
    value *= w0
    value *= u0
    value += 0.0  # map_coordinates' sum starts at +0.0: a first term of -0.0 becomes +0.0
    for step, w, u in ((1, w0, u1), (width - 1, w1, u0), (1, w1, u1)):
        tap += step
        term = np.take(flat, tap)
        term *= w
        term *= u
        value += term
    return value


def _side(n_features, side):
    root = math.isqrt(n_features) if side is None else side
    if not _is_int(root, 1) or root * root != n_features:
        given = "" if side is None else f" of side {side}"
        raise ParameterError(
            f"augmentation distorts square images: {n_features} features are not a square image{given} "
            "(turn augmentation off for data that are not images)"
        )
    return int(root)


def _is_int(value, low):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


def _is_size(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
