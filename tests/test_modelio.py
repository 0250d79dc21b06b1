import json
import zipfile

import numpy as np
import pytest

from nnlearn import Model, init_random, load_model, load_octave_model, load_weights, save_model
from nnlearn.errors import ModelFileError, ShapeError
from nnlearn.model._octave import write_octave_weights
from nnlearn.persist._atomic import OutputExistsError


@pytest.fixture
def model():
    thetas = init_random((6, 4, 3, 10), rng=1)
    return Model(thetas, np.arange(10), lam=0.5, history={"cost": [1.0, 0.5], "optimizer": "cg"})


def test_a_saved_model_loads_back_bit_identical(model, tmp_path):
    path = save_model(model, tmp_path / "m.npz")
    loaded = load_model(path)
    for a, b in zip(model.thetas, loaded.thetas):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.classes, model.classes)
    assert loaded.lam == 0.5 and loaded.history == model.history


def test_float32_and_string_classes_survive(tmp_path):
    thetas = [t.astype(np.float32) for t in init_random((3, 2, 2), rng=0)]
    model = Model(thetas, np.array(["no", "yes"]))
    loaded = load_model(save_model(model, tmp_path / "m.npz"))
    assert loaded.thetas[0].dtype == np.float32
    assert loaded.classes.tolist() == ["no", "yes"]


def test_an_existing_file_is_not_overwritten(model, tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        save_model(model, path)
    assert path.read_bytes() == b"precious"
    save_model(model, path, overwrite=True)
    assert load_model(path).lam == 0.5


def test_a_file_that_would_need_unpickling_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, theta1=np.array([object()], dtype=object), meta=np.array("{}"))
    with pytest.raises(ModelFileError, match="unpickling"):
        load_model(path)


def test_a_newer_format_version_is_refused(model, tmp_path):
    path = save_model(model, tmp_path / "m.npz")
    with np.load(path) as data:
        arrays = dict(data)
    meta = json.loads(str(arrays["meta"]))
    meta["format_version"] = 99
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="newer"):
        load_model(path)


def test_altered_weights_are_detected(model, tmp_path):
    path = save_model(model, tmp_path / "m.npz")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["theta1"] = arrays["theta1"] + 1e-12
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="altered"):
        load_model(path)


def test_a_truncated_file_is_refused(model, tmp_path):
    path = save_model(model, tmp_path / "m.npz")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelFileError):
        load_model(path)


def test_weights_that_do_not_chain_are_refused():
    with pytest.raises(ShapeError, match="Theta2"):
        Model([np.zeros((5, 4)), np.zeros((3, 7))], np.arange(3))


def test_octave_export_puts_digit_zero_last_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    model = Model(init_random((5, 4, 10), rng=rng), np.arange(10))
    path = write_octave_weights(model, tmp_path / "w.mat")
    from scipy.io import loadmat

    theta2 = loadmat(path)["Theta2"]
    np.testing.assert_array_equal(theta2[9], model.thetas[1][0])  # unit 10 is digit 0
    np.testing.assert_array_equal(theta2[0], model.thetas[1][1])
    back = load_octave_model(path)
    X = rng.standard_normal((50, 5))
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    np.testing.assert_allclose(back.predict_proba(X)[:, np.argsort(back.classes)], model.predict_proba(X))


def test_load_weights_reads_both_kinds(model, ex4weights, tmp_path):
    assert load_weights(ex4weights).layer_sizes == (400, 25, 10)
    assert load_weights(save_model(model, tmp_path / "m.npz")).layer_sizes == (6, 4, 3, 10)


@pytest.mark.parametrize(("fmt", "compressed"), [("5", False), ("5", True), ("4", False)])
def test_octave_weights_are_read_among_other_variables(tmp_path, fmt, compressed):
    # Only the Theta variables are read (the others are skipped on their headers), as
    # Octave writes them: v5, deflated or not, or the old v4.
    from scipy.io import savemat
    from scipy.sparse import eye

    from nnlearn.model._octave import read_octave_weights

    rng = np.random.default_rng(0)
    thetas = {"Theta1": rng.normal(size=(5, 4)), "Theta2": rng.integers(0, 9, size=(3, 6)).astype(np.int16)}
    others = {"note": "hello", "grid": np.ones((2, 3))}
    if fmt == "5":
        others |= {"s": {"a": 1}, "c": np.array([1, "a"], dtype=object), "sp": eye(3).tocsc(), "b": np.array([True])}
    savemat(tmp_path / "w.mat", {**others, **thetas}, format=fmt, do_compression=compressed)
    read = read_octave_weights(tmp_path / "w.mat")
    assert [theta.dtype for theta in read] == [np.float64, np.float64]
    for got, expected in zip(read, thetas.values(), strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("abc", "not a numeric matrix"),
        (np.ones((2, 2)) * 1j, "not a numeric matrix"),
        (np.ones((2, 2, 2)), "not a matrix"),
    ],
)
def test_a_theta_that_is_no_real_matrix_is_refused(tmp_path, value, words):
    from scipy.io import savemat

    from nnlearn.model._octave import read_octave_weights

    savemat(tmp_path / "w.mat", {"Theta1": value}, do_compression=True)
    with pytest.raises(ModelFileError, match=f"Theta1 is {words}"):
        read_octave_weights(tmp_path / "w.mat")


