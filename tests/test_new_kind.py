"""One entry per kind: an activation registered at run time works on every surface.

softsign, g(z) = z / (1 + |z|) with g'(z) = 1 / (1 + |z|)^2 = (1 - |a|)^2 written from
a = g(z), is registered in this process with no other edit to nnlearn, and used through
the library, the estimator, a model file, the command line, the web app and the reference
backpropagation on PyTorch tensors. A fresh process, where it is not registered, refuses
its model file with one clear error.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import nnlearn
from nnlearn.core import ACTIVATIONS, Network, backprop, init_random, one_hot, register_activation
from nnlearn.errors import ModelFileError

from .helpers import ENV, ok_json, run_cli

KIND = "softsign"


@pytest.fixture
def softsign():
    entry = register_activation(
        KIND, lambda xp, z: z / (1 + xp.abs(z)), lambda xp, a: (1 - xp.abs(a)) ** 2, display=(-1.0, 1.0)
    )
    yield entry
    del ACTIVATIONS[KIND]


@pytest.fixture(scope="module")
def digits8():
    return nnlearn.load_digits8()


def test_the_registry_refuses_a_second_softsign_and_forgets_it_afterwards(softsign):
    assert ACTIVATIONS[KIND] is softsign and softsign.name == KIND
    with pytest.raises(ValueError, match="'softsign' is registered already"):
        register_activation(KIND, softsign.xp_function, softsign.xp_derivative)
    with pytest.raises(ValueError, match="name"):
        register_activation("soft sign", softsign.xp_function, softsign.xp_derivative)
    assert "soft sign" not in ACTIVATIONS


def test_the_library_and_the_estimator_train_it_and_a_model_file_keeps_it(softsign, digits8, tmp_path):
    X, y = digits8
    model = nnlearn.train(X, y, activation=KIND, hidden_layer_sizes=(12,), optimizer="lbfgs", max_iter=5, seed=0)
    assert model.network.activation == KIND and model.network.layer_sizes == (64, 12, 10)
    path = model.save(tmp_path / "softsign.npz")
    loaded = nnlearn.load_model(path)
    assert loaded.network == model.network
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))

    clf = nnlearn.NeuralNetClassifier(activation=KIND, hidden_layer_sizes=(12,), max_iter=5).fit(X, y)
    assert clf.network_.activation == KIND and clf.predict(X[:5]).shape == (5,)


def test_the_command_line_offers_it(softsign, capsys, tmp_path):
    out = tmp_path / "cli.npz"
    args = ["train", "--data", "digits8", "--activation", KIND, "--hidden", "12", "--optimizer", "lbfgs"]
    result = ok_json(run_cli(capsys, *args, "--max-iter", "3", "--out", out, "--json"))
    assert KIND in json.dumps(result)
    assert nnlearn.load_model(out).network.activation == KIND


def test_the_web_app_lists_it_trains_it_and_shows_it(softsign):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette 1.x suggests httpx2 for its test client
        from starlette.testclient import TestClient

    from nnlearn.web import create_app

    from .test_web_api import events_of

    with TestClient(create_app(), base_url="http://127.0.0.1:8000") as client:
        fields = {field["name"]: field for field in client.get("/api/train/fields").json()["fields"]}
        assert KIND in fields["activation"]["choices"]
        assert f'<option value="{KIND}">{KIND}</option>' in client.get("/").text
        body = {"dataset": "digits8", "hidden": [12], "activation": KIND, "optimizer": "lbfgs", "max_iter": 5}
        started = client.post("/api/train", json=body)
        assert started.status_code == 202, started.text
        events = events_of(client, started.json()["events"])
        assert events[-1][1] == "done", events[-1]
        served = client.get("/api/model").json()
        assert served["activation"] == KIND
        X, _ = nnlearn.load_digits8()
        answer = client.post("/api/predict", json={"vector": X[0].tolist()}).json()
        hidden = np.array(answer["hidden"])
        assert np.all(np.abs(hidden) < 1)  # softsign's values, shown on its own range (-1, 1)
        np.testing.assert_allclose(answer["hidden_brightness"], (hidden + 1) / 2, rtol=1e-12)


def test_the_reference_computes_it_on_torch_tensors_as_numpy_does(softsign):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for output in ("sigmoid", "softmax"):
        network = Network((7, 6, 5, 4), KIND, output)
        thetas = init_random(network, epsilon=0.8, rng=rng)
        X = rng.standard_normal((30, 7))
        Y = one_hot(np.arange(30) % 4)[1].astype(np.float64)
        J, grads = backprop.cost_and_gradient(thetas, X, Y, 0.5, network=network)
        Jt, grads_t = backprop.cost_and_gradient(
            [torch.from_numpy(t) for t in thetas], torch.from_numpy(X), torch.from_numpy(Y), 0.5, network=network
        )
        assert all(isinstance(g, torch.Tensor) for g in grads_t)
        assert abs(Jt - J) <= 1e-10 * abs(J)
        for g, gt in zip(grads, grads_t):
            np.testing.assert_allclose(gt.numpy(), g, rtol=1e-10, atol=1e-10 * np.abs(g).max())
        # and the fast kernel, which has no in-place form for it, gives the reference's numbers
        J_fast, grads_fast = nnlearn.cost_and_gradient(thetas, X, Y, 0.5, network=network)
        assert J_fast == pytest.approx(J, rel=1e-12)
        for g, g_fast in zip(grads, grads_fast):
            np.testing.assert_allclose(g_fast, g, rtol=1e-10, atol=1e-12)


def test_an_output_is_one_registered_entry_too(rng):
    from nnlearn.core import OUTPUTS, register_output
    from nnlearn.core.arrayapi import logsumexp, softmax
    from nnlearn.core.gradcheck import check_gradients

    # softmax again, from the array API forms alone: no kernel forms, He's initial scale
    register_output(
        "softmax2",
        softmax,
        lambda xp, z, Y: logsumexp(xp, z) - xp.sum(Y * z, axis=1),
        lambda xp, z, Y: softmax(xp, z) - Y,
        softmax,
        init="he",
    )
    try:
        network = Network((5, 4, 3), "tanh", "softmax2")
        assert check_gradients(network, lam=1.0) < 1e-9
        assert OUTPUTS["softmax2"].half_width(4, 3) == np.sqrt(6.0 / 4)  # epsilon_init="auto"
        thetas = init_random(network, epsilon=0.7, rng=rng)
        X, Y = rng.standard_normal((20, 5)), one_hot(np.arange(20) % 3)[1].astype(np.float64)
        J, grads = nnlearn.cost_and_gradient(thetas, X, Y, 0.3, network=network)
        J_ref, grads_ref = backprop.cost_and_gradient(thetas, X, Y, 0.3, network=network)
        J_soft, grads_soft = nnlearn.cost_and_gradient(thetas, X, Y, 0.3, network=Network((5, 4, 3), "tanh", "softmax"))
        assert J == pytest.approx(J_ref, rel=1e-12) == pytest.approx(J_soft, rel=1e-12)
        for g, g_ref, g_soft in zip(grads, grads_ref, grads_soft):
            np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(g, g_soft, rtol=1e-10, atol=1e-12)
    finally:
        del OUTPUTS["softmax2"]


def test_a_fresh_process_without_it_refuses_its_model_file_naming_it(softsign, digits8, tmp_path):
    X, y = digits8
    path = nnlearn.train(X, y, activation=KIND, hidden_layer_sizes=(8,), max_iter=2, seed=0).save(tmp_path / "m.npz")
    code = (
        "import sys, nnlearn\n"
        "try:\n"
        "    nnlearn.load_model(sys.argv[1])\n"
        "except nnlearn.ModelFileError as exc:\n"
        "    print(str(exc)); sys.exit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], env=ENV, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 3, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and KIND in lines[0], lines
    assert issubclass(ModelFileError, nnlearn.NNLearnError)
