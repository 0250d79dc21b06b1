"""Weight files: Octave/MATLAB weights, the shipped pretrained network, and checkpoints.

nnlearn's own model files are written and read by :mod:`nnlearn.model`
(:func:`save_model`, :func:`load_model`, re-exported here).

Octave/MATLAB files hold ``Theta1``, ``Theta2``, ... as in the course's
``ex4weights.mat``, where output unit k stands for label k and label 10 for digit 0.

Checkpoints of a training run use the same archive with ``format``
"nnlearn-checkpoint": the optimiser's arrays, and its numbers with the run's settings
in the JSON document.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .archive import FORMAT_VERSION, read_archive, write_archive
from .errors import ModelFileError
from .files import atomic_write, first_line
from .model import FORMAT, Model, load_model, save_model

__all__ = [
    "save_model",
    "load_model",
    "read_octave_weights",
    "load_octave_model",
    "write_octave_weights",
    "load_weights",
    "load_pretrained",
    "PRETRAINED_SHA256",
    "save_checkpoint",
    "load_checkpoint",
    "FORMAT",
    "FORMAT_VERSION",
]

CHECKPOINT = "nnlearn-checkpoint"
COURSE_DIGIT_ORDER = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 0])
#: The course's pretrained ex4weights.mat, shipped as package data (see its README).
PRETRAINED_SHA256 = "7eb93f42e50219a15de2378c7f8e4ecdd71005fc19e0e519cd52d5ce4d74e1f5"


def save_checkpoint(path: str | os.PathLike, settings: dict[str, Any], state: dict[str, Any]) -> Path:
    """Write a training run's settings and optimiser state, replacing an older checkpoint.

    Parameters
    ----------
    settings : dict
        JSON-compatible: what is needed to rebuild the run (data, layers, lambda, ...).
    state : dict
        The optimiser's state: arrays, numbers, lists and dicts of numbers.
    """
    arrays = {name: value for name, value in state.items() if isinstance(value, np.ndarray)}
    scalars = {name: _plain(value) for name, value in state.items() if name not in arrays}
    return write_archive(path, CHECKPOINT, arrays, {"settings": settings, "state": scalars}, overwrite=True)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(settings, state)``."""
    arrays, meta = read_archive(path, CHECKPOINT)
    if not isinstance(meta.get("settings"), dict) or not isinstance(meta.get("state"), dict):
        raise ModelFileError(f"{path}: the checkpoint has no settings or no state")
    return meta["settings"], {**meta["state"], **arrays}


def _plain(value):
    """Numbers and containers of numbers as JSON takes them (floats round-trip exactly)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def read_octave_weights(path: str | os.PathLike) -> list[np.ndarray]:
    """Read ``Theta1``, ``Theta2``, ... from a MATLAB/Octave ``.mat`` file.

    Returns
    -------
    thetas : list of float64 ndarray
    """
    from scipy.io import loadmat

    try:
        data = loadmat(path)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
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