def test_a_zip_that_is_not_a_model_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ModelFileError):
        load_model(path)


def test_written_files_get_the_usual_permissions(model, tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        path = save_model(model, tmp_path / "m.npz")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_saturated_networks_still_give_probabilities():
    model = Model([t * 1e4 for t in init_random((5, 4, 3), rng=0)], np.arange(3))
    X = np.random.default_rng(0).normal(size=(6, 5)) * 100
    proba = model.predict_proba(X)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # The prediction is a most probable class (saturated outputs may tie in probability;
    # the prediction then follows the larger weighted input).
    predicted = np.searchsorted(model.classes, model.predict(X))
    np.testing.assert_array_equal(proba[np.arange(6), predicted], proba.max(axis=1))


@pytest.mark.parametrize(
    "thetas, classes, message",
    [
        ([np.zeros((3, 4), dtype=int), np.zeros((2, 4))], [0, 1], "float"),
        ([np.zeros((2, 3, 4)), np.zeros((2, 4))], [0, 1], "2-D"),
        ([np.full((3, 4), np.nan), np.zeros((2, 4))], [0, 1], "NaN"),
        ([np.zeros((3, 4)), np.zeros((2, 4))], [[0, 1]], "1-D"),
    ],
)
def test_a_model_refuses_weights_that_are_not_a_network(thetas, classes, message):
    with pytest.raises(ShapeError, match=message):
        Model(thetas, np.array(classes))


# ------------------------------------------------------------------------ checkpoints


@pytest.fixture(scope="module")
def states():
    """The last state each optimiser family hands to ``checkpoint`` in a short run."""
    from nnlearn import load_digits8, train

    X, y = load_digits8()
    found = {}
    for optimizer in ("cg", "fmincg", "sgd", "adam"):
        kept = []
        train(X[:200], y[:200], hidden_layer_sizes=(4,), optimizer=optimizer, max_iter=3, checkpoint=kept.append)
        found[optimizer] = dict(kept[-1].state)
    return found


def checkpoint_meta(path):
    with np.load(path) as data:
        arrays = dict(data)
    return arrays, json.loads(str(arrays.pop("meta")))


def save_raw(path, arrays, content):
    """``arrays`` and the JSON text ``content`` as ``path`` (np.savez would add .npz to its name)."""
    with open(path, "wb") as f:
        np.savez(f, **arrays, meta=np.array(content))


def rewrite_checkpoint(path, arrays, meta):
    """Write ``arrays`` and ``meta`` with every checksum recomputed (as anyone could)."""
    from nnlearn.persist._archive import write_archive

    meta = {key: value for key, value in meta.items() if key not in ("format", "format_version", "sha256")}
    write_archive(path, "nnlearn-checkpoint", arrays, meta, overwrite=True)


@pytest.mark.parametrize("optimizer", ["cg", "fmincg", "sgd", "adam"])
def test_a_checkpoint_round_trips_with_its_layout(states, tmp_path, optimizer):
    from nnlearn.training._checkpoints import STATE_LAYOUT, load_checkpoint, save_checkpoint

    state = states[optimizer]
    path = save_checkpoint(tmp_path / "c.ckpt", {"optimizer": optimizer, "data": "digits8"}, state)
    _, meta = checkpoint_meta(path)
    kind = "scipy" if optimizer == "cg" else optimizer
    assert meta["state_layout"] == {"version": STATE_LAYOUT, "kind": kind}
    settings, loaded = load_checkpoint(path)
    assert settings == {"optimizer": optimizer, "data": "digits8"} and set(loaded) == set(state)
    for name, value in state.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(loaded[name], value)
        else:
            assert loaded[name] == value, name


@pytest.mark.parametrize("optimizer", ["cg", "fmincg", "sgd", "adam"])
@pytest.mark.parametrize("marker", ["none", "version-1", "format-1"])
def test_a_checkpoint_of_an_older_state_layout_is_refused(states, tmp_path, optimizer, marker):
    from nnlearn.training._checkpoints import load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "c.ckpt", {"optimizer": optimizer}, states[optimizer])
    arrays, meta = checkpoint_meta(path)
    if marker == "none":
        del meta["state_layout"]
        rewrite_checkpoint(path, arrays, meta)
    elif marker == "version-1":
        meta["state_layout"]["version"] = 1
        rewrite_checkpoint(path, arrays, meta)
    else:  # as nnlearn 0.1 wrote it: format 1, no marker, no checksum of the metadata
        del meta["state_layout"]
        del meta["sha256"]["meta"]
        meta["format_version"] = 1
        save_raw(path, arrays, json.dumps(meta))
    with pytest.raises(ModelFileError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert "older layout" in message and "restart the run with this nnlearn version" in message
    assert len(message.splitlines()) == 1


def test_a_checkpoint_of_a_newer_state_layout_is_refused(states, tmp_path):
    from nnlearn.training._checkpoints import STATE_LAYOUT, load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "c.ckpt", {}, states["fmincg"])
    arrays, meta = checkpoint_meta(path)
    meta["state_layout"]["version"] = STATE_LAYOUT + 1
    rewrite_checkpoint(path, arrays, meta)
    with pytest.raises(ModelFileError, match="newer layout"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("optimizer", "change", "words"),
    [
        ("adam", lambda arrays, state: arrays.pop("opt.m"), ["lacks opt.m"]),
        ("sgd", lambda arrays, state: state.pop("rng"), ["lacks rng"]),
        ("cg", lambda arrays, state: arrays.pop("x0"), ["lacks x0"]),
        ("fmincg", lambda arrays, state: state.update(momentum=0.9), ["unknown momentum"]),
        ("fmincg", lambda arrays, state: state.update(searches="3"), ["state.searches"]),
        ("fmincg", lambda arrays, state: state.update(history=[1.0, "x"]), ["state.history[1]"]),
        ("sgd", lambda arrays, state: state["rng"].update(bit_generator="MT19937"), ["state.rng.bit_generator"]),
        ("adam", lambda arrays, state: state.update({"opt.t": -1}), ["state.opt.t"]),
        ("adam", lambda arrays, state: arrays.update({"opt.v": arrays["opt.v"][:-1]}), ["one length"]),
        ("fmincg", lambda arrays, state: arrays.update(grad=arrays["grad"].astype(int)), ["float vectors"]),
    ],
)
def test_a_checkpoint_whose_state_is_not_what_its_optimiser_needs_is_refused(
    states, tmp_path, optimizer, change, words
):
    from nnlearn.training._checkpoints import load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "c.ckpt", {"optimizer": optimizer}, states[optimizer])
    arrays, meta = checkpoint_meta(path)
    change(arrays, meta["state"])
    rewrite_checkpoint(path, arrays, meta)
    with pytest.raises(ModelFileError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert "restart the run with this nnlearn version" in message
    for word in words:
        assert word in message


def test_a_checkpoint_whose_settings_name_another_optimiser_is_refused(states, tmp_path):
    from nnlearn.training._checkpoints import load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "c.ckpt", {"optimizer": "adam"}, states["sgd"])
    with pytest.raises(ModelFileError, match="state is sgd's, not adam's"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("settings", "word"),
    [
        ({"seed": "0"}, "settings.seed"),
        ({"hidden": [25, 0]}, "settings.hidden[1]"),
        ({"lambda": -1}, "settings.lambda"),
        ({"data": "a\nb"}, "settings.data"),
        ({"test_size": 1.5}, "settings.test_size"),
        ({"extra": {"nested": True}}, "settings.extra"),
    ],
)
def test_checkpoint_settings_outside_the_schema_are_refused(states, tmp_path, settings, word):
    from nnlearn.training._checkpoints import load_checkpoint, save_checkpoint

    with pytest.raises(ModelFileError, match="cannot be saved"):
        save_checkpoint(tmp_path / "c.ckpt", settings, states["fmincg"])
    path = save_checkpoint(tmp_path / "c.ckpt", {}, states["fmincg"])
    arrays, meta = checkpoint_meta(path)
    meta["settings"] = settings
    with np.load(path) as data:
        original = dict(data)
    meta["sha256"] = json.loads(str(original["meta"]))["sha256"]
    save_raw(path, arrays, json.dumps(reseal_checkpoint(meta)))
    with pytest.raises(ModelFileError, match="refused") as error:
        load_checkpoint(path)
    assert word in str(error.value)


def reseal_checkpoint(meta):
    import hashlib

    digests = {name: value for name, value in meta["sha256"].items() if name != "meta"}
    canonical = json.dumps({**meta, "sha256": digests}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    meta["sha256"]["meta"] = hashlib.sha256(canonical.encode("ascii")).hexdigest()
    return meta


def test_a_state_in_no_known_layout_is_not_saved(tmp_path):
    from nnlearn.training._checkpoints import save_checkpoint

    with pytest.raises(ModelFileError, match="not an optimiser state"):
        save_checkpoint(tmp_path / "c.ckpt", {}, {"x": np.zeros(3), "fun": 1.0})
    assert not (tmp_path / "c.ckpt").exists()


def test_every_optimiser_has_a_state_layout():
    from nnlearn import optim as settings
    from nnlearn.training._checkpoints import KIND_OF, LAYOUTS

    assert set(KIND_OF) == set(settings.FULL_BATCH) | set(settings.MINI_BATCH)
    assert set(KIND_OF.values()) == set(LAYOUTS)
