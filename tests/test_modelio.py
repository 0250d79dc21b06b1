import json
import zipfile

import numpy as np
import pytest

from nnlearn import Model, init_random, load_model, load_octave_model, load_weights, save_model
from nnlearn.errors import ModelFileError, ShapeError
from nnlearn.files import OutputExistsError
from nnlearn.modelio import write_octave_weights


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
