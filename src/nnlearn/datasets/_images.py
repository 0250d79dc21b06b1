"""Image files of handwritten digits as network input, made the way the training data were.

A model sees a drawn or photographed digit as it saw its training digits only if the
picture is framed as they were. Two framings (:data:`FRAMINGS`) cover nnlearn's data:

* ``"mnist"``: the embedded digits (:func:`nnlearn.datasets._builtin.load_digits20`) are MNIST
  digits: the ink's bounding box scaled to fit a 20x20 area (keeping its aspect ratio),
  placed in a 28x28 frame so that its centre of mass sits at the frame's centre, bright
  ink on a dark background, then resampled to 20x20 by
  :func:`nnlearn.datasets._builtin.resample_digits` and unrolled column-major. :func:`digit_frame`
  rebuilds that 28x28 image from any picture of a digit and :func:`image_to_input`
  applies the same resampling.
* ``"fill"``: scikit-learn's 8x8 digits (:func:`nnlearn.datasets._builtin.load_digits8`, UCI's
  optdigits) are 32x32 bitmaps whose ink's bounding box fills the frame, counted in 4x4
  blocks: in all 1797 the ink touches the top and bottom rows, the width (aspect kept)
  is mostly 6 of 8 columns, centred, and 98% have a block at full ink.
  :func:`fill_frame` does the same at any side.

A model records its framing in ``history["framing"]`` (:func:`model_framing`).
:func:`image_bytes_to_input` prepares an image's bytes (an upload, a canvas's PNG) by the
very steps :func:`image_to_input` applies to a file.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import DataError, ModelFileError, ParameterError
from ..persist._reading import open_regular
from ._builtin import DATASET_FRAMING, image_side
from ._mnist import resample_digits

__all__ = [
    "FRAMINGS",
    "IMAGE_SUFFIXES",
    "ImageWarning",
    "is_image_path",
    "read_grayscale",
    "decode_grayscale",
    "digit_frame",
    "fill_frame",
    "model_framing",
    "image_to_input",
    "image_bytes_to_input",
]

#: How a dataset's digits sit in their images, so that a drawn or photographed digit is
#: prepared the same way: "mnist", MNIST's digit scaled into a 20x20 box inside a 28x28
#: frame (the embedded digits20, the course's data); "fill", the digit filling its frame
#: (scikit-learn's 8x8 digits).
FRAMINGS = ("mnist", "fill")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: The formats Pillow may read them as (its JPEG reader also gives a phone's MPO photos):
#: only pixel formats, so that a file named .png holding PostScript never reaches Ghostscript.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "DIB", "GIF", "TIFF", "WEBP")

FRAME = 28  # MNIST's frame ...
BOX = 20  # ... and the area the digit's bounding box is scaled to fit
INK_THRESHOLD = 0.1  # fraction of full contrast above which a pixel counts as ink
FILL_OVERSAMPLE = 4  # optdigits counted its 32x32 bitmaps in 4x4 blocks to make 8x8

#: The largest image file read (bytes): a photo of a digit is a few MB.
MAX_IMAGE_BYTES = 50 * 2**20
#: The most pixels an image may have, checked before it is decoded: a compressed file
#: of a few KB can claim 10000x10000 pixels and decode to gigabytes.
MAX_PIXELS = 40_000_000
#: The most memory one image may take decoded (pixels times Pillow's bytes per pixel:
#: 4 for RGB and RGBA, 1 for grayscale), checked before it is decoded: a 16-megapixel
#: RGBA picture fits; a JPEG is decoded at a reduced scale first when that fits instead.
MAX_DECODED_BYTES = 64 * 2**20
#: The longest side an image is worked on at: a larger one is first reduced (a JPEG while
#: it is decoded, others by averaging blocks of pixels). A digit needs far less: it ends
#: as a 20x20 box, and a phone photo's pen stroke stays several pixels wide.
WORK_SIDE = 1024


class ImageWarning(UserWarning):
    """An image was read, with a caveat the user should hear (only its first frame, ...)."""


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an image file (by its suffix)."""
    return Path(str(path)).suffix.lower() in IMAGE_SUFFIXES


