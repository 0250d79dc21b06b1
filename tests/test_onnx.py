"""ONNX export (nnlearn.model._onnx): every built-in kind and several depths, in both
dtypes, run in onnxruntime and compared with nnlearn on the embedded digits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnlearn import load_digits20, train
from nnlearn.core import ACTIVATIONS, OUTPUTS, register_activation
from nnlearn.errors import ParameterError
from nnlearn.model import Model, load_pretrained

from .helpers import EX4WEIGHTS, assert_one_line_error, ok_json, run_cli

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

#: float32 graphs agree with nnlearn's float32 probabilities within this, float64 within 1e-12.
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


@pytest.fixture(scope="module")
def digits():
    return load_digits20()


def session(model, dtype, tmp_path):
    path = model.to_onnx(tmp_path / f"model-{dtype}.onnx", dtype=dtype)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", [(12,), (16, 8), (10, 8, 6)])
@pytest.mark.parametrize("output", sorted(OUTPUTS))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_an_exported_model_gives_nnlearn_s_probabilities(digits, activation, output, hidden, dtype, tmp_path):
    X, y = digits
    model = train(X, y, hidden_layer_sizes=hidden, activation=activation, output=output, max_iter=4, dtype=dtype)
    assert model.dtype == np.dtype(dtype)
    labels, probabilities = session(model, dtype, tmp_path).run(None, {"input": X.astype(dtype)})
    np.testing.assert_array_equal(labels, model.predict(X))
    assert probabilities.dtype == np.dtype(dtype)
    np.testing.assert_allclose(probabilities, model.predict_proba(X), rtol=0, atol=TOLERANCE[dtype])


def test_the_course_s_weights_export_with_what_they_need_to_be_fed(digits, tmp_path):
    X, _ = digits
    model = load_pretrained()
    graph = session(model, "float64", tmp_path)
    (given,) = graph.get_inputs()
    assert given.name == "input" and given.shape == ["N", 400] and given.type == "tensor(double)"
    assert [o.name for o in graph.get_outputs()] == ["label", "probabilities"]
    meta = graph.get_modelmeta().custom_metadata_map
    assert json.loads(meta["layer_sizes"]) == [400, 25, 10] and json.loads(meta["classes"]) == model.classes.tolist()
    assert "20x20" in meta["input_layout"] and "column-major" in meta["input_layout"]
    assert meta["framing"] == "mnist" and meta["activation"] == meta["output"] == "sigmoid"
    assert meta["nnlearn_version"]
    labels, _ = graph.run(None, {"input": X})
    y = load_digits20()[1]
    assert np.mean(labels == y) == model.score(X, y) == 0.976  # the embedded digits' known figure


def test_tied_logits_give_the_first_class_as_predict_does(tmp_path):
    rng = np.random.default_rng(0)
    theta1 = rng.normal(size=(5, 5))
    theta2 = rng.normal(size=(3, 6))
    theta2[1] = theta2[0]  # classes "b" and "a" always tie ...
    theta2[2, 0] = -100.0  # ... and "c" never wins
    model = Model([theta1, theta2], np.array(["b", "a", "c"]), 0.0, {}, network=None)
    X = rng.normal(size=(200, 4))
    top = np.argmax(model._logits(X), axis=1)
    assert (top == 0).all()  # the tie decides every row
    labels, _ = session(model, "float64", tmp_path).run(None, {"input": X})
    assert labels.tolist() == model.predict(X).tolist() == ["b"] * 200


def test_a_kind_without_an_onnx_form_is_named(digits, tmp_path):
    X, y = digits
    register_activation("softsign_test", lambda xp, z: z / (1 + xp.abs(z)), lambda xp, a: (1 - xp.abs(a)) ** 2)
    try:
        model = train(X[::25], y[::25], hidden_layer_sizes=(4,), activation="softsign_test", max_iter=1)
        with pytest.raises(ParameterError, match="activation 'softsign_test' has no ONNX form"):
            model.to_onnx(tmp_path / "m.onnx")
        assert not (tmp_path / "m.onnx").exists()
    finally:
        del ACTIVATIONS["softsign_test"]


def test_the_command_line_exports_and_keeps_files(capsys, tmp_path):
    out = tmp_path / "ex4.onnx"
    done = ok_json(run_cli(capsys, "export", EX4WEIGHTS, out, "--dtype", "float64", "--json"))
    assert done["onnx"] == str(out) and done["dtype"] == "float64" and out.stat().st_size == done["bytes"]
    again = run_cli(capsys, "export", EX4WEIGHTS, out)
    assert_one_line_error(again, "already exists")
    run = run_cli(capsys, "export", out, out, "--force")
    assert run.returncode == 2  # OUT is the model itself


@pytest.mark.slow  # the preset's network (400-300-10 relu/softmax, float32), a few epochs of it
def test_a_preset_best_model_scores_the_same_in_onnxruntime(capsys, tmp_path):
    from nnlearn.datasets._builtin import split

    model_path, onnx_path = tmp_path / "best.npz", tmp_path / "best.onnx"
    trained = run_cli(capsys, "train", "--preset", "best", "--max-iter", "3", "--out", model_path, "--quiet")
    assert trained.returncode == 0, trained.stderr
    assert run_cli(capsys, "export", model_path, onnx_path).returncode == 0
    from nnlearn.model import load_model

    model = load_model(model_path)
    X, y = load_digits20()
    _, X_test, _, y_test = split(X, y, 0.2, 0)
    graph = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    labels, probabilities = graph.run(None, {"input": X_test.astype(np.float32)})
    np.testing.assert_array_equal(labels, model.predict(X_test))
    np.testing.assert_allclose(probabilities, model.predict_proba(X_test), atol=1e-5)
    assert np.mean(labels == y_test) == model.score(X_test, y_test) > 0.9
