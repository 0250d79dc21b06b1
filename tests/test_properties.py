"""Property tests: the maths and the loaders hold over random shapes, values and bytes."""

import builtins
import copy
import hashlib
import io
import json
import os
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nnlearn import Model
from nnlearn.core import cost, cost_and_gradient, init_random, one_hot, pack, unpack
from nnlearn.core.gradcheck import numerical_gradient, relative_difference
from nnlearn.datasets._files import load_csv, load_mat, load_npz
from nnlearn.errors import NNLearnError
from nnlearn.model._model import HISTORY_FIELDS, load_model
from nnlearn.model._octave import read_octave_weights

layer_sizes = st.lists(st.integers(1, 6), min_size=2, max_size=5).map(tuple)
lams = st.floats(0.0, 10.0)


def problem(sizes, seed, m):
    rng = np.random.default_rng(seed)
    thetas = init_random(sizes, epsilon=1.0, rng=rng)
    X = rng.normal(size=(m, sizes[0]))
    Y = one_hot(rng.integers(0, sizes[-1], m), np.arange(sizes[-1]))[1]
    return thetas, X, Y


@settings(max_examples=40, deadline=None)
@given(sizes=layer_sizes, lam=lams, seed=st.integers(0, 2**32 - 1), m=st.integers(1, 8))
def test_gradient_check_passes_for_random_networks(sizes, lam, seed, m):
    thetas, X, Y = problem(sizes, seed, m)
    _, grads = cost_and_gradient(thetas, X, Y, lam)
    numgrad = numerical_gradient(lambda v: cost(unpack(v, sizes), X, Y, lam), pack(thetas))
    grad = pack(grads)
    # Where the gradient vanishes (tiny networks, saturated units), compare absolutely.
    if np.linalg.norm(grad) < 1e-6:
        assert np.linalg.norm(numgrad - grad) < 1e-8
    else:
        assert relative_difference(numgrad, grad) < 1e-6


@settings(max_examples=50, deadline=None)
@given(sizes=layer_sizes, order=st.sampled_from("CF"), seed=st.integers(0, 2**32 - 1))
def test_packing_round_trips(sizes, order, seed):
    thetas = init_random(sizes, rng=seed)
    restored = unpack(pack(thetas, order), sizes, order)
    assert all(np.array_equal(a, b) for a, b in zip(thetas, restored))


@settings(max_examples=30, deadline=None)
@given(sizes=layer_sizes, scale=st.sampled_from([1e2, 1e4, 1e6]), seed=st.integers(0, 2**32 - 1))
def test_extreme_weights_and_inputs_keep_cost_and_gradient_finite(sizes, scale, seed):
    thetas, X, Y = problem(sizes, seed, m=5)
    J, grads = cost_and_gradient([t * scale for t in thetas], X * scale, Y, 1.0)
    assert np.isfinite(J)
    assert all(np.all(np.isfinite(g)) for g in grads)


LOADERS = [
    (load_csv, ".csv"),
    (load_npz, ".npz"),
    (load_mat, ".mat"),
    (load_model, ".npz"),
    (read_octave_weights, ".mat"),
]


def check_loaded(loader, loaded):
    """What a loader returns when it does not refuse a file is what it documents."""
    if loader is load_model:
        assert isinstance(loaded, Model)
        assert all(np.all(np.isfinite(theta)) for theta in loaded.thetas)
    elif loader is read_octave_weights:
        assert loaded and all(theta.ndim == 2 and theta.dtype == np.float64 for theta in loaded)
        assert all(np.all(np.isfinite(theta)) for theta in loaded)
    else:
        X, y = loaded
        assert X.ndim == 2 and X.shape[0] == y.shape[0] >= 1 and X.shape[1] >= 1
        assert X.dtype.kind == "f" and np.all(np.isfinite(X))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), which=st.integers(0, len(LOADERS) - 1))
