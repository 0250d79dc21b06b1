"""One description of a network: kinds as data, the reference and the fast kernel, format 2."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nnlearn import Model, load_model, train
from nnlearn.core import (
    ACTIVATIONS,
    OUTPUTS,
    Activation,
    Network,
    backprop,
    cost,
    cost_and_gradient,
    data_term,
    init_random,
    kernels,
    one_hot,
    pack,
)
from nnlearn.core.gradcheck import check_gradients
from nnlearn.errors import ModelFileError, ParameterError
from nnlearn.model._octave import load_pretrained, write_octave_weights

from .notebook_reference import nn_cost_function_backprop

DATA = Path(__file__).parent / "data"
KINDS = [(activation, output) for activation in ("sigmoid", "tanh", "relu") for output in ("sigmoid", "softmax")]
DEPTHS = [(6, 5, 3), (6, 5, 4, 3), (7, 6, 5, 4, 3)]


def problem(rng, network, m=60, dtype=np.float64, weighted=False):
    sizes = network.layer_sizes
    X = rng.standard_normal((m, sizes[0])).astype(dtype)
    Y = one_hot(np.arange(m) % sizes[-1])[1].astype(dtype)
    thetas = init_random(network, epsilon=0.6, rng=rng, dtype=dtype)
    weights = rng.uniform(0.5, 2.0, m).astype(dtype) if weighted else None
    return thetas, X, Y, weights


def relative(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("kind", KINDS, ids="/".join)
@pytest.mark.parametrize("sizes", [(3, 5, 3), (3, 5, 4, 3), (4, 6, 5, 4, 3)], ids=str)
@pytest.mark.parametrize("lam", [0.0, 3.0])
def test_gradient_check_for_every_activation_and_output(kind, sizes, lam):
    assert check_gradients(Network(sizes, *kind), lam=lam) < 1e-9


@pytest.mark.parametrize("kind", KINDS, ids="/".join)
@pytest.mark.parametrize("sizes", DEPTHS, ids=str)
@pytest.mark.parametrize(("dtype", "tolerance"), [(np.float64, 1e-12), (np.float32, 1e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_the_fast_kernel_equals_the_reference(rng, kind, sizes, dtype, tolerance, weighted):
    network = Network(sizes, *kind)
    thetas, X, Y, w = problem(rng, network, dtype=dtype, weighted=weighted)
    J_ref, grads_ref = backprop.cost_and_gradient(thetas, X, Y, 0.7, w, network=network)
    J, grads = cost_and_gradient(thetas, X, Y, 0.7, w, network=network)
    assert J == pytest.approx(J_ref, rel=tolerance)
    assert cost(thetas, X, Y, 0.7, w, network=network) == pytest.approx(J_ref, rel=tolerance)
    assert all(grad.dtype == dtype for grad in grads)
    assert relative(pack(grads), pack(grads_ref)) < tolerance
    # forward and the reference's feedforward agree on every layer and on the logits
    hidden_ref, z_ref = backprop.feedforward(thetas, X, network=network)
    activations = kernels.forward(thetas, X, network=network)
    for a, a_ref in zip(activations[1:-1], hidden_ref[1:]):
        assert relative(a, a_ref) < tolerance
    assert relative(activations[-1], OUTPUTS[network.output].function(z_ref)) < tolerance


def test_the_reference_equals_the_notebooks_transcription(digits20):
    X, y = digits20
    pretrained = load_pretrained()
    _, Y = one_hot(y, pretrained.classes)
    J_ref, grads = backprop.cost_and_gradient(pretrained.thetas, X, Y, 1.0)
    J_nb, grad_nb = nn_cost_function_backprop(pack(pretrained.thetas), X, Y, 1.0)
    assert J_ref == pytest.approx(J_nb, rel=1e-10)
    np.testing.assert_allclose(pack(grads), grad_nb, rtol=1e-10, atol=1e-10 * np.abs(grad_nb).max())
    assert J_ref == pytest.approx(0.379804, abs=5e-7)


def softsign():
    # g(z) = z / (1 + |z|); g'(z) = 1 / (1 + |z|)^2 = (1 - |a|)^2 written from a = g(z).
    return Activation("softsign", lambda xp, z: z / (1 + xp.abs(z)), lambda xp, a: (1 - xp.abs(a)) ** 2)


def test_a_made_up_activation_is_one_registry_entry(monkeypatch, rng):
    monkeypatch.setitem(ACTIVATIONS, "softsign", softsign())
    network = Network((4, 6, 5, 3), "softsign", "softmax")
    assert check_gradients(network, lam=0.0) < 1e-9
    assert check_gradients(network, lam=3.0) < 1e-9
    # the fast kernel has no special form for it and falls back to the entry
    thetas, X, Y, _ = problem(rng, network)
    J_ref, grads_ref = backprop.cost_and_gradient(thetas, X, Y, 1.0, network=network)
    J, grads = cost_and_gradient(thetas, X, Y, 1.0, network=network)
    assert J == pytest.approx(J_ref, rel=1e-12)
    assert relative(pack(grads), pack(grads_ref)) < 1e-12
    # and every surface takes it by name
    X8 = rng.standard_normal((120, 4))
    y8 = (X8[:, 0] > 0).astype(int) + (X8[:, 1] > 0)
    model = train(X8, y8, hidden_layer_sizes=(6,), lam=0.1, optimizer="lbfgs", max_iter=100, activation="softsign")
    assert model.network.activation == "softsign"
    assert model.score(X8, y8) > 0.9


def test_a_network_is_a_small_frozen_description():
    network = Network([400, 25, 10])
    assert network == Network((400, 25, 10), "sigmoid", "sigmoid")
    assert network.layer_sizes == (400, 25, 10) and network.is_course
    assert network.n_weights == 25 * 401 + 10 * 26
    assert network.theta_shapes == [(25, 401), (10, 26)]
    assert network.describe() == "400-25-10, sigmoid/sigmoid"
    assert Network.of((400, 25, 10)) == network and Network.of(network) is network
    with pytest.raises(AttributeError):
        network.activation = "relu"
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        Network((3, 2), "gelu")
    with pytest.raises(ValueError, match="unknown output 'linear'"):
        Network((3, 2), output="linear")
    with pytest.raises(ValueError, match="positive integers"):
        Network((3, 0, 2))
    with pytest.raises(ValueError, match="positive integers"):
        Network((3, True, 2))
    with pytest.raises(ValueError, match="unknown activation"):
        Network((3, 2), ["relu"])


def test_auto_initialisation_scales_each_layer_and_uses_he_for_relu():
    for activation in ("sigmoid", "tanh"):
        thetas = init_random(Network((400, 25, 10), activation), "auto", rng=0)
        # today's sqrt(6)/sqrt(fan_in + fan_out), and the same draws as for layer sizes
        assert np.abs(thetas[0]).max() <= np.sqrt(6 / 425) and np.abs(thetas[0]).max() > 0.95 * np.sqrt(6 / 425)
        np.testing.assert_array_equal(pack(thetas), pack(init_random((400, 25, 10), "auto", rng=0)))
    relu = init_random(Network((400, 25, 10), "relu"), "auto", rng=0)
    # He: uniform of variance 2 / fan_in in the hidden layer; the output layer keeps the course's
    assert np.abs(relu[0]).max() <= np.sqrt(6 / 400) and np.abs(relu[0]).max() > 0.95 * np.sqrt(6 / 400)
    assert np.var(relu[0]) == pytest.approx(2 / 400, rel=0.02)
    assert np.abs(relu[1]).max() <= np.sqrt(6 / 35)
    # the course's 0.12 stays the default, whatever the activation
    assert np.abs(init_random(Network((400, 25, 10), "relu"), rng=0)[0]).max() <= 0.12


def test_a_format_1_model_file_loads_and_predicts_exactly_as_before():
    # Written by nnlearn 0.1 (format 1, no record of its kinds), with its predictions then.
    model = load_model(DATA / "format1-model.npz")
    expected = np.load(DATA / "format1-expected.npz")
    assert model.network == Network((64, 12, 10))
    np.testing.assert_array_equal(model.predict(expected["X"]), expected["predict"])
    np.testing.assert_array_equal(model.predict_proba(expected["X"]), expected["proba"])
    np.testing.assert_array_equal(model.outputs(expected["X"]), expected["outputs"])


@pytest.mark.parametrize("kind", KINDS, ids="/".join)
def test_format_2_records_the_kinds_and_loads_them_back(tmp_path, rng, kind):
    network = Network((6, 5, 3), *kind)
    model = Model(init_random(network, rng=rng), np.array([0, 1, 2]), 1.0, {}, network=network)
    path = model.save(tmp_path / "m.npz")
    loaded = load_model(path)
    assert loaded.network == network
    X = rng.standard_normal((20, 6))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert np.allclose(model.predict_proba(X).sum(axis=1), 1)


def rewrite_meta(path, edit):
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    arrays = dict(np.load(path, allow_pickle=False))
    meta = json.loads(str(arrays["meta"]))
    edit(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return members


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("activation", "gelu", "unknown activation 'gelu'"),
        ("output", "linear", "unknown output 'linear'"),
        ("activation", 3, "does not say its network's activation and output"),
    ],
)
def test_an_unknown_kind_in_a_model_file_is_refused(tmp_path, rng, key, value, message):
    model = Model(init_random((6, 5, 3), rng=rng), np.array([0, 1, 2]))
    path = model.save(tmp_path / "m.npz")
    rewrite_meta(path, lambda meta: meta["network"].update({key: value}))
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_octave_export_refuses_what_the_course_cannot_express(tmp_path, rng):
    network = Network((6, 5, 3), "relu", "sigmoid")
    model = Model(init_random(network, rng=rng), np.array([0, 1, 2]), network=network)
    with pytest.raises(ModelFileError, match="relu/sigmoid"):
        write_octave_weights(model, tmp_path / "w.mat")
    assert not (tmp_path / "w.mat").exists()


def test_softmax_probabilities_are_the_softmax_of_the_logits(rng):
    network = Network((6, 5, 3), "tanh", "softmax")
    model = Model(init_random(network, epsilon=2.0, rng=rng), np.array([0, 1, 2]), network=network)
    X = rng.standard_normal((30, 6))
    z = kernels.output_preactivation(model.thetas, X, network=network)
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-14)
    np.testing.assert_array_equal(model.outputs(X), model.predict_proba(X))


def test_the_model_refuses_a_network_that_does_not_fit_its_weights(rng):
    with pytest.raises(ValueError, match="does not match"):
        Model(init_random((6, 5, 3), rng=rng), np.array([0, 1, 2]), network=Network((6, 4, 3)))


def test_the_model_repr_is_one_line(rng):
    network = Network((6, 5, 3), "relu", "softmax")
    model = Model(init_random(network, rng=rng), np.array([0, 1, 2]), 0.5, network=network)
    assert repr(model) == "Model(6-5-3, relu/softmax, float64, classes [0, 1, 2], lambda 0.5)"


def test_train_takes_the_kinds_and_refuses_unknown_ones():
    from nnlearn import load_digits8, split

    X_train, X_test, y_train, y_test = split(*load_digits8(), test_size=0.2, seed=0)
    model = train(
        X_train,
        y_train,
        hidden_layer_sizes=(30,),
        lam=1.0,
        optimizer="lbfgs",
        max_iter=200,
        activation="relu",
        output="softmax",
        epsilon_init="auto",
    )
    assert model.network == Network((64, 30, 10), "relu", "softmax")
    assert model.score(X_test, y_test) > 0.95
    with pytest.raises(ParameterError, match="unknown activation 'elu'"):
        train(X_train, y_train, activation="elu")
    with pytest.raises(ParameterError, match="unknown output 'linear'"):
        train(X_train, y_train, output="linear")
    with pytest.raises(ParameterError, match="unknown activation \\['relu'\\]"):
        train(X_train, y_train, activation=["relu"])
    with pytest.raises(ParameterError, match="unknown output \\{\\}"):
        train(X_train, y_train, output={})


def test_the_data_term_of_shards_adds_up_for_every_kind(rng):
    for kind in KINDS:
        network = Network((6, 5, 3), *kind)
        thetas, X, Y, w = problem(rng, network, weighted=True)
        whole = data_term(thetas, X, Y, w, network=network)
        first = data_term(thetas, X[:25], Y[:25], w[:25], network=network)
        second = data_term(thetas, X[25:], Y[25:], w[25:], network=network)
        assert first[0] + second[0] == pytest.approx(whole[0], rel=1e-12)
        for g, g1, g2 in zip(whole[1], first[1], second[1]):
            np.testing.assert_allclose(g1 + g2, g, rtol=1e-12, atol=1e-12 * np.abs(g).max())


def test_the_estimator_fits_the_kinds_it_is_given():
    from nnlearn import NeuralNetClassifier, load_digits8

    X, y = load_digits8()
    clf = NeuralNetClassifier(hidden_layer_sizes=(20,), activation="tanh", output="softmax", max_iter=60).fit(X, y)
    assert clf.network_ == Network((64, 20, 10), "tanh", "softmax")
    assert clf.to_model().network == clf.network_
    z = kernels.output_preactivation(clf.thetas_, X[:30], network=clf.network_)
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X[:30]), expected / expected.sum(axis=1, keepdims=True), rtol=1e-12)
    # and it is that network's training, not the course's, that it ran
    course = NeuralNetClassifier(hidden_layer_sizes=(20,), max_iter=60).fit(X, y)
    assert not np.array_equal(course.thetas_[0], clf.thetas_[0])
