"""Model files: nnlearn's own ``.npz`` format and Octave/MATLAB weight files.

nnlearn's format is a NumPy ``.npz`` archive read with ``allow_pickle=False``:

* ``theta1`` ... ``thetaN``: the weight matrices;
* ``classes``: the label of each output unit (numbers or strings, never objects);
* ``meta``: a JSON document with ``format`` ("nnlearn-model"), ``format_version``,
  ``lam``, the training ``history``, and the SHA-256 of every array, checked on load.

Octave/MATLAB files hold ``Theta1``, ``Theta2``, ... as in the course's
``ex4weights.mat``, where output unit k stands for label k and label 10 for digit 0.

Checkpoints of a training run use the same archive with ``format``
"nnlearn-checkpoint": the optimiser's arrays, and its numbers with the run's settings
in the JSON document.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .errors import ModelFileError
from .files import atomic_write, first_line, read_npz
from .model import Model

__all__ = [
    "save_model",
    "load_model",
    "read_octave_weights",
    "load_octave_model",
    "write_octave_weights",
    "load_weights",
    "save_checkpoint",
    "load_checkpoint",
    "FORMAT",
    "FORMAT_VERSION",
]

FORMAT = "nnlearn-model"
CHECKPOINT = "nnlearn-checkpoint"
FORMAT_VERSION = 1
COURSE_DIGIT_ORDER = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 0])


def _digest(array):
    array = np.ascontiguousarray(array)
    header = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(header + array.tobytes()).hexdigest()


def _write_archive(path, kind, arrays, meta, overwrite):
    """Write arrays and a JSON document (with the arrays' checksums) as one ``.npz``."""
    meta = {"format": kind, "format_version": FORMAT_VERSION, **meta,
            "sha256": {name: _digest(array) for name, array in arrays.items()}}
    arrays = {**arrays, "meta": np.array(json.dumps(meta))}
    return atomic_write(path, lambda f: np.savez_compressed(f, **arrays), overwrite=overwrite)


def _read_archive(path, kind):
    """Arrays and JSON document of an archive of ``kind``, checksums verified."""
    what = kind.replace("nnlearn-", "") + " file"
    arrays = read_npz(path, ModelFileError, what)
    meta = _read_meta(path, arrays.pop("meta", None), kind, what)
    expected = meta.get("sha256", {})
    for name, array in arrays.items():
        if expected.get(name) != _digest(array):
            raise ModelFileError(f"{path}: array {name!r} does not match its checksum; the file was altered")
    if set(expected) != set(arrays):
        raise ModelFileError(f"{path}: arrays are missing from the {what}; the file was altered")
    return arrays, meta


def _read_meta(path, meta, kind, what):
    if meta is None or meta.dtype.kind != "U" or meta.ndim != 0:
        raise ModelFileError(f"{path}: not an nnlearn {what} (no metadata)")
    try:
        meta = json.loads(str(meta))
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: the {what}'s metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != kind:
        raise ModelFileError(f"{path}: not an nnlearn {what}")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: {what} format version {version} is newer than this nnlearn reads "
            f"({FORMAT_VERSION}); upgrade nnlearn"
        )
    return meta


def save_model(model, path, overwrite=False):
    """Write ``model`` to ``path`` atomically; refuse to replace a file unless ``overwrite``."""
    if model.classes.dtype.kind not in "iufbU":
        raise ModelFileError(f"class labels of dtype {model.classes.dtype} cannot be saved safely")
    arrays = {f"theta{l}": theta for l, theta in enumerate(model.thetas, start=1)}
    arrays["classes"] = model.classes
    return _write_archive(path, FORMAT, arrays, {"lam": float(model.lam), "history": model.history}, overwrite)


def load_model(path):
    """Read a model written by :func:`save_model`.

    Raises
    ------
    ModelFileError
        The file is missing, not an nnlearn model, of a newer format version, altered
        since it was written, or holds arrays that would need unpickling.
    """
    arrays, meta = _read_archive(path, FORMAT)
    names = [f"theta{l}" for l in range(1, len(arrays))]
    if set(arrays) != {*names, "classes"}:
        raise ModelFileError(f"{path}: a model file holds theta1 ... thetaN and classes, not {sorted(arrays)}")
    try:
        return Model([arrays[n] for n in names], arrays["classes"], meta["lam"], meta["history"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: inconsistent model file ({exc})") from None


def save_checkpoint(path, settings, state):
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
    return _write_archive(path, CHECKPOINT, arrays, {"settings": settings, "state": scalars}, overwrite=True)


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint`: ``(settings, state)``."""
    arrays, meta = _read_archive(path, CHECKPOINT)
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


def read_octave_weights(path):
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
    thetas = []
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


def load_octave_model(path, classes=None):
    """A :class:`Model` from Octave weights.

    ``classes`` defaults to the course's convention: output unit k stands for label k,
    and with 10 outputs label 10 is digit 0, so the classes are 1, ..., 9, 0.
    """
    thetas = read_octave_weights(path)
    K = thetas[-1].shape[0]
    if classes is None:
        classes = COURSE_DIGIT_ORDER if K == 10 else np.arange(1, K + 1)
    return Model(thetas, np.asarray(classes), lam=0.0, history={"source": str(path)})


def write_octave_weights(model, path, overwrite=False):
    """Write ``Theta1``, ``Theta2``, ... to a ``.mat`` file the course's Octave code reads.

    A model of the digits 0-9 has its output units reordered to the course's order
    (unit k is digit k, unit 10 is digit 0), so Octave's ``predict`` returns course labels.
    """
    from scipy.io import savemat

    thetas = [np.asarray(theta, dtype=np.float64) for theta in model.thetas]
    classes = model.classes
    if classes.dtype.kind in "iu" and sorted(classes.tolist()) == list(range(10)):
        order = [int(np.flatnonzero(classes == label)[0]) for label in COURSE_DIGIT_ORDER]
        thetas[-1] = thetas[-1][order]
    mdict = {f"Theta{l}": theta for l, theta in enumerate(thetas, start=1)}
    return atomic_write(path, lambda f: savemat(f, mdict), overwrite=overwrite)


def load_weights(path):
    """A :class:`Model` from either an nnlearn model file or an Octave ``.mat`` file."""
    return load_octave_model(path) if str(path).lower().endswith(".mat") else load_model(path)