def test_loaders_given_random_bytes_load_or_raise_the_documented_error(tmp_path, data, which):
    loader, suffix = LOADERS[which]
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    try:
        loaded = loader(path)
    except NNLearnError:
        return
    check_loaded(loader, loaded)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory, ex4weights):
    from scipy.io import savemat

    from nnlearn import Model, save_model

    folder = tmp_path_factory.mktemp("valid")
    X, y = np.arange(12.0).reshape(4, 3), np.array([1, 2, 1, 2])
    np.savez(folder / "d.npz", X=X, y=y)
    savemat(folder / "d.mat", {"X": X, "y": y[:, None]})
    (folder / "d.csv").write_text("\n".join(",".join(map(str, [*row, label])) for row, label in zip(X, y)))
    save_model(Model(init_random((3, 2, 2), rng=0), np.array([1, 2])), folder / "m.npz")
    return {
        load_csv: (folder / "d.csv").read_bytes(),
        load_npz: (folder / "d.npz").read_bytes(),
        load_mat: (folder / "d.mat").read_bytes(),
        load_model: (folder / "m.npz").read_bytes(),
        read_octave_weights: ex4weights.read_bytes(),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, len(LOADERS) - 1), cut=st.floats(0.0, 1.0), flip=st.integers(0, 10**6))
def test_loaders_given_truncated_or_corrupted_files_raise_the_documented_error(tmp_path, valid_files, which, cut, flip):
    loader, suffix = LOADERS[which]
    data = bytearray(valid_files[loader])
    data = data[: int(len(data) * cut)]
    if data and flip % 2:
        data[flip % len(data)] ^= 0xFF
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(bytes(data))
    try:
        loaded = loader(path)
    except NNLearnError:
        return
    check_loaded(loader, loaded)


# ------------------------------------------------ random edits of a model file's metadata
#
# Anyone can edit a model file's metadata and recompute its unkeyed checksums; the schema
# is what must hold. Random edits (values anywhere, deleted keys, deep nesting, numbers
# beyond any float, NaN as raw text, strings naming /dev/zero or a FIFO) must give a model
# or ModelFileError, nothing else, and loading (and then choosing the evaluation data the
# way `nnlearn evaluate` does) must open no file but the model file itself.


def resealed(meta):
    """``meta`` with ``sha256["meta"]`` recomputed as docs/network.md describes."""
    digests = meta.get("sha256")
    if isinstance(digests, dict):
        body = {**meta, "sha256": {name: value for name, value in digests.items() if name != "meta"}}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        digests["meta"] = hashlib.sha256(canonical.encode("ascii")).hexdigest()
    return meta


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A model file whose history names a FIFO, and the paths edits may name."""
    # The split used once now: its first call imports modules and looks up plugins'
    # entry points, files the test's guard against opening would count though the
    # metadata named none of them.
    from nnlearn.datasets._builtin import split

    split(np.zeros((8, 2)), np.arange(8) % 2, test_size=0.5, seed=0)
    folder = tmp_path_factory.mktemp("planted")
    fifo = folder / "fifo.npz"
    os.mkfifo(fifo)
    (folder / "sentinel.npz").write_bytes(b"never to be read")
    history = {
        "cost": [1.5, 1.0],
        "optimizer": "sgd",
        "max_iter": 2,
        "n_iter": 2,
        "n_evals": 8,
        "message": "maximum number of epochs (2) reached",
        "stop_reason": "max_iter",
        "interrupted": False,
        "seed": 0,
        "dtype": "float64",
        "epsilon_init": 0.12,
        "seconds": 0.01,
        "batch_size": 10,
        "learning_rate": None,
        "validation_scores": [],
        "data": str(fifo),
        "test_size": 0.25,
        "split_seed": 0,
    }
    model = Model(init_random((4, 3, 3), rng=0), np.array([0, 1, 2]), lam=1.0, history=history)
    path = model.save(folder / "model.npz")
    with np.load(path) as data:
        arrays = dict(data)
    # Mixed, as hypothesis draws the first ones more often.
    names = ["digits8", str(fifo), "/dev/zero", str(folder / "sentinel.npz"), "digits20", "/dev/urandom"]
    return {"arrays": arrays, "meta": json.loads(str(arrays["meta"])), "names": names}


KNOWN_PATHS = [
    ("lam",),
    ("format_version",),
    ("network",),
    ("network", "activation"),
    ("network", "output"),
    ("history",),
    ("sha256",),
    ("sha256", "theta1"),
    *[("history", key) for key in ("cost", "data", "test_size", "split_seed", "seed", "seconds", "n_iter", "message")],
]
# Raw JSON the json module would never write from Python values (or not at these sizes).
RAW_TOKENS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "9" * 5000,  # more digits than Python converts to an int
    "9" * 400,  # an integer beyond any float
    "[" * 50_000 + "]" * 50_000,  # beyond the parser's recursion limit
    "[" * 12 + "]" * 12,
    '{"a": {"b": {"c": {"d": {"e": [[[1]]]}}}}}',
    '"' + "x" * 5000 + '"',
    '"\\u0000\\u001b[2J"',
    '"\\ud800"',
]
RAW = "\x00raw\x00"  # a placeholder string, replaced in the JSON text by a raw token


def json_values(names):
    """Any JSON value, weighted towards values a field might plausibly hold."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(-(2**70), 2**140),
        st.floats(),  # NaN and the infinities too, written as raw NaN/Infinity
        st.text(max_size=12),
        st.sampled_from(names),
        st.just(RAW),
    )
    plausible = st.sampled_from([0, 1, 2, -1, 0.5, 1e-9, 0.999, 2**32, 2**53 + 1, 1e300, "", "auto", [], [1.0, 0.5]])
    containers = st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
        max_leaves=12,
    )
    return st.one_of(plausible, scalars, st.sampled_from(names), containers)


