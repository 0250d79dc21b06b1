"""Checkpoints of a training run: the optimiser's state and the run's settings, in one file.

A checkpoint uses the model files' archive (:mod:`nnlearn.persist`) with ``format``
"nnlearn-checkpoint": the optimiser's arrays, and its numbers with the run's settings in
the JSON document, checked against :data:`CHECKPOINT_SCHEMAS`. The document also says the
state's layout, ``"state_layout": {"version": STATE_LAYOUT, "kind": ...}``: which
optimiser family wrote it (:data:`LAYOUTS`) and in which arrangement. A run resumes
exactly only from the arrangement this nnlearn writes, so a checkpoint of another layout
version (nnlearn 0.1's have no marker: version 1), or whose state lacks or mistypes what
its optimiser needs, is refused with a message saying to restart the run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError
from ..model._model import PLAN_RECORD
from ..persist._archive import FORMAT_VERSION, document, plain, read_archive, write_archive
from ..persist._schema import (
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
    "save_checkpoint",
    "load_checkpoint",
    "CHECKPOINT",
    "STATE_LAYOUT",
    "LAYOUTS",
    "OPTIONAL",
    "CHECKPOINT_SCHEMAS",
    "KIND_OF",
]

CHECKPOINT = "nnlearn-checkpoint"

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
_MINIBATCH = {  # nnlearn.optim._minibatch._snapshot
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
    # cg and lbfgs (nnlearn.optim._minimize._minimize_scipy): replayed from x0.
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
# What nnlearn.training._fitting adds to a full-batch optimiser's state with early stopping (its
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
# The watch's loss side (nnlearn.optim._minibatch.HeldOut), which nnlearn 0.2's lacked.
_WATCH_LOSS = {"es.losses": _FLOATS, "es.loss_best": nullable(_FLOAT), "es.loss_stale": _COUNT}
# What a mini-batch optimiser's snapshot adds with early stopping (its HeldOut watch's loss
# side and kept iteration: nnlearn.optim._minibatch.HeldOut.state); 0.2's had none.
_HELD_OUT = {"losses": _FLOATS, "best_iter": _COUNT, "loss_best": nullable(_FLOAT), "loss_stale": _COUNT}
# The kernel's forms that nnlearn 0.2's planner recorded: read in its checkpoints, never
# written now (nnlearn.training._train warns when they were not the fixed ones).
_PLAN = {"plan": PLAN_RECORD}
#: Each layout kind's optional parts: arrays and numbers a state holds all or none of
#: (each group), as :data:`LAYOUTS` has them.
OPTIONAL: dict[str, list[tuple[frozenset[str], dict[str, Check]]]] = {
    "scipy": [
        (frozenset({"es.best_x"}), _WATCH),
        (frozenset(), _WATCH_LOSS),
        (frozenset(), _AUGMENT),
        (frozenset(), _PLAN),
    ],
    "fmincg": [
        (frozenset({"es.best_x"}), _WATCH),
        (frozenset(), _WATCH_LOSS),
        (frozenset(), _AUGMENT),
        (frozenset(), _PLAN),
    ],
    "sgd": [(frozenset(), _AUGMENT), (frozenset(), _PLAN), (frozenset(), _HELD_OUT)],
    "adam": [(frozenset(), _AUGMENT), (frozenset(), _PLAN), (frozenset(), _HELD_OUT)],
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
        The optimiser's state (:meth:`nnlearn.training.Continuation.load` makes it a
        continuation to hand to :func:`nnlearn.train` as ``resume``).

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
