"""The input of ``POST /api/predict``: a JSON vector, a JSON base64 image, or an image body.

Every way in ends in one row of network input, prepared exactly as ``nnlearn predict``
prepares an image file (:func:`nnlearn.datasets._images.image_bytes_to_input`, the model's
framing), or :class:`~nnlearn.errors.DataError` saying what is wrong with it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import numbers
import re
from typing import Any

import numpy as np

from ..datasets._images import image_bytes_to_input
from ..errors import DataError
from ._served import Served

__all__ = ["parse_json", "vector_input", "image_input", "json_image", "MAX_MAGNITUDE"]

#: The largest magnitude an input value may have: far beyond pixels or standardised
#: features, far enough from overflow that every activation stays finite.
MAX_MAGNITUDE = 1e6
_DATA_URL = re.compile(r"data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


def parse_json(body: bytes, max_containers: int, max_commas: int) -> Any:
    """A JSON body, or :class:`DataError` saying where it stops being JSON.

    Before it is parsed, the body's count of ``[`` and ``{`` must be at most
    ``max_containers`` and its count of commas at most ``max_commas``: what the largest
    valid request needs. ``json.loads`` holds the GIL, so a body of millions of empty
    lists (8 MiB, 2.7M of them: seconds) would stall every other request, in a thread or
    not; counting bytes takes a millisecond.
    """
    containers, commas = body.count(b"[") + body.count(b"{"), body.count(b",")
    if containers > max_containers or commas > max_commas:
        raise DataError(
            f"the body has {containers:,} lists or objects and {commas:,} commas; a valid request has at most "
            f"{max_containers} and {max_commas:,}"
        )
    try:
        return json.loads(body.decode("utf-8"))  # JSON is UTF-8 (RFC 8259); json.loads would guess
    except UnicodeDecodeError:
        raise DataError("the body is not UTF-8 text, so not JSON") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise DataError("the body is JSON nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4300 digits (sys.set_int_max_str_digits)
        raise DataError(f"the body holds a number JSON cannot take here ({str(exc).split(';')[0]})") from None


def vector_input(value: Any, n_inputs: int) -> np.ndarray:
    """``{"vector": [...]}``'s list: ``n_inputs`` finite numbers of magnitude at most
    :data:`MAX_MAGNITUDE`."""
    if not isinstance(value, list):
        raise DataError(f"vector: a list of {n_inputs} numbers is needed, not {type(value).__name__}")
    if len(value) != n_inputs:
        raise DataError(f"vector: {len(value)} values; the model takes {n_inputs} inputs")
    for i, v in enumerate(value):
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            raise DataError(f"vector[{i}]: {v!r} is not a number")
        if not math.isfinite(v) or abs(float(v)) > MAX_MAGNITUDE:
            raise DataError(f"vector[{i}]: {v!r} is not a finite number of magnitude at most {MAX_MAGNITUDE:g}")
    return np.asarray(value, dtype=np.float64)


def json_image(value: Any) -> bytes:
    """``{"image": "..."}``'s string, base64 or a ``data:image/...;base64,`` URL, decoded."""
    if not isinstance(value, str):
        raise DataError(f"image: a base64 string (or a data: URL) is needed, not {type(value).__name__}")
    found = _DATA_URL.match(value)
    text = value[found.end() :] if found else value
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DataError("image: not valid base64") from None


def image_input(data: bytes, served: Served, max_pixels: int, notes: list[str]) -> np.ndarray:
    """An image's bytes as the served model's input, framed as its training digits were."""
    if served.side is None:
        n = served.model.layer_sizes[0]
        raise DataError(f"image: the model's {n} inputs are not a square image; send a vector of {n} numbers")
    return image_bytes_to_input(data, served.model.layer_sizes[0], served.framing, "image", max_pixels, notes)
