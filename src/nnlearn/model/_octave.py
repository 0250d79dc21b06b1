"""Octave/MATLAB weight files and the course's pretrained network, shipped with nnlearn.

Octave/MATLAB files hold ``Theta1``, ``Theta2``, ... as in the course's
``ex4weights.mat``, where output unit k stands for label k and label 10 for digit 0.
They are read without SciPy's loader, element by element, so that a crafted file can
make the reader inflate no more than its weight matrices' declared shapes need.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import zlib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ModelFileError, first_line
from ..persist._atomic import atomic_write
from ..persist._reading import open_regular
from ._model import MAX_ARRAY_BYTES, Model, load_model

__all__ = [
    "read_octave_weights",
    "load_octave_model",
    "write_octave_weights",
    "load_weights",
    "load_pretrained",
    "PRETRAINED_SHA256",
    "COURSE_DIGIT_ORDER",
]

COURSE_DIGIT_ORDER = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 0])
#: The course's pretrained ex4weights.mat, shipped as package data (see its README).
PRETRAINED_SHA256 = "7eb93f42e50219a15de2378c7f8e4ecdd71005fc19e0e519cd52d5ce4d74e1f5"

# MATLAB v5 files (scipy's "version 1"): a 128-byte header, then one element per
# variable, a matrix or a deflated matrix. Numeric classes: mxDOUBLE_CLASS (6) to
# mxUINT64_CLASS (15); a logical is a uint8 with a flag.
_V5_HEADER = 128
_MI_INT8, _MI_INT32, _MI_UINT32, _MI_MATRIX, _MI_COMPRESSED = 1, 5, 6, 14, 15
_NUMERIC_CLASSES = range(6, 16)
_COMPLEX_FLAG = 0x0800
# Enough of an inflated variable for its flags, dimensions and name; more is refused.
_PEEK = 4096
# An inflated weight matrix beyond its numbers' bytes: its flags, dimensions, name, tags.
_VARIABLE_OVERHEAD = 4096 + _PEEK
_CHUNK = 2**20
_THETA = re.compile(r"Theta[1-9][0-9]{0,5}")


def read_octave_weights(path: str | os.PathLike) -> list[np.ndarray]:
    """Read ``Theta1``, ``Theta2``, ... from a MATLAB/Octave ``.mat`` file.

    Only a regular file is opened (a FIFO would hang the reader, ``/dev/zero`` fill the
    memory), of at most :data:`nnlearn.model._model.MAX_ARRAY_BYTES` and a megabyte. Of a v5
    file (what Octave and the course write) only the Theta variables reach scipy, each
    judged first by its header: a real numeric matrix, all of them together at most
    :data:`~nnlearn.model._model.MAX_ARRAY_BYTES` as float64, and a deflated one inflating to no
    more than its shape needs. Other variables are skipped unread.

    Returns
    -------
    thetas : list of float64 ndarray

    Raises
    ------
    ModelFileError
        Naming ``path`` and what is wrong, in one line.
    """
    from scipy.io import loadmat
    from scipy.io.matlab import matfile_version

    with open_regular(path, ModelFileError, "weights file", max_bytes=MAX_ARRAY_BYTES + 2**20) as file:
        try:
            # Version 4 files hold no deflated data: scipy reads no more than the file.
            source = _theta_variables(path, file) if matfile_version(file)[0] == 1 else file
            file.seek(0)
            data = loadmat(source)
        except ModelFileError:
            raise
        except Exception as exc:  # scipy raises several unrelated types for a bad file
            raise ModelFileError(f"{path}: not a readable .mat file ({first_line(exc)})") from None
    thetas: list[np.ndarray] = []
    while f"Theta{len(thetas) + 1}" in data:
        name = f"Theta{len(thetas) + 1}"
        try:
            theta = np.asarray(data[name], dtype=np.float64)
        except (TypeError, ValueError):
            raise ModelFileError(f"{path}: {name} is not a numeric matrix") from None
        if theta.ndim != 2:
            raise ModelFileError(f"{path}: {name} is not a matrix")
        if not np.all(np.isfinite(theta)):
            raise ModelFileError(f"{path}: {name} contains NaN or infinite weights")
        thetas.append(theta)
    if not thetas:
        raise ModelFileError(f"{path}: the .mat file has no Theta1")
    return thetas


def _theta_variables(path: str | os.PathLike, file: BinaryIO) -> io.BytesIO:
    """A v5 .mat file in memory of the Theta variables of ``file`` alone, inflated.

    scipy believes a variable's sizes and inflates a deflated variable a block at a time
    however far that block inflates, even to read its name: a few megabytes of deflated
    zeros would become gigabytes. Here each variable's header is read from at most
    :data:`_PEEK` inflated bytes, any other variable is skipped, and a Theta variable is
    inflated only as far as its shape needs.
    """
    file.seek(0)
    header = file.read(_V5_HEADER)
    order = "<" if header[126:128] == b"IM" else ">"
    kept, total = [header], 0
    while len(tag := file.read(8)) == 8:
        kind, size = struct.unpack(order + "II", tag)
        start = file.tell()
        if kind == _MI_COMPRESSED:
            pieces, element = _inflate(file, size), bytearray()
        elif kind == _MI_MATRIX:
            pieces, element = _read(file, size), bytearray(tag)
        else:
            raise ModelFileError(f"{path}: not a readable .mat file (an element of type {kind} where a variable was)")
        for piece in pieces:  # the header; the rest only for a Theta variable
            element += piece
            if len(element) >= _PEEK:
                break
        name, count = _matrix_header(path, bytes(element[:_PEEK]), order)
        if name is not None:
            total += 8 * count
            if total > MAX_ARRAY_BYTES:
                raise ModelFileError(
                    f"{path}: its weights hold more than {MAX_ARRAY_BYTES:,} bytes as float64 ({name} alone: "
                    f"{count:,} numbers), more than a weights file holds; refused"
                )
            limit = 8 * count + _VARIABLE_OVERHEAD
            for piece in pieces:
                element += piece
                if len(element) > limit:
                    raise ModelFileError(
                        f"{path}: {name} inflates to more than its shape needs ({limit:,} bytes at most); "
                        "the file is damaged or crafted; refused"
                    )
            # Exactly the element its tag states: trailing bytes would read as another.
            kept.append(bytes(element[: 8 + struct.unpack_from(order + "I", element, 4)[0]]))
        file.seek(start + size)
    return io.BytesIO(b"".join(kept))


def _read(file: BinaryIO, size: int) -> Iterator[bytes]:
    """The ``size`` bytes at ``file``'s position, in pieces of at most :data:`_CHUNK`."""
    while size > 0:
        piece = file.read(min(_CHUNK, size))
        if not piece:
            return
        size -= len(piece)
        yield piece


