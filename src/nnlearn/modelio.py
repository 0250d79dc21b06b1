"""Weight files: Octave/MATLAB weights, the shipped pretrained network, and checkpoints.

nnlearn's own model files are written and read by :mod:`nnlearn.model`
(:func:`save_model`, :func:`load_model`, re-exported here).

Octave/MATLAB files hold ``Theta1``, ``Theta2``, ... as in the course's
``ex4weights.mat``, where output unit k stands for label k and label 10 for digit 0.

Checkpoints of a training run use the same archive with ``format``
"nnlearn-checkpoint": the optimiser's arrays, and its numbers with the run's settings
in the JSON document, checked against :data:`CHECKPOINT_SCHEMAS`. The document also
says the state's layout, ``"state_layout": {"version": STATE_LAYOUT, "kind": ...}``:
which optimiser family wrote it (:data:`LAYOUTS`) and in which arrangement. A run
resumes exactly only from the arrangement this nnlearn writes, so a checkpoint of
another layout version (nnlearn 0.1's have no marker: version 1), or whose state lacks
or mistypes what its optimiser needs, is refused with a message saying to restart the
run.
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
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import ArrayLike

from .archive import FORMAT_VERSION, document, plain, read_archive, write_archive
from .errors import ModelFileError
from .files import atomic_write, first_line, open_regular
from .model import FORMAT, MAX_ARRAY_BYTES, PLAN_RECORD, Model, load_model, save_model
from .schema import (
    MAX_NAME,
    Check,
    SchemaError,
    anything,
    array,
    boolean,
    either,
    integer,
    nullable,
    number,
    record,
    text,
)

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
    "STATE_LAYOUT",
    "LAYOUTS",
    "OPTIONAL",
    "CHECKPOINT_SCHEMAS",
]

CHECKPOINT = "nnlearn-checkpoint"
COURSE_DIGIT_ORDER = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 0])
#: The course's pretrained ex4weights.mat, shipped as package data (see its README).
PRETRAINED_SHA256 = "7eb93f42e50219a15de2378c7f8e4ecdd71005fc19e0e519cd52d5ce4d74e1f5"

#: The arrangement of the optimiser states this nnlearn writes and resumes. 1: nnlearn
#: 0.1's and every unmarked state (cg and lbfgs kept no starting point then, so they
#: could not replay). Raise it whenever a state changes meaning, not only its keys.
STATE_LAYOUT = 2

_COUNT = integer(0, 2**53)
# The optimiser's own numbers: a best cost starts infinite, and they go back to the
# optimiser as floats, never into text.
_FLOAT = number(finite=False)
_FLOATS = array(_FLOAT)
_RNG = record(  # NumPy's PCG64 state, as Generator.bit_generator.state gives it
    {
        "bit_generator": text(MAX_NAME, choices=("PCG64",)),
        "state": record({"state": integer(0, 2**128 - 1), "inc": integer(0, 2**128 - 1)}),
        "has_uint32": integer(0, 1),
        "uinteger": integer(0, 2**32 - 1),
    }
)
_MINIBATCH = {  # nnlearn.minibatch._snapshot
    "best_cost": _FLOAT,
    "history": _FLOATS,
    "scores": _FLOATS,
    "plateau_best": nullable(_FLOAT),
    "plateau_stale": _COUNT,
    "rng": _RNG,
}
#: Each layout kind: the names of its arrays (float vectors of one length, the weights'
#: count) and the checks of its numbers, as the optimisers hand them to ``checkpoint``.
LAYOUTS: dict[str, tuple[frozenset[str], dict[str, Check]]] = {
    # cg and lbfgs (nnlearn.optimize._minimize_scipy): replayed from x0.
    "scipy": (frozenset({"x0", "x"}), {"fun": _FLOAT, "history": _FLOATS, "n_evals": _COUNT}),
    "fmincg": (
        frozenset({"x", "grad", "direction"}),
        {
            "fun": _FLOAT,
            "slope": _FLOAT,
            "step": _FLOAT,
            "failed_last": boolean(),
            "searches": _COUNT,
            "history": _FLOATS,
            "n_evals": _COUNT,
        },
    ),
    "sgd": (frozenset({"x", "best_x", "opt.velocity"}), _MINIBATCH),
    "adam": (frozenset({"x", "best_x", "opt.m", "opt.v"}), {**_MINIBATCH, "opt.t": _COUNT}),
}
# What nnlearn.fitting adds to a full-batch optimiser's state with early stopping (its
# Watch: the best weights and the plateau's counter) and augmentation (the random state
# its fixed copies were made from); a mini-batch optimiser's snapshot holds its own early
# stopping and, with augmentation, the state of the next epoch's distortions.
_AUGMENT = {"aug_rng": _RNG}
_WATCH = {
    "es.best_iter": _COUNT,
    "es.scores": _FLOATS,
    "es.plateau_best": nullable(_FLOAT),
    "es.plateau_stale": _COUNT,
}
# The kernel's forms that nnlearn 0.2's planner recorded: read in its checkpoints, never
# written now (nnlearn.training warns when they were not the fixed ones).
_PLAN = {"plan": PLAN_RECORD}
#: Each layout kind's optional parts: arrays and numbers a state holds all or none of
#: (each group), as :data:`LAYOUTS` has them.
OPTIONAL: dict[str, list[tuple[frozenset[str], dict[str, Check]]]] = {
    "scipy": [(frozenset({"es.best_x"}), _WATCH), (frozenset(), _AUGMENT), (frozenset(), _PLAN)],
    "fmincg": [(frozenset({"es.best_x"}), _WATCH), (frozenset(), _AUGMENT), (frozenset(), _PLAN)],
    "sgd": [(frozenset(), _AUGMENT), (frozenset(), _PLAN)],
    "adam": [(frozenset(), _AUGMENT), (frozenset(), _PLAN)],
}
#: The layout kind each optimiser writes: a checkpoint whose settings name one optimiser
#: and whose state is another's would fail inside the optimiser.
KIND_OF = {"cg": "scipy", "lbfgs": "scipy", "fmincg": "fmincg", "sgd": "sgd", "adam": "adam"}

_SCALAR = either(
    nullable(boolean()),
    number(),
    text(free=True),
    wanted="null, true, false, a finite number or a string without control characters",
)
#: What a checkpoint's settings may hold: ``nnlearn train``'s (all optional); other keys
#: hold scalars or flat lists of them.
SETTINGS_FIELDS: dict[str, Check] = {
    "data": text(),
    "hidden": array(integer(1, 2**31 - 1), max_len=1000),
    "lambda": number(0),
    "optimizer": text(MAX_NAME),
    "max_iter": integer(1, 2**53),
    "test_size": number(0, 1, open_high=True),
    "seed": integer(0, 2**32 - 1),
    "dtype": text(MAX_NAME),
    "activation": text(MAX_NAME),
    "output": text(MAX_NAME),
}
_SETTINGS = record(
    SETTINGS_FIELDS,
    optional=SETTINGS_FIELDS,
    extra=either(_SCALAR, array(_SCALAR), wanted="a JSON scalar or a list of them"),
)
# The state's numbers are checked against their layout once the layout is known
# (_check_state); here they need only be an object (shallow: the depth check saw to it).
_STATE = record({}, extra=anything())
_LAYOUT = record({"version": integer(0, 2**31 - 1), "kind": text(MAX_NAME)})
#: The checkpoint document of each format version. Format 1 (nnlearn 0.1) is read only
#: far enough to say that its state's layout is too old.
CHECKPOINT_SCHEMAS: dict[int, Check] = {
    1: document({"settings": record({}, extra=anything()), "state": _STATE}),
    # state_layout is optional here so that a checkpoint without it gets the message
    # about its layout, not about a missing key.
    2: document({"settings": _SETTINGS, "state": _STATE, "state_layout": _LAYOUT}, optional=("state_layout",)),
}


def save_checkpoint(path: str | os.PathLike, settings: dict[str, Any], state: dict[str, Any]) -> Path:
    """Write a training run's settings and optimiser state, replacing an older checkpoint.

    Parameters
    ----------
    path : str or Path
    settings : dict
        JSON-compatible: what is needed to rebuild the run (data, layers, lambda, ...).
    state : dict
        The optimiser's state as an optimiser hands it to ``checkpoint``: arrays,
        numbers, lists and dicts of numbers, in one of the :data:`LAYOUTS`.

    Returns
    -------
    Path

    Raises
    ------
    ModelFileError
        The state is in none of the layouts, or the settings are not what a checkpoint
        holds: nnlearn writes no checkpoint it could not resume.
    """
    arrays = {name: value for name, value in state.items() if isinstance(value, np.ndarray)}
    scalars = {name: plain(value) for name, value in state.items() if name not in arrays}
    kinds = [kind for kind in LAYOUTS if set(state) in _key_sets(kind)]
    if not kinds:
        raise ModelFileError(f"{path}: cannot be saved: not an optimiser state nnlearn knows ({sorted(state)})")
    _check_state(path, kinds[0], scalars, arrays, "it cannot be saved")
    meta = {"settings": settings, "state": scalars, "state_layout": {"version": STATE_LAYOUT, "kind": kinds[0]}}
    return write_archive(path, CHECKPOINT, arrays, meta, overwrite=True, schema=CHECKPOINT_SCHEMAS[FORMAT_VERSION])


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    settings : dict
    state : dict
        The optimiser's state, to hand to :func:`nnlearn.train` as ``resume``.

    Raises
    ------
    ModelFileError
        The file is not a checkpoint, fails a checksum or its schema, or its optimiser
        state is in another layout than :data:`STATE_LAYOUT` (an older nnlearn's), or
        lacks or mistypes what its optimiser needs: such a run cannot be resumed exactly,
        and the message says to restart it with this nnlearn version.
    """
    arrays, meta = read_archive(path, CHECKPOINT, CHECKPOINT_SCHEMAS)
    restart = "restart the run with this nnlearn version"
    layout = meta.get("state_layout", {"version": 1, "kind": None})
    if layout["version"] != STATE_LAYOUT:
        age = "an older" if layout["version"] < STATE_LAYOUT else "a newer"
        raise ModelFileError(
            f"{path}: the checkpoint's optimiser state is in {age} layout (version {layout['version']}; this "
            f"nnlearn resumes version {STATE_LAYOUT}), so the run cannot be resumed exactly; {restart}"
        )
    kind, settings, state = layout["kind"], meta["settings"], meta["state"]
    if kind not in LAYOUTS:
        raise ModelFileError(
            f"{path}: the checkpoint's optimiser state is of an unknown kind {kind!r} "
            f"(this nnlearn knows {', '.join(LAYOUTS)}); {restart}"
        )
    _check_state(path, kind, state, arrays, f"the run cannot be resumed; {restart}")
    optimizer = settings.get("optimizer")
    if optimizer in KIND_OF and KIND_OF[optimizer] != kind:
        raise ModelFileError(f"{path}: the checkpoint's optimiser state is {kind}'s, not {optimizer}'s; {restart}")
    return settings, {**state, **arrays}


