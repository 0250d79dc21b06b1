"""Image files of handwritten digits as network input, made the way the training data were.

The embedded digits (:func:`nnlearn.datasets.load_digits20`) are MNIST digits: the ink's
bounding box scaled to fit a 20x20 area (keeping its aspect ratio), placed in a 28x28
frame so that its centre of mass sits at the frame's centre, bright ink on a dark
background, then resampled to 20x20 by :func:`nnlearn.datasets.resample_digits` and
unrolled column-major. :func:`image_to_input` rebuilds that 28x28 image from any
photograph or drawing of a digit and applies the same resampling, so a model sees a drawn
digit as it saw its training digits.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from .datasets import image_side, resample_digits
from .errors import DataError

__all__ = ["IMAGE_SUFFIXES", "is_image_path", "read_grayscale", "digit_frame", "image_to_input"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

FRAME = 28  # MNIST's frame ...
BOX = 20  # ... and the area the digit's bounding box is scaled to fit
INK_THRESHOLD = 0.1  # fraction of full contrast above which a pixel counts as ink


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an image file (by its suffix)."""
    return Path(str(path)).suffix.lower() in IMAGE_SUFFIXES


def read_grayscale(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as grayscale floats in [0, 1] (0 black, 1 white).

    Transparent pixels are laid over white, so a dark digit drawn on a transparent
    canvas reads as dark on light.

    Returns
    -------
    image : ndarray, shape (rows, cols), float64
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            opened.load()
            image: Image.Image = opened
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable image ({type(exc).__name__})") from None
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit and float images: Pillow's conversion to "L" would clip at 255, so scale
        # by the image's own range instead.
        pixels = np.asarray(image, dtype=np.float64)
        low, high = float(pixels.min()), float(pixels.max())
        return (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def _bright_on_dark(image):
    """Ink at 1 and background at 0, whichever polarity the picture has.

    The background is the median of the border pixels: a digit rarely covers the
    border, so this tells dark-on-light from light-on-dark even for thick strokes.
    """
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    background = float(np.median(border))
    ink = image - background if background < 0.5 else background - image
    contrast = ink.max()
    if contrast <= 0:
        return None
    return np.clip(ink / contrast, 0.0, 1.0)


def _fit_box(ink):
    """Crop to the ink's bounding box and scale it to fit BOX x BOX, aspect kept."""
    from PIL import Image

    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = BOX / max(crop.shape)
    height = max(1, min(BOX, round(crop.shape[0] * scale)))
    width = max(1, min(BOX, round(crop.shape[1] * scale)))
    # Lanczos on a float image anti-aliases when shrinking, as MNIST's own scaling did.
    resized = Image.fromarray(crop.astype(np.float32), mode="F").resize((width, height), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)


def _centre_by_mass(box):
    """Place ``box`` in a FRAME x FRAME image with its centre of mass at the centre."""
    from scipy.ndimage import center_of_mass

    frame = np.zeros((FRAME, FRAME))
    cy, cx = center_of_mass(box)
    # MNIST's digits sit with their centre of mass at index (14, 14), to the rounding of
    # an integer shift (measured on the embedded digits: 13.5-14.5), not at 13.5.
    middle = FRAME / 2
    top = int(np.clip(round(middle - cy), 0, FRAME - box.shape[0]))
    left = int(np.clip(round(middle - cx), 0, FRAME - box.shape[1]))
    frame[top : top + box.shape[0], left : left + box.shape[1]] = box
    return frame


def digit_frame(image: ArrayLike) -> np.ndarray | None:
    """An MNIST-style 28x28 digit from a grayscale picture of one digit.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Grayscale in [0, 1], either polarity.

    Returns
    -------
    frame : ndarray, shape (28, 28), or None if the picture is blank
        Bright ink on black, values in [0, 1], bounding box fitted into 20x20 and
        centred by centre of mass.
    """
    ink = _bright_on_dark(np.asarray(image, dtype=np.float64))
    if ink is None:
        return None
    return _centre_by_mass(_fit_box(ink))


def image_to_input(path: str | os.PathLike, n_inputs: int = 400) -> np.ndarray:
    """One image file as one row of network input.

    The picture is turned into an MNIST-style 28x28 digit (:func:`digit_frame`) and
    resampled to the model's side by :func:`nnlearn.datasets.resample_digits`, the step
    that made the embedded digits; like them the result is unrolled column-major and may
    overshoot [0, 1] slightly where the bicubic spline rings.

    Parameters
    ----------
    path : str or Path
    n_inputs : int
        The model's input count; its square root is the image side.

    Returns
    -------
    x : ndarray, shape (n_inputs,)
    """
    side = image_side(n_inputs, source=str(path))
    frame = digit_frame(read_grayscale(path))
    if frame is None:
        raise DataError(f"{path}: the image is blank (one colour); no digit to read")
    return resample_digits(frame[None], side)[0]
