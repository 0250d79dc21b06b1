"""Helpers shared by the verbs: output, loading weights and data, fitting checks, and
what the course states."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..datasets._builtin import DATASETS, load_data, split
from ..errors import NNLearnError, ParameterError, ShapeError
from ..persist._atomic import OutputExistsError, SpecialFileError, check_replaceable, probe_directory

DEFAULT_MODEL = "nnlearn-model.npz"
DATA_HELP = f"dataset name ({' or '.join(DATASETS)}) or a .mat, .npz or .csv file (label last)"
MODEL_SUFFIXES = (".npz", ".mat")
#: How the shipped pretrained weights are named where a weights file would be (JSON, errors).
PRETRAINED = "pretrained"
PRETRAINED_TEXT = "the course's pretrained ex4weights.mat, shipped with nnlearn"

# What the course states, and how close counts as matched. Costs: +-0.01, wide enough for
# the embedded MNIST stand-in (0.283663 and 0.379804 with the course's weights) and far
# narrower than the gap to any other weights. Accuracy of the pretrained weights: the
# course's ~97.5% on its data; the embedded digits give 97.60%, so within 0.5 points
# matches. Training accuracy: the notebook's 99.5% came from one random start; other
# starts land a few tenths either side, so 99.0% or more matches.
COURSE = {
    "cost0": 0.287629,
    "cost1": 0.383770,
    "sigmoid_gradient": 0.25,
    "gradcheck": 1e-9,
    "pretrained_accuracy": 0.975,
    "accuracy": 0.995,
}
COST_TOLERANCE = 0.01
PRETRAINED_ACCURACY_MARGIN = 0.005
ACCURACY_MARGIN = 0.005


def emit(args, payload, text):
    """Print ``payload`` as one JSON object with ``--json``, else the text lines."""
    if args.json:
        print(json.dumps(payload, default=jsonable))
    else:
        print(text if isinstance(text, str) else "\n".join(text))


def jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def refuse_existing(path, force, option="--out"):
    """Refuse an output that cannot or must not be written, before any work is done.

    Checked in turn: the path is no directory and lies under no file; it is no device,
    FIFO or socket (never replaced, even with ``--force``); it does not exist unless
    ``force``; and its directory takes a file (:func:`nnlearn.persist._atomic.probe_directory`:
    permissions, a read-only file system, a name too long).
    """
    path = Path(path)
    try:
        is_dir = path.is_dir()
        parent = next((p for p in path.parents if p.exists()), None)
    except OSError as exc:  # a name too long for the system, a loop of links
        raise ParameterError(f"{option} {path}: cannot write there ({exc.strerror or exc})") from None
    if is_dir:
        raise ParameterError(f"{option} {path} is a directory; give a file name")
    if parent is not None and not parent.is_dir():
        raise ParameterError(f"{option} {path}: {parent} is a file, not a directory")
    try:
        check_replaceable(path, force)
    except SpecialFileError:
        raise ParameterError(
            f"{option} {path} is a FIFO, device or other special file; nnlearn replaces regular files only, "
            "even with --force"
        ) from None
    except OutputExistsError:
        raise OutputExistsError(
            f"{path} already exists; pass --force to overwrite it or {option} to choose another"
        ) from None
    try:
        probe_directory(path)
    except OSError as exc:
        where = exc.filename or path
        raise ParameterError(f"{option} {path}: cannot write there ({where}: {exc.strerror or exc})") from None


def _identity(path):
    """The file ``path`` names, as (device, inode); None when it names none."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):  # missing, a name the system refuses, a link loop
        return None
    return info.st_dev, info.st_ino


def same_path(a, b):
    """Whether paths ``a`` and ``b`` (either may be None) name the same file: by identity
    when both exist (a link, a hard link, ``./x``), else by their resolved names."""
    if a is None or b is None:
        return False
    ia, ib = _identity(a), _identity(b)
    if ia is not None and ib is not None:
        return ia == ib
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError, ValueError):
        return False


def _within(path, directory):
    """Whether the existing ``path`` lies inside ``directory`` (its resolved ancestors)."""
    inside = _identity(directory)
    try:
        parents = Path(os.path.realpath(path)).parents
    except (OSError, ValueError):
        return False
    return inside is not None and any(_identity(parent) == inside for parent in parents)