def _key_sets(kind):
    """Every set of keys a state of ``kind`` may have: its layout's, with any of its optional groups."""
    names, numbers = LAYOUTS[kind]
    sets = [names | set(numbers)]
    for group_names, group_numbers in OPTIONAL[kind]:
        sets += [keys | group_names | set(group_numbers) for keys in sets]
    return sets


def _check_state(path, kind, scalars, arrays, consequence):
    """ModelFileError, ending in ``consequence``, unless the state is exactly ``kind``'s layout
    (with whole optional groups)."""
    names, numbers = LAYOUTS[kind]
    present = set(arrays) | set(scalars)
    for group_names, group_numbers in OPTIONAL[kind]:
        if present & (group_names | set(group_numbers)):
            names, numbers = names | group_names, {**numbers, **group_numbers}
    missing = sorted((names - set(arrays)) | (set(numbers) - set(scalars)))
    unknown = sorted((set(arrays) - names) | (set(scalars) - set(numbers)))
    if missing:
        raise ModelFileError(f"{path}: the {kind} optimiser state lacks {', '.join(missing)}; {consequence}")
    if unknown:
        raise ModelFileError(f"{path}: the {kind} optimiser state has unknown {', '.join(unknown)}; {consequence}")
    try:
        for name, check in numbers.items():
            check(scalars[name], f"state.{name}")
    except SchemaError as exc:
        raise ModelFileError(f"{path}: {exc}; {consequence}") from None
    shapes = {array.shape for array in arrays.values()}
    if len(shapes) != 1 or not all(array.ndim == 1 and array.dtype.kind == "f" for array in arrays.values()):
        raise ModelFileError(
            f"{path}: the {kind} optimiser's arrays are not float vectors of one length; {consequence}"
        )


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
    memory), of at most :data:`nnlearn.model.MAX_ARRAY_BYTES` and a megabyte. Of a v5
    file (what Octave and the course write) only the Theta variables reach scipy, each
    judged first by its header: a real numeric matrix, all of them together at most
    :data:`~nnlearn.model.MAX_ARRAY_BYTES` as float64, and a deflated one inflating to no
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
