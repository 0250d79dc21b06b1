"""Resuming ``nnlearn train`` from a checkpoint: its settings, and whether the run can be exact.

A resumed run keeps the checkpoint's settings (:data:`RESUMED`; an option that
contradicts one is refused). Whether it reaches the uninterrupted run's weights bit for
bit depends on more than the settings: the data, the threads and shards that sum the cost,
the BLAS, NumPy and nnlearn. Each run records those (:func:`exactness_record`) in its
checkpoint's settings, and a resumed run says what differs (:func:`compare_exactness`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .. import __version__
from ..datasets import DATASETS
from ..errors import ParameterError
from ..settings import MINI_BATCH
from ..shards import MANIFEST
from .train_options import MINI_BATCH_OPTIONS, TRAIN_DEFAULTS

# Training options a checkpoint fixes (a resumed run keeps its data, network and seed):
# argparse's name -> (the option, its key in the checkpoint's settings).
RESUMED = {
    "data": ("--data", "data"),
    "hidden": ("--hidden", "hidden"),
    "lam": ("--lambda", "lambda"),
    "optimizer": ("--optimizer", "optimizer"),
    "test_size": ("--test-size", "test_size"),
    "seed": ("--seed", "seed"),
    "dtype": ("--dtype", "dtype"),
    "activation": ("--activation", "activation"),
    "output": ("--output", "output"),
    "framing": ("--framing", "framing"),
    **{dest: (option, dest) for dest, option in MINI_BATCH_OPTIONS.items()},
}
# What a checkpoint that does not record a setting ran with: the course's kinds and the
# mini-batch defaults (written before those settings existed, or by a full-batch run);
# a framing not recorded is worked out as for a new run (None).
RESUMED_BEFORE = {
    "activation": "sigmoid",
    "output": "sigmoid",
    "framing": None,
    **{dest: TRAIN_DEFAULTS[dest] for dest in MINI_BATCH_OPTIONS},
}
_MISSING = object()


def resume_settings(args):
    """With --resume, the checkpoint's settings and state; options that contradict them are refused."""
    if not args.resume:
        return None, None
    from ..modelio import load_checkpoint

    saved, state = load_checkpoint(args.resume)
    for dest, (option, key) in RESUMED.items():
        recorded = saved.get(key, RESUMED_BEFORE.get(key, _MISSING))
        if recorded is _MISSING:
            raise ParameterError(f"{args.resume}: the checkpoint does not record {option}")
        given = getattr(args, dest)
        if recorded is None:  # not recorded, and worked out as for a new run
            continue
        if given is not None and given != recorded and not (dest == "data" and _same_file(given, recorded)):
            raise ParameterError(
                f"{option} {given} differs from the checkpoint's {recorded}; a resumed run keeps its settings"
            )
        setattr(args, dest, recorded)
    if args.max_iter is None:  # a --max-iter given on the command line extends the run
        args.max_iter = saved.get("max_iter")
    return saved, state


def _same_file(a, b):
    return a not in DATASETS and b not in DATASETS and Path(a).resolve() == Path(b).resolve()


#: Keys of a checkpoint's settings that record what a resumed run's exactness depends on.
#: Later nnlearn versions may add keys with this prefix (a cluster's data partitions, a
#: compute plan); :func:`compare_exactness` compares every one it finds.
EXACT = "exact."
#: What a difference in each recorded key means for the resumed run.
EXACT_MEANING = {
    "exact.data_sha256": (
        "the data",
        "the resumed run goes on with other examples than the run it continues, so it will not end "
        "where that run would have",
    ),
    "exact.shards": (
        "the shards of examples the cost is summed in (one per thread)",
        "the costs and gradients differ in their last bits, so the run will not reach the uninterrupted "
        "run's weights bit for bit (cg and lbfgs replays will report the mismatch)",
    ),
    "exact.blas": (
        "the BLAS library",
        "its kernels round differently, so the run will not reach the uninterrupted run's weights bit for bit",
    ),
    "exact.numpy": ("the NumPy version", "its arithmetic may round differently in the last bits"),
    "exact.nnlearn": ("the nnlearn version", "its computations may differ, however slightly"),
}
# Recorded for the messages, compared through what it decides (the shards).
_EXACT_INFORMATION = {"exact.threads"}


