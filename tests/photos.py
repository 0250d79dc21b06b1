"""Phone-like photos of handwritten digits, made from the embedded digits' held-out fifth.

Each photo is a 4000x3000 (12-megapixel) JPEG of a digit written in dark ink on paper:
paper of uneven brightness and grain, lit by a gradient of up to 60 grey levels across the
page, the digit somewhere near the middle at some size and a slight slant, blurred a little
as a phone's lens and JPEG would. The digits come from the test fifth of the split that
``nnlearn train`` makes (``split(X, y, 0.2, 0)``), never from the training digits, so that
reading them right says something about the preprocessing, not about memory.

    python -m tests.photos DIR [N]   # writes N photos (default 20) to DIR, named <index>-<label>.jpg

Seeded: the same N give the same files.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from nnlearn import load_digits20
from nnlearn.datasets._builtin import split

WIDTH, HEIGHT = 4000, 3000
#: The lighting gradients across the page, in grey levels, the photos cycle through.
GRADIENTS = (0, 15, 30, 45, 60)
SEED = 2026


def held_out_digits(n):
    """The first ``n`` digits of the held-out fifth, as 20x20 images (ink 1) and their labels."""
    X, y = load_digits20()
    _, X_test, _, y_test = split(X, y, 0.2, 0)
    images = X_test[:n].reshape(-1, 20, 20).transpose(0, 2, 1)  # unrolled column-major
    return np.clip(images, 0, 1), y_test[:n]


def _smooth_field(rng, shape, cells, amplitude):
    """Low-frequency noise of ``amplitude`` grey levels: random cells, bilinearly enlarged."""
    coarse = rng.uniform(-amplitude, amplitude, (cells, cells * shape[1] // shape[0])).astype(np.float32)
    return np.array(Image.fromarray(coarse, mode="F").resize(shape[::-1], Image.Resampling.BILINEAR))


def photo(digit, gradient, rng):
    """One photo (JPEG bytes) of ``digit`` (20x20, ink 1) under a lighting ``gradient``."""
    # Paper: a level, blotches and the light's gradient, made at a tenth of the size and
    # enlarged (the gradient is linear, so bilinear enlarging keeps it), then grain (a tile
    # of it, added in place).
    small = (HEIGHT // 10, WIDTH // 10)
    coarse = _smooth_field(rng, small, 12, 6) + np.float32(rng.uniform(200, 225))
    angle = rng.uniform(0, 2 * np.pi)
    rows = np.linspace(-0.5, 0.5, small[0], dtype=np.float32)[:, None] * np.float32(HEIGHT / WIDTH)
    cols = np.linspace(-0.5, 0.5, small[1], dtype=np.float32)[None, :]
    across = np.cos(angle) * cols + np.sin(angle) * rows
    coarse += np.float32(gradient / max(float(np.ptp(across)), 1e-6)) * across
    paper = np.array(Image.fromarray(coarse, mode="F").resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR))
    grain = rng.normal(0, 4, (500, 500)).astype(np.float32)
    paper.reshape(HEIGHT // 500, 500, WIDTH // 500, 500)[...] += grain[None, :, None, :]
    # The digit: a soft pen stroke, 900-1500 pixels tall, slanted, near the middle, a
    # little blurred (the lens), written over the paper where it is.
    side = int(rng.uniform(900, 1500))
    stroke = Image.fromarray((255 * digit).astype(np.uint8)).resize((side, side), Image.Resampling.BICUBIC)
    stroke = stroke.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BILINEAR, expand=True)
    stroke = stroke.filter(ImageFilter.GaussianBlur(3))
    alpha = np.asarray(stroke, dtype=np.float32) / 255
    h, w = alpha.shape
    top = int(HEIGHT / 2 - h / 2 + rng.uniform(-0.1, 0.1) * HEIGHT)
    left = int(WIDTH / 2 - w / 2 + rng.uniform(-0.1, 0.1) * WIDTH)
    region = paper[top : top + h, left : left + w]
    region *= 1 - alpha
    region += np.float32(rng.uniform(25, 70)) * alpha
    # A warm paper tint, the phone's JPEG.
    np.clip(paper, 0, 255, out=paper)
    gray = Image.fromarray(paper.astype(np.uint8))
    image = Image.merge("RGB", (gray, gray.point(lambda v: v * 0.97), gray.point(lambda v: v * 0.9)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def photos(n=20, seed=SEED):
    """``n`` photos: a list of (JPEG bytes, label), gradients cycling through :data:`GRADIENTS`."""
    rng = np.random.default_rng(seed)
    digits, labels = held_out_digits(n)
    return [
        (photo(digit, GRADIENTS[i % len(GRADIENTS)], rng), int(label))
        for i, (digit, label) in enumerate(zip(digits, labels))
    ]


def write(folder, n=20):
    """The photos as files ``<index>-<label>.jpg`` in ``folder``; their paths and labels."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (data, label) in enumerate(photos(n)):
        path = folder / f"{i:02d}-{label}.jpg"
        path.write_bytes(data)
        written.append((path, label))
    return written


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m tests.photos DIR [N]")
    for path, label in write(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 20):
        print(path, label)