HISTORY_KEYS = [*HISTORY_FIELDS, "note", "extra"]
# Values near the edges of what the history's fields allow, on both sides.
EDGES = {
    "test_size": [0, 0.25, 0.5, 0.95, 1e-9, 1, -0.1, float("nan")],
    "split_seed": [0, 7, 2**32 - 1, 2**32, -1, 1.0],
    "seed": [None, 0, 2**64 - 1, 2**64],
    "seconds": [0, 1.5, 1e10, 1e11, -1e-9],
    "cost": [[], [1.0], [float("nan"), float("inf")], [1, 2], [10**400], [-1e308, 1e308], [0, 1e100], [1e100, 5e-324]],
    "n_iter": [0, 5, 2**53, 2**53 + 1, True],
}


def random_edit(data, meta, names):
    """Change ``meta`` in place once: set what evaluation_data reads, the cost history
    report draws, a known field, a history key or a value anywhere, or delete a key."""
    kind = data.draw(st.sampled_from(["evaluation", "cost", "known", "history", "anywhere", "delete"]))
    if kind == "evaluation":  # what evaluation_data reads, near the edges of the schema
        key = data.draw(st.sampled_from(["data", "test_size", "split_seed"]))
        if isinstance(meta.get("history"), dict):
            meta["history"][key] = data.draw(st.sampled_from(EDGES.get(key, names)))
        return
    if kind == "cost":  # what report draws: edges, and any floats (extremes, NaN, signs)
        if isinstance(meta.get("history"), dict):
            meta["history"]["cost"] = data.draw(st.sampled_from(EDGES["cost"]) | st.lists(st.floats(), max_size=5))
        return
    if kind == "known":
        *parents, key = data.draw(st.sampled_from(KNOWN_PATHS))
    elif kind == "history":
        parents, key = ["history"], data.draw(st.sampled_from(HISTORY_KEYS) | st.text(max_size=8))
        if isinstance(meta.get("history"), dict) and key in EDGES:
            meta["history"][key] = data.draw(st.sampled_from(EDGES[key]) | json_values(names))
            return
    else:
        parents, key = [], None
        node = meta
        # Walk down a random number of levels, through whatever containers are there.
        while isinstance(node, (dict, list)) and node and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
            parents.append(key)
            node = node[key]
        if not parents:
            key = data.draw(st.sampled_from([*meta, "extra", "data"]))
        else:
            *parents, key = parents
    node = meta
    for step in parents:
        if not isinstance(node, (dict, list)):
            return
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return
    if kind == "delete":
        if isinstance(node, dict):
            node.pop(key, None)
        return
    value = data.draw(json_values(names))
    if isinstance(node, dict) or (isinstance(node, list) and isinstance(key, int) and key < len(node)):
        node[key] = value