def read_grayscale(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as grayscale floats in [0, 1] (0 black, 1 white).

    * The EXIF orientation (phone photos) is applied, so the digit is read upright.
    * Where the alpha channel varies and the border is transparent (a canvas export),
      the alpha is the ink, whatever its colour: it comes back dark on white. Otherwise
      transparent pixels are laid over white and the luminance is read.
    * An animation or multi-page file gives its first frame, with an :class:`ImageWarning`.
    * 16-bit and float images are scaled by their own range.

    Raises
    ------
    DataError
        Not a regular file (a FIFO, a device), over :data:`MAX_IMAGE_BYTES` or
        :data:`MAX_PIXELS`, not a readable image, or float pixels that are NaN or infinite.

    Returns
    -------
    image : ndarray, shape (rows, cols), float64
    """
    suffix = Path(str(path)).suffix.lstrip(".").upper()
    with open_regular(path, DataError, f"{suffix} image" if suffix else "picture", MAX_IMAGE_BYTES) as file:
        data = file.read(MAX_IMAGE_BYTES + 1)
    # The file's bytes go the way an upload's do (decode_grayscale): one reading of both.
    gray, notes = _decode(data, path, MAX_PIXELS)
    for note in notes:
        warnings.warn(f"{path}: {note}", ImageWarning, stacklevel=2)
    return gray


def decode_grayscale(
    data: bytes, source: str = "image", max_pixels: int = MAX_PIXELS, notes: list[str] | None = None
) -> np.ndarray:
    """An image's bytes (an upload, a canvas's PNG) as grayscale, read as :func:`read_grayscale` reads a file.

    ``source`` names the image in messages; ``max_pixels`` lowers the pixel cap (a web
    server's, say). What :func:`read_grayscale` says as an :class:`ImageWarning` is
    appended to ``notes`` when it is given (a server's threads cannot share the warnings
    filters), else warned. :class:`DataError` for more than :data:`MAX_IMAGE_BYTES` bytes
    or ``max_pixels`` pixels, or bytes that are not a readable image.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise DataError(f"{source}: {len(data):,} bytes is more than an image can hold ({MAX_IMAGE_BYTES:,} at most)")
    gray, found = _decode(data, source, min(max_pixels, MAX_PIXELS))
    if notes is not None:
        notes.extend(found)
        return gray
    for note in found:
        warnings.warn(f"{source}: {note}", ImageWarning, stacklevel=2)
    return gray


def _decode(data, source, max_pixels):
    """Grayscale of an image's bytes and the notes the reader should hear."""
    notes: list[str] = []
    with warnings.catch_warnings():
        # Pillow's own warnings (a large image, palette transparency, odd EXIF) are about
        # its internals; the cap below is nnlearn's, and what matters is said in `notes`.
        warnings.simplefilter("ignore")
        image = _open(io.BytesIO(data), source, notes, max_pixels)
        gray = _gray(image, source)
    return gray, notes


def _open(stream, path, notes, max_pixels):
    """The decoded first frame of an image, upright; the pixel cap checked first."""
    from PIL import Image, ImageOps

    try:
        with Image.open(stream, formats=IMAGE_FORMATS) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise DataError(
                    f"{path}: {width}x{height} pixels is more than an image of a digit needs "
                    f"({max_pixels / 1e6:g} megapixels at most); refused"
                )
            if opened.format in ("JPEG", "MPO") and max(width, height) > 2 * WORK_SIDE:
                # Decoded at 1/2, 1/4 or 1/8 of its size: the smallest whose longest side is
                # still WORK_SIDE / 2 or more (Pillow's draft keeps at least the size asked),
                # so a JPEG is worked on at WORK_SIDE / 2 to WORK_SIDE pixels, as others are.
                scale = 2 * max(width, height) / WORK_SIDE
                opened.draft(opened.mode, (math.ceil(width / scale), math.ceil(height / scale)))
            decoded = _decoded_bytes(opened)
            if decoded > MAX_DECODED_BYTES:
                size = f"{opened.size[0]}x{opened.size[1]} {opened.mode}"
                raise DataError(
                    f"{path}: {size} pixels would take {decoded / 2**20:.0f} MiB decoded, more than an "
                    f"image of a digit may ({MAX_DECODED_BYTES / 2**20:.0f} MiB); refused"
                )
            # A phone's MPO photo holds its picture first and a preview or depth map after:
            # not worth a word. An animation or a multi-page file is.
            if getattr(opened, "is_animated", False) and opened.format != "MPO":
                notes.append(f"has {opened.n_frames} frames (an animation or pages); only the first is read")
                opened.seek(0)
            opened.load()
            image = _reduced(opened)
    except DataError:
        raise
    except Image.DecompressionBombError:
        raise DataError(f"{path}: more than {max_pixels / 1e6:g} megapixels; refused") from None
    except Exception as exc:  # Pillow's format plugins raise many unrelated types for a damaged file
        raise DataError(f"{path}: not a readable image ({type(exc).__name__})") from None
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:  # a damaged EXIF block: the pixels themselves are fine
        notes.append("its EXIF orientation cannot be read; the image is used as stored")
        return image
    return image if upright is None else upright


def _decoded_bytes(image) -> int:
    """What ``image`` takes decoded: Pillow keeps 1 byte a pixel for "1", "L" and "P", 2
    for 16-bit, 4 for the rest (RGB is stored as 4 bytes a pixel)."""
    per_pixel = 1 if image.mode in ("1", "L", "P") else 2 if image.mode.startswith("I;16") else 4
    return image.size[0] * image.size[1] * per_pixel


def _reduced(image):
    """``image`` with its longest side at most about 2 x :data:`WORK_SIDE`, by averaging
    blocks of pixels (Pillow's ``reduce``), so that no float array of its full size is made."""
    factor = max(image.size) // WORK_SIDE
    if factor < 2 or image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F", "La", "RGBa"):
        return image
    return image.reduce(factor)


def _gray(image, path):
    """Grayscale in [0, 1] of a decoded image; see :func:`read_grayscale`."""
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit and float images: Pillow's conversion to "L" would clip at 255, so scale
        # by the image's own range instead.
        pixels = np.asarray(image, dtype=np.float64)
        if not np.all(np.isfinite(pixels)):
            raise DataError(f"{path}: the image has NaN or infinite pixel values")
        low, high = float(pixels.min()), float(pixels.max())
        return (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba, dtype=np.float64)[..., 3] / 255.0
        # A transparent canvas: the ink is where it is opaque, whatever its colour (white
        # ink over transparent black pixels would vanish laid over white). An opaque
        # picture with a few transparent pixels (rounded corners) is read by luminance.
        if alpha.max() > alpha.min() and np.median(_border(alpha)) < 0.5:
            return 1.0 - alpha
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def _border(image):
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def _bright_on_dark(image):
    """Ink at 1 and background at 0, whichever polarity the picture has, and whatever the
    lighting.

    The polarity is the border's: a digit rarely covers the border, so the median of the
    border pixels tells dark-on-light from light-on-dark even for thick strokes. Light ink
    on a dark ground (a canvas) is taken as it is, less the border's level, and dark ink on
    an even page (the border within 2% of one level: a scan, a drawing program's picture)
    as what it lacks of that level: as they were always read. For dark ink on an unevenly
    lit page (a phone's photo), the page's brightness is estimated everywhere
    (:func:`_background`) and the ink is what the picture lacks of it, by ratio (light falls
    on paper and ink alike, so a gradient of light leaves the ratio alone). What is left
    of the paper's grain is cut at a floor measured on the border (:func:`_noise_floor`),
    and specks far smaller than the digit's strokes are dropped (:func:`_specks_dropped`).
    """
    edge = _border(image)
    border = float(np.median(edge))
    low, high = np.percentile(edge, [5, 95])
    if border < 0.5:  # light ink on a dark ground: a canvas, MNIST's own digits
        ink = image - border
    elif high - low <= 0.02:  # an even page
        ink = border - image
    else:
        ink = 1.0 - image / np.maximum(_background(image), 1e-3)
    np.clip(ink, 0.0, None, out=ink)
    contrast = ink.max()
    if contrast <= 0:
        return None
    ink /= contrast
    floor = _noise_floor(_border(ink))
    if floor > 0:
        ink = np.clip((ink - floor) / (1.0 - floor), 0.0, 1.0)
    return _specks_dropped(ink)


#: The background is estimated in blocks of about 1/BACKGROUND_BLOCKS of the longer side.
BACKGROUND_BLOCKS = 12


def _background(image):
    """The page without its digit: in blocks, a high percentile of the pixels, blocks taken
    mostly by ink given their neighbours' value (a median over 3x3 blocks), then enlarged
    smoothly to the picture's size; one level when the blocks' differ by 2% or less."""
    from scipy.ndimage import median_filter, zoom

    rows, cols = image.shape
    block = max(4, max(rows, cols) // BACKGROUND_BLOCKS)
    n_rows, n_cols = -(-rows // block), -(-cols // block)
    padded = np.pad(image, ((0, n_rows * block - rows), (0, n_cols * block - cols)), mode="edge")
    blocks = padded.reshape(n_rows, block, n_cols, block).transpose(0, 2, 1, 3).reshape(n_rows, n_cols, -1)
    levels = np.percentile(blocks, 90, axis=2)
    if min(n_rows, n_cols) >= 3:
        levels = median_filter(levels, size=3, mode="nearest")
    if np.ptp(levels) <= 0.02:
        return np.full_like(image, np.median(levels))
    enlarged = zoom(levels, (n_rows * block / n_rows, n_cols * block / n_cols), order=1, mode="nearest", grid_mode=True)
    return enlarged[:rows, :cols]


def _noise_floor(edge):
    """The ink level that paper grain reaches, measured on the picture's border (``edge``,
    where a digit rarely is): its median plus three standard deviations; 0 for a clean picture."""
    return float(min(0.5, np.median(edge) + 3 * np.std(edge)))


def _specks_dropped(ink):
    """``ink`` without the connected pieces far smaller than its largest (dust, grain, a
    fleck of the page), which would widen the digit's bounding box."""
    from scipy.ndimage import label

    pieces, count = label(ink > INK_THRESHOLD)
    if count <= 1:
        return ink
    sizes = np.bincount(pieces.ravel())[1:]
    # Small against the largest piece, and against the picture: a 28x28 digit keeps all of its pieces.
    speck = min(0.05 * sizes.max(), (max(ink.shape) / 100) ** 2)
    small = np.flatnonzero(sizes < speck) + 1
    if small.size:
        ink = ink.copy()
        ink[np.isin(pieces, small)] = 0.0
    return ink


def _fit_box(ink, box):
    """Crop to the ink's bounding box and scale it to fit box x box, aspect kept."""
    from PIL import Image

    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = box / max(crop.shape)
    height = max(1, min(box, round(crop.shape[0] * scale)))
    width = max(1, min(box, round(crop.shape[1] * scale)))
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
    """An MNIST-style 28x28 digit from a grayscale picture of one digit ("mnist" framing).

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
    box = _fit_box(ink, BOX)
    # A speck of ink in a large picture can average away when shrunk: nothing to centre.
    return _centre_by_mass(box) if box.max() > 0 else None


def fill_frame(image: ArrayLike, side: int) -> np.ndarray | None:
    """A digit filling a ``side`` x ``side`` image, as scikit-learn's 8x8 digits ("fill").

    The ink's bounding box is scaled so that its longer side fills a frame
    :data:`FILL_OVERSAMPLE` times the side (32x32 for 8x8, optdigits' bitmaps), aspect
    kept and no margin, centred by the box; the frame is then averaged in blocks, as
    optdigits counted its bitmaps' pixels in 4x4 blocks, and scaled so that the fullest
    block is 1, as it is in 98% of those digits.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
        Grayscale in [0, 1], either polarity.
    side : int

    Returns
    -------
    frame : ndarray, shape (side, side), or None if the picture is blank
        Bright ink on black, values in [0, 1], upright.
    """
    ink = _bright_on_dark(np.asarray(image, dtype=np.float64))
    if ink is None:
        return None
    big = side * FILL_OVERSAMPLE
    box = _fit_box(ink, big)
    frame = np.zeros((big, big))
    top, left = (big - box.shape[0]) // 2, (big - box.shape[1]) // 2
    frame[top : top + box.shape[0], left : left + box.shape[1]] = box
    blocks = frame.reshape(side, FILL_OVERSAMPLE, side, FILL_OVERSAMPLE).mean(axis=(1, 3))
    return blocks / blocks.max() if blocks.max() > 0 else None


def model_framing(history: Mapping[str, Any], source: str = "model") -> str:
    """The framing a model's images need: how its training digits were framed.

    ``history["framing"]`` when the model recorded it; else the framing of the built-in
    dataset named by ``history["data"]`` (``digits8``: "fill"); else "mnist", the
    course's digits, which is also what weights from Octave were trained on.

    Raises
    ------
    ModelFileError
        The recorded framing is not one of :data:`FRAMINGS` (a newer nnlearn's model).
    """
    framing = history.get("framing")
    if framing is None:
        data = history.get("data")
        framing = DATASET_FRAMING.get(data, "mnist") if isinstance(data, str) else "mnist"
    if framing not in FRAMINGS:
        raise ModelFileError(
            f"{source}: the model's images are framed {framing!r}, which this nnlearn does not know "
            f"({', '.join(FRAMINGS)}); a newer nnlearn may read it"
        )
    return framing


def image_to_input(path: str | os.PathLike, n_inputs: int = 400, framing: str = "mnist") -> np.ndarray:
    """One image file as one row of network input.

    With ``framing="mnist"`` the picture is turned into an MNIST-style 28x28 digit
    (:func:`digit_frame`) and resampled to the model's side by
    :func:`nnlearn.datasets._builtin.resample_digits`, the step that made the embedded digits; like
    them the result may overshoot [0, 1] slightly where the bicubic spline rings. With
    ``framing="fill"`` the digit fills the model's side (:func:`fill_frame`). Either way the
    image is unrolled column-major.

    Parameters
    ----------
    path : str or Path
    n_inputs : int
        The model's input count; its square root is the image side.
    framing : {"mnist", "fill"}
        How the model's training digits were framed (:func:`model_framing`).

    Returns
    -------
    x : ndarray, shape (n_inputs,)
    """
    side = _input_side(n_inputs, framing, str(path))
    return _as_input(read_grayscale(path), side, framing, str(path))


def image_bytes_to_input(
    data: bytes,
    n_inputs: int = 400,
    framing: str = "mnist",
    source: str = "image",
    max_pixels: int = MAX_PIXELS,
    notes: list[str] | None = None,
) -> np.ndarray:
    """An image's bytes (an upload, a canvas's PNG) as one row of network input.

    The same preparation as :func:`image_to_input` gives the same picture read from a
    file (both go through :func:`_as_input`); ``source`` names it in messages,
    ``max_pixels`` may lower the pixel cap and ``notes`` collects what would be warned
    (see :func:`decode_grayscale`).
    """
    side = _input_side(n_inputs, framing, source)
    return _as_input(decode_grayscale(data, source, max_pixels, notes), side, framing, source)


def _input_side(n_inputs, framing, source):
    if framing not in FRAMINGS:
        raise ParameterError(f"unknown framing {framing!r}; use {' or '.join(FRAMINGS)}")
    return image_side(n_inputs, source=source)


def _as_input(gray, side, framing, source):
    """A grayscale picture framed as the model's digits were, unrolled column-major."""
    frame = fill_frame(gray, side) if framing == "fill" else digit_frame(gray)
    if frame is None:
        raise DataError(f"{source}: the image is blank (one colour); no digit to read")
    if framing == "fill":
        return frame.reshape(-1, order="F")
    return resample_digits(frame[None], side)[0]
