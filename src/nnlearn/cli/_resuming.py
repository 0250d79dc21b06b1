"""Resuming ``nnlearn train`` from a checkpoint: the settings a checkpoint fixes.

A resumed run keeps the checkpoint's settings (:data:`RESUMED`, the settings the
declaration marks as kept, and the verb's data, held-out part, framing and preset); an
option that contradicts one is refused, and ``--max-iter`` may only extend the run.
Whether the resumed run can be exact is the library's to say
(:mod:`nnlearn.training._exactness`).
"""

from __future__ import annotations

from pathlib import Path

from ..datasets._builtin import DATASETS
from ..errors import ParameterError
from ..training._setting import REQUIRED
from ..training._settings import SETTINGS

# Training options a checkpoint fixes (a resumed run keeps its data, network and seed):
# argparse's name -> (the option, its key in the checkpoint's settings).
RESUMED = {
    "data": ("--data", "data"),
    "test_size": ("--test-size", "test_size"),
    "framing": ("--framing", "framing"),
    "preset": ("--preset", "preset"),
    **{name: (spec.flag, spec.checkpoint) for name, spec in SETTINGS.items() if spec.resumed == "kept"},
}
# What a checkpoint that does not record a setting ran with (written before the setting
# existed, or by a run that did not use it): the declaration's ``before``; a framing not
# recorded is worked out as for a new run, and a preset not recorded may be given (None):
# every setting it holds that a resumed run keeps is recorded on its own.
RESUMED_BEFORE = {
    "framing": None,
    "preset": None,
    **{
        spec.checkpoint: spec.before
        for spec in SETTINGS.values()
        if spec.resumed == "kept" and spec.before is not REQUIRED
    },
}
_MISSING = object()
# The verb's own settings a checkpoint may leave unrecorded (None), worked out as for a
# new run; any other recorded None is a value the resumed run keeps (learning_rate's).
_WORKED_OUT = {"framing", "preset"}


def resume_settings(args):
    """With --resume, the checkpoint's settings and state; options that contradict them are
    refused. ``args.kept`` names the options the checkpoint fixed (a preset fills none of them)."""
    args.kept = set()
    if not args.resume:
        return None, None
    from ..training._continuation import Continuation

    saved, continuation = Continuation.load(args.resume)
    for dest, (option, key) in RESUMED.items():
        recorded = saved.get(key, RESUMED_BEFORE.get(key, _MISSING))
        if recorded is _MISSING:
            raise ParameterError(f"{args.resume}: the checkpoint does not record {option}")
        given = getattr(args, dest)
        if isinstance(given, tuple):  # the hidden layer sizes, as a checkpoint's JSON holds them
            given = list(given)
        if recorded is None and dest in _WORKED_OUT:
            continue
        if given is not None and given != recorded and not (dest == "data" and _same_file(given, recorded)):
            raise ParameterError(
                f"{option} {given} differs from the checkpoint's {recorded}; a resumed run keeps its settings"
            )
        setattr(args, dest, recorded)
        args.kept.add(dest)
    if args.max_iter is None:  # a --max-iter given on the command line extends the run
        args.max_iter = saved.get("max_iter")
    return {**saved, **continuation.exactness}, continuation


def _same_file(a, b):
    return a not in DATASETS and b not in DATASETS and Path(a).resolve() == Path(b).resolve()