def refuse_overwriting_inputs(inputs, outputs):
    """Refuse, whatever ``--force`` says, an output that is one of the verb's inputs.

    Files are compared by identity (device and inode), not by spelling: a symbolic or
    hard link to an input, or ``./x`` for ``x``, is that input. An existing file inside
    an input directory (a shard directory's files) counts as that input, and an input
    inside an output directory (``nnlearn shard``'s OUT, replaced as a whole) as that
    output.

    Parameters
    ----------
    inputs, outputs : iterable of (label, path)
        The option or argument (``--data``, ``MODEL``) and its value; pairs whose path is
        None, or a built-in dataset's name, are left out.

    Raises
    ------
    ParameterError
        Naming both.
    """
    inputs = [(label, path) for label, path in inputs if path is not None and path not in DATASETS]
    for out_label, out in outputs:
        if out is None or _identity(out) is None:
            continue  # a new file is no input
        for in_label, given in inputs:
            clash = _clash(out_label, out, in_label, given)
            if clash:
                raise ParameterError(
                    f"{clash}: nnlearn never writes over its own input, even with --force; "
                    f"give {out_label} another name"
                )


def _clash(out_label, out, in_label, given):
    """How output ``out`` would write over input ``given``, in words; None when it would not."""
    if _identity(given) is None:
        return None  # a missing input is reported as such when it is read
    if same_path(out, given):
        if str(out) == str(given):
            return f"{out_label} {out} is also {in_label}"
        return f"{out_label} {out} and {in_label} {given} are the same file"
    if os.path.isdir(given) and _within(out, given):
        return f"{out_label} {out} lies inside {in_label} {given}"
    if os.path.isdir(out) and _within(given, out):
        return f"{out_label} {out} holds {in_label} {given}"
    return None


def note_saved(args, what, path):
    """Record that the verb saved ``what`` (``the model``) to ``path``: said if it then fails."""
    args.saved = [*getattr(args, "saved", []), f"{what} was saved to {path}"]


@contextmanager
def writing(what):
    """Report a failure to write ``what`` (a file, in words) as a failure while working,
    :class:`~nnlearn.cli._streams.WorkFailed` (exit status 1), never as a mistake in the input."""
    from ._streams import WorkFailed

    try:
        yield
    except OSError as exc:  # a full disk, a directory made read-only meanwhile, a file created meanwhile
        why = exc.strerror if not isinstance(exc, NNLearnError) and exc.strerror else str(exc).splitlines()[0]
        raise WorkFailed(f"cannot write {what} ({why})") from None


#: A MODEL or --weights argument's help: the files, or the name of the shipped weights.
MODEL_HELP = f"nnlearn model (.npz), Octave weights (.mat), or {PRETRAINED} (the course's weights, inside nnlearn)"


def names_pretrained(path) -> bool:
    """Whether a model argument is :data:`PRETRAINED`, the shipped weights' name. Where a
    file of that name is in the current directory too, which is meant cannot be told:
    ParameterError, saying to write ``./pretrained`` for the file."""
    if str(path) != PRETRAINED:
        return False
    if os.path.lexists(PRETRAINED):
        raise ParameterError(
            f"{PRETRAINED!r} names the course's weights inside nnlearn, and a file named {PRETRAINED} is in this "
            f"directory too: write ./{PRETRAINED} for the file"
        )
    return True


def load_model_file(path):
    """An nnlearn model (.npz) or Octave weights (.mat) as a Model; ``pretrained``: the course's weights."""
    from ..errors import ModelFileError
    from ..model._octave import load_pretrained, load_weights

    if names_pretrained(path):
        return load_pretrained()
    if Path(path).suffix.lower() not in MODEL_SUFFIXES:
        raise ModelFileError(f"{path}: weights must be an nnlearn model (.npz) or Octave weights (.mat)")
    return load_weights(path)


def load_weights_or_pretrained(path):
    """The model in weights file ``path``, or the shipped pretrained weights when it is None;
    and its name for messages (the path, or :data:`PRETRAINED`)."""
    if path is None:
        from ..model._octave import load_pretrained

        return load_pretrained(), f"{PRETRAINED} ex4weights.mat"
    return load_model_file(path), path


def is_pretrained(model):
    """True when ``model`` holds exactly the shipped pretrained weights (from whatever file)."""
    from ..model._octave import load_pretrained

    if model.layer_sizes != (400, 25, 10) or not model.network.is_course:
        return False
    try:
        pretrained = load_pretrained()
    except NNLearnError:  # an altered installed copy: then nothing is the pretrained weights
        return False
    return np.array_equal(model.classes, pretrained.classes) and all(
        np.array_equal(a, b) for a, b in zip(model.thetas, pretrained.thetas, strict=True)
    )


def architecture(model):
    """``400-25-10``, with the kinds when they are not the course's (``400-100-10 relu/softmax``)."""
    network = model.network
    sizes = "-".join(str(s) for s in network.layer_sizes)
    return sizes if network.is_course else f"{sizes} {network.activation}/{network.output}"