def exactness_record(data, X, y, X_train, network, optimizer):
    """What a resumed run must find unchanged to reach the uninterrupted run's weights exactly.

    Returns
    -------
    dict
        Flat ``exact.*`` keys (a checkpoint's settings hold JSON scalars): the nnlearn,
        NumPy and BLAS versions, the threads and the shards of examples they sum the cost
        in, and the SHA-256 of the data (the file's bytes, or a built-in dataset's arrays).
    """
    from threadpoolctl import threadpool_info

    from ..threads import ShardedDataTerm, default_threads

    threads = default_threads()
    # Batches run on one thread (nnlearn.training); the full-batch data term cuts the
    # examples into shards as ShardedDataTerm does (it only slices them here).
    shards = 1 if optimizer in MINI_BATCH else len(ShardedDataTerm(X_train, X_train, network, threads=threads).shards)
    blas = sorted(
        f"{lib.get('internal_api')} {lib.get('version')} {lib.get('architecture') or ''}".strip()
        for lib in threadpool_info()
        if lib.get("user_api") == "blas"
    )
    return {
        "exact.nnlearn": __version__,
        "exact.numpy": np.__version__,
        "exact.blas": "; ".join(blas) or "unknown",
        "exact.threads": threads,
        "exact.shards": shards,
        "exact.data_sha256": data_digest(data, X, y),
    }


def data_digest(data, X, y):
    """SHA-256 of a data file's bytes, or of a built-in dataset's arrays (dtype, shape, values)."""
    digest = hashlib.sha256()
    if data in DATASETS:
        for array in (X, y):
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
    elif Path(data).is_dir():  # a shard directory: its manifest holds every shard's SHA-256
        digest.update((Path(data) / MANIFEST).read_bytes())
    else:
        with open(data, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def compare_exactness(saved, now):
    """How the resumed checkpoint's record (``saved``) differs from this run's (``now``).

    Returns
    -------
    list of dict
        ``{"what", "then", "now", "meaning"}`` per difference; one entry with ``what``
        "record" when the checkpoint has no record (an older nnlearn wrote it).
    """
    recorded = {key: value for key, value in saved.items() if key.startswith(EXACT)}
    if not recorded:
        return [
            {
                "what": "record",
                "then": None,
                "now": None,
                "meaning": "the checkpoint does not record what exactness depends on (an older nnlearn wrote "
                "it): whether the resumed run reaches the uninterrupted run's weights cannot be checked",
            }
        ]
    differences = []
    current = {key: value for key, value in now.items() if key.startswith(EXACT)}
    for key in sorted(set(recorded) | set(current)):
        if key in _EXACT_INFORMATION or recorded.get(key) == current.get(key):
            continue
        what, meaning = EXACT_MEANING.get(
            key, (key[len(EXACT) :], "this nnlearn cannot tell what that means for the resumed run")
        )
        then, here = recorded.get(key), current.get(key)
        if key == "exact.shards":
            then = f"{then} ({recorded.get('exact.threads')} threads)"
            here = f"{here} ({current.get('exact.threads')} threads)"
        differences.append({"what": what, "then": then, "now": here, "meaning": meaning})
    return differences


def difference_lines(path, differences):
    for d in differences:
        if d["then"] is None and d["now"] is None:
            yield f"resuming {path}: {d['meaning']}"
        else:
            then, now = _short(d["then"]), _short(d["now"])
            yield f"resuming {path}: {d['what']} differ: {then} then, {now} now; {d['meaning']}"


def _short(value):
    text = str(value)
    return text[:12] + "..." if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text
