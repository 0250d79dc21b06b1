"""Probabilities keep the logits' order: ``argmax(predict_proba)`` is ``predict`` in every dtype.

Saturated sigmoid units round to one number (g(40) and g(41) are both 1 - 2e-18 or so,
one float64), so their normalised values tied and ``argmax`` took the first: 2 of 1000
test digits disagreed with ``predict`` in float32 (issue 25, item 5).
"""

import numpy as np
import pytest

from nnlearn import Model, NeuralNetClassifier
from nnlearn.core import OUTPUTS, Network, output_preactivation
from nnlearn.core.activations import in_order_of

# Logits of three classes; the first rows tie after rounding in float32, float64 or both.
LOGITS = [
    [40.0, 41.0, 0.0],  # both saturated: g rounds to 1 in either dtype
    [41.0, 40.0, 41.0],  # equal logits must stay equal, and the first of them wins
    [20.0, 21.0, 3.0],  # saturated in float32 only
    [0.0, 1e-9, 0.0],  # a hair apart
    [1000.0, 999.0, 0.0],  # softmax: the smaller two round to 0
    [0.5, 1.5, 2.5],  # ordinary: left bit for bit as computed
]


def identity_model(dtype, output):
    """A 3-3-3 relu network whose logits are its (non-negative) inputs, exactly."""
    theta = np.c_[np.zeros(3), np.eye(3)].astype(dtype)
    return Model([theta, theta.copy()], np.array(["a", "b", "c"]), network=Network((3, 3, 3), "relu", output))


def assert_in_order(P, z):
    """Each row of P ordered strictly as z is: equal where z is equal, nowhere else."""
    for p, logits in zip(P, z):
        signs_p = np.sign(p[:, None] - p[None, :])
        signs_z = np.sign(logits[:, None] - logits[None, :])
        np.testing.assert_array_equal(signs_p, signs_z, err_msg=f"probabilities {p!r} for logits {logits!r}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_predict_proba_and_predict_pick_the_largest_logit(dtype, output):
    model = identity_model(dtype, output)
    X = np.array(LOGITS, dtype=dtype)
    z = output_preactivation(model.thetas, X, network=model.network)
    np.testing.assert_array_equal(z, X)  # the logits are the inputs
    P = model.predict_proba(X)
    assert P.dtype == dtype
    largest = np.argmax(z, axis=1)
    np.testing.assert_array_equal(np.argmax(P, axis=1), largest)
    np.testing.assert_array_equal(model.predict(X), model.classes[largest])
    assert_in_order(P, z)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=8 * np.finfo(dtype).eps)
    ordinary = OUTPUTS[output].xp_proba(np, X[-1:])
    np.testing.assert_array_equal(P[-1:], ordinary)  # rows in order already are not touched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_probabilities_of_saturated_units_differ_by_one_unit_in_the_last_place(dtype):
    P = OUTPUTS["sigmoid"].proba(np.array([[40.0, 41.0]], dtype=dtype))
    assert P[0, 1] == np.nextafter(P[0, 0], dtype(1))  # raised by the least step, not more
    Q = OUTPUTS["softmax"].proba(np.array([[-1000.0, -999.0, 0.0]], dtype=dtype))
    assert Q[0, 0] == 0 and Q[0, 1] == np.nextafter(dtype(0), dtype(1)) and Q[0, 2] == 1


def test_rows_with_values_that_are_not_finite_are_left_as_they_are():
    P = np.array([[np.nan, 0.5], [0.5, 0.5]])
    z = np.array([[1.0, 2.0], [1.0, 2.0]])
    out = in_order_of(P, z)
    assert np.isnan(out[0, 0]) and out[0, 1] == 0.5
    assert out[1, 0] == 0.5 and out[1, 1] == np.nextafter(0.5, 1)


def test_the_estimator_agrees_with_its_logits_where_units_saturate():
    X = np.array(LOGITS * 2)
    clf = NeuralNetClassifier(hidden_layer_sizes=(3,), activation="relu", max_iter=1, dtype="float32")
    clf.fit(X, np.tile([0, 1, 2], 4))
    clf.thetas_ = identity_model(np.float32, "sigmoid").thetas  # logits = inputs
    z = output_preactivation(clf.thetas_, X.astype(np.float32), network=clf.network_)
    np.testing.assert_array_equal(np.argmax(clf.predict_proba(X), axis=1), np.argmax(z, axis=1))
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[np.argmax(z, axis=1)])