def check_fit(model, X, y, weights, data):
    """ShapeError, naming both shapes, when the weights cannot be applied to the data."""
    rows, cols = model.thetas[0].shape
    if X.shape[1] != cols - 1:
        raise ShapeError(
            f"weights {weights} (Theta1 {rows}x{cols}, {cols - 1} inputs) do not fit data "
            f"{data} ({X.shape[0]}x{X.shape[1]}, {X.shape[1]} features)"
        )
    if y is not None:
        unknown = set(np.unique(y).tolist()) - set(model.classes.tolist())
        if unknown:
            raise ShapeError(
                f"weights {weights} (output labels {model.classes.tolist()}) do not fit data "
                f"{data}: its labels {sorted(unknown, key=str)} have no output unit"
            )


def split_data(X, y, test_size, seed):
    """The stratified split, or everything for training when test_size is 0."""
    if test_size == 0:
        return X, None, y, None
    try:
        if type(X).__module__.startswith("dask."):  # a shard directory: split within each shard
            from ..datasets._shards import split_by_shard

            return split_by_shard(X, y, test_size, seed)
        return split(X, y, test_size=test_size, seed=seed)
    except ValueError as exc:  # scikit-learn: too few examples per class for the split
        raise ParameterError(f"--test-size {test_size} cannot split these data: {exc}") from None


def evaluation_data(args, model):
    """The data a model is judged on, and a description of them.

    Without ``--data``: the held-out part of the split the model was trained on, when
    ``nnlearn train`` recorded it on a built-in dataset (``DATASETS``), else all of the
    embedded digits. A recorded data *file* is shown, never opened: the model file is not
    the user's word (anyone can edit it and recompute its checksums), and what it names
    could be a FIFO (a hang), a device or someone else's file. Re-evaluating on it takes
    ``--data FILE``; when FILE is the recorded file (the same resolved path), the recorded
    split applies, so the model is judged on its held-out part again.

    ``--data NAME`` gives all of a built-in dataset (leave it out for the held-out part),
    ``--data FILE`` all of any other file.

    Raises
    ------
    ParameterError
        The model records a data file and ``--data`` was not given, or the recorded split
        cannot be made of the data given.
    """
    history = model.history  # checked against the model file's schema when it was loaded
    recorded = history.get("data")
    recorded_file = recorded is not None and recorded not in DATASETS
    if args.data is None:
        if recorded_file:
            raise ParameterError(
                f"{args.model} records its training data as the file {recorded}, which nnlearn does not open on "
                "a model file's word; pass --data FILE to evaluate on it (the recorded split applies when FILE "
                "is that file)"
            )
        source = recorded or "digits20"
    else:
        source = args.data
    X, y = load_data(source)
    if args.data is not None:
        same = False
        if recorded_file and args.data not in DATASETS:
            try:  # resolving reads directory entries and links, never the file itself
                same = Path(args.data).resolve() == Path(recorded).resolve()
            except (OSError, RuntimeError, ValueError):  # a link loop, a name the system refuses
                same = False
        if not same:
            return X, y, source
    test_size = history.get("test_size", 0) or 0
    if test_size > 0 and "split_seed" in history:
        try:
            _, X, _, y = split(X, y, test_size=test_size, seed=history["split_seed"])
        except ValueError as exc:  # scikit-learn: a part would be empty, or a class too small for it
            raise ParameterError(
                f"the model's recorded split (test size {test_size:g}, seed {history['split_seed']}) cannot be "
                f"made of {source}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        return X, y, f"{source}, held-out {test_size:.0%} (seed {history['split_seed']})"
    return X, y, source


def data_role(args, model):
    """What the data :func:`evaluation_data` picks are to the model, so that no verb calls
    training data test data.

    Returns
    -------
    role : {"test", "training", "overlap", "other"}
        "test": the held-out part of its recorded split; "training": the very data it
        was trained on (``--test-size 0``: it has no held-out part); "overlap": all of the
        dataset it was trained on, its training examples among them; "other": data not
        known to be any of these.
    note : str or None
        Says so in words, for the text output.
    """
    history = model.history
    recorded = history.get("data")
    test_size = history.get("test_size")
    if recorded is None or test_size is None:
        return "other", None
    same = args.data is None
    if args.data is not None and recorded not in DATASETS and args.data not in DATASETS:
        try:
            same = Path(args.data).resolve() == Path(recorded).resolve()
        except (OSError, RuntimeError, ValueError):
            same = False
    if test_size == 0 and (same or args.data == recorded):
        return (
            "training",
            "the model's own training data (it has no held-out part): how well it fits, not how it generalises",
        )
    if same and "split_seed" in history:
        return "test", None
    if args.data == recorded:
        return "overlap", f"includes the model's training examples (all but its held-out {test_size:.0%})"
    return "other", None


def percent(fraction):
    return "n/a" if fraction is None else f"{100 * fraction:.2f}%"


def import_report():
    try:
        from ..reporting import _report as report
    except ImportError as exc:
        raise NNLearnError(f"HTML reports need nnlearn.reporting._report, which cannot be imported ({exc})") from None
    return report