@contextmanager
def no_file_opened_but(allowed):
    """Record (and refuse) every open of a path other than ``allowed``: built-in open,
    io.open (pathlib, zipfile) and os.open."""
    opened = []
    allowed = os.path.realpath(allowed)

    def guard(real):
        def guarded(file, *args, **kwargs):
            if not isinstance(file, int) and os.path.realpath(os.fspath(file)) != allowed:
                opened.append(os.fspath(file))
                raise PermissionError(f"the test refuses to open {file}")
            return real(file, *args, **kwargs)

        return guarded

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, "open", guard(builtins.open))
        patch.setattr(io, "open", guard(io.open))
        patch.setattr(os, "open", guard(os.open))
        yield opened


def read_like_nnlearn(model):
    """What report, evaluate and plots read of a history, read the way they read it (the
    report's cost figure aside: see draw_like_report)."""
    history = model.history
    shown = [str(value).encode("utf-8") for value in history.values()]  # printable: no lone surrogates
    costs = history.get("cost") or []
    if len(costs):
        shown.append(f"{costs[-1]:.6f}".encode())
        np.asarray(costs, dtype=np.float64)
    if "seconds" in history:
        shown.append(f"{history['seconds']:.2f} s".encode())
    shown.append(f"{history.get('test_size', 0) or 0:.0%}".encode())
    json.dumps(history).encode("utf-8")
    return shown


def draw_like_report(model):
    """The report's cost figure of a model's history, drawn to pixels: matplotlib once
    failed on costs the schema allowed ("arange: cannot compute length"). An overflow on
    the way is a failure too, not a warning."""
    import warnings

    from nnlearn.reporting._training_plots import plot_cost_history

    if not len(model.history.get("cost") or []):  # report draws no figure then
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        plot_cost_history(model).canvas.draw()


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_edits_of_model_metadata_load_or_raise_model_file_error_and_open_nothing(tmp_path, planted, data):
    from types import SimpleNamespace

    from nnlearn.cli import _common as common
    from nnlearn.errors import ModelFileError, ParameterError

    meta = copy.deepcopy(planted["meta"])
    for _ in range(data.draw(st.integers(1, 2))):
        random_edit(data, meta, planted["names"])
    if data.draw(st.integers(0, 4)):  # mostly as an editor would: checksum recomputed
        resealed(meta)
    try:
        content = json.dumps(meta)
    except ValueError:  # an integer beyond the digits Python prints
        return
    while json.dumps(RAW) in content:
        content = content.replace(json.dumps(RAW), data.draw(st.sampled_from(RAW_TOKENS)), 1)
    path = tmp_path / "edited.npz"
    np.savez(path, **{**planted["arrays"], "meta": np.array(content)})

    def load_data(source):  # nnlearn.cli._common's, for built-in names only
        assert source in ("digits8", "digits20"), f"evaluation_data would open {source!r}"
        rng = np.random.default_rng(0)
        return rng.normal(size=(60, 4)), np.arange(60) % 3

    with no_file_opened_but(path) as opened, pytest.MonkeyPatch.context() as patch:
        patch.setattr(common, "load_data", load_data)
        try:
            model = load_model(path)
        except ModelFileError as exc:
            assert len(str(exc).splitlines()) == 1
            event("refused: " + ("schema" if "refused:" in str(exc) else str(exc).split(": ", 1)[1][:30]))
            model = None
        if model is not None:
            read_like_nnlearn(model)
            try:
                common.evaluation_data(SimpleNamespace(data=None, model=str(path)), model)
                event("loaded, evaluated on a built-in dataset")
            except ParameterError as exc:
                assert len(str(exc).splitlines()) == 1
                event("loaded, --data asked for" if "--data FILE" in str(exc) else "loaded, split refused")
    assert opened == []
    if model is not None:  # outside the guard: matplotlib opens its fonts
        draw_like_report(model)