def _inflate(file: BinaryIO, size: int) -> Iterator[bytes]:
    """The inflated bytes of the ``size`` deflated bytes at ``file``'s position, in pieces
    of at most :data:`_CHUNK`: never more at once, however well they compress."""
    inflater, left = zlib.decompressobj(), size
    while left > 0 and not inflater.eof:
        compressed = file.read(min(_CHUNK, left))
        if not compressed:
            return
        left -= len(compressed)
        while piece := inflater.decompress(compressed, _CHUNK):
            yield piece
            compressed = inflater.unconsumed_tail


def _matrix_header(path: str | os.PathLike, element: bytes, order: str) -> tuple[str | None, int]:
    """The name and number count of the Theta variable whose element ``element`` begins,
    checked to be a real numeric matrix; (None, 0) for any other variable."""
    try:
        kind, _ = struct.unpack_from(order + "II", element, 0)
        if kind != _MI_MATRIX:
            raise ValueError(f"a variable of type {kind}")
        flags, position = _subelement(element, 8, order, _MI_UINT32)
        dims, position = _subelement(element, position, order, _MI_INT32)
        raw_name, _ = _subelement(element, position, order, _MI_INT8)
        (flag_word,) = struct.unpack_from(order + "I", flags, 0)
        shape = struct.unpack(order + f"{len(dims) // 4}i", dims[: len(dims) // 4 * 4])
    except (struct.error, ValueError) as exc:
        raise ModelFileError(f"{path}: not a readable .mat file ({first_line(exc)})") from None
    name = raw_name.decode("latin-1")
    if not _THETA.fullmatch(name):
        return None, 0
    if flag_word & 0xFF not in _NUMERIC_CLASSES or flag_word & _COMPLEX_FLAG:
        raise ModelFileError(f"{path}: {name} is not a numeric matrix")
    if len(shape) != 2 or min(shape) < 0:
        raise ModelFileError(f"{path}: {name} is not a matrix")
    return name, shape[0] * shape[1]


def _subelement(element: bytes, position: int, order: str, expected: int) -> tuple[bytes, int]:
    """The data of the tagged subelement at ``position`` (of type ``expected``), and where
    the next begins. A small one packs its size into its tag's upper half."""
    (first,) = struct.unpack_from(order + "I", element, position)
    if first >> 16:
        kind, size, start, end = first & 0xFFFF, first >> 16, position + 4, position + 8
    else:
        (size,) = struct.unpack_from(order + "I", element, position + 4)
        kind, start = first, position + 8
        end = start + size + (-size % 8)
    if kind != expected or start + size > min(len(element), end):
        raise ValueError(f"a variable's header is not as MATLAB writes it (type {kind} at byte {position})")
    return element[start : start + size], end


def load_octave_model(path: str | os.PathLike, classes: ArrayLike | None = None) -> Model:
    """A :class:`Model` from Octave weights.

    ``classes`` defaults to the course's convention: output unit k stands for label k,
    and with 10 outputs label 10 is digit 0, so the classes are 1, ..., 9, 0.
    """
    thetas = read_octave_weights(path)
    K = thetas[-1].shape[0]
    if classes is None:
        classes = COURSE_DIGIT_ORDER if K == 10 else np.arange(1, K + 1)
    return Model(thetas, np.asarray(classes), lam=0.0, history={"source": str(path)})


def write_octave_weights(model: Model, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``Theta1``, ``Theta2``, ... to a ``.mat`` file the course's Octave code reads.

    A model of the digits 0-9 has its output units reordered to the course's order
    (unit k is digit k, unit 10 is digit 0), so Octave's ``predict`` returns course labels.
    """
    from scipy.io import savemat

    if not model.network.is_course:
        raise ModelFileError(
            f"{path}: the course's Octave code computes sigmoid hidden units and sigmoid outputs; this "
            f"model has {model.network.activation}/{model.network.output}, which its weight files cannot express"
        )
    thetas = [np.asarray(theta, dtype=np.float64) for theta in model.thetas]
    classes = model.classes
    if classes.dtype.kind in "iu" and sorted(classes.tolist()) == list(range(10)):
        order = [int(np.flatnonzero(classes == label)[0]) for label in COURSE_DIGIT_ORDER]
        thetas[-1] = thetas[-1][order]
    mdict = {f"Theta{l}": theta for l, theta in enumerate(thetas, start=1)}
    return atomic_write(path, lambda f: savemat(f, mdict), overwrite=overwrite)


def load_weights(path: str | os.PathLike) -> Model:
    """A :class:`Model` from either an nnlearn model file or an Octave ``.mat`` file."""
    return load_octave_model(path) if str(path).lower().endswith(".mat") else load_model(path)


def load_pretrained() -> Model:
    """The course's pretrained 400-25-10 network (``ex4weights.mat``, shipped with nnlearn).

    The file's SHA-256 is checked first; :class:`ModelFileError` if the installed copy
    was altered.
    """
    source = resources.files("nnlearn").joinpath("data", "ex4weights.mat")
    with resources.as_file(source) as path:
        if hashlib.sha256(path.read_bytes()).hexdigest() != PRETRAINED_SHA256:
            raise ModelFileError(
                f"{path}: the shipped pretrained weights do not match their checksum; reinstall nnlearn"
            )
        model = load_octave_model(path)
    model.history["source"] = "ex4weights.mat (the course's pretrained weights, shipped with nnlearn)"
    return model
