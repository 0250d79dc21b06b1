import numpy as np
import pytest

from nnlearn import core
from nnlearn.core import (
    cost,
    cost_and_gradient,
    data_term,
    debug_matrix,
    forward,
    init_debug,
    init_random,
    kernels,
    one_hot,
    pack,
    sigmoid,
    sigmoid_gradient,
    unpack,
)
from nnlearn.core.gradcheck import check_directional, check_gradients, debug_problem
from nnlearn.model._octave import read_octave_weights

from .notebook_reference import nn_cost_function_backprop


def random_problem(rng, layer_sizes, m=40, dtype=np.float64):
    X = rng.standard_normal((m, layer_sizes[0])).astype(dtype)
    y = np.arange(m) % layer_sizes[-1]
    Y = one_hot(y)[1].astype(dtype)
    thetas = [t.astype(dtype) for t in init_random(layer_sizes, epsilon=0.5, rng=rng)]
    return thetas, X, Y


def test_sigmoid_gradient_at_zero_is_a_quarter():
    assert sigmoid_gradient(0) == 0.25
    assert sigmoid(0) == 0.5


def test_sigmoid_is_finite_and_saturates_without_overflow():
    with np.errstate(over="raise"):
        values = sigmoid(np.array([-1000.0, 1000.0]))
    np.testing.assert_array_equal(values, [0.0, 1.0])


def test_hand_worked_one_unit_network():
    # x = 0 and every weight 1 except the biases (0): a2 = g(0) = 0.5, z3 = 0.5,
    # h = g(0.5) = 0.6224593312, and with y = 1, J = -log(h) = 0.4740769842.
    # dJ/dz3 = h - 1 = -0.3775406688; dJ/dtheta2 = (h - 1) * [1, a2];
    # delta2 = (h - 1) * theta2[0, 1] * a2 (1 - a2) = -0.0943851672; dJ/dtheta1 = delta2 * [1, x].
    thetas = [np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]])]
    J, grads = cost_and_gradient(thetas, np.array([[0.0]]), np.array([[1.0]]), 0.0)
    assert J == pytest.approx(0.4740769842, abs=1e-10)
    np.testing.assert_allclose(grads[1], [[-0.3775406688, -0.1887703344]], atol=1e-10)
    np.testing.assert_allclose(grads[0], [[-0.0943851672, 0.0]], atol=1e-10)


@pytest.mark.parametrize("lam", [0.0, 3.0])
def test_gradient_check_on_the_course_debug_network(lam):
    assert check_gradients((3, 5, 3), lam=lam) < 1e-9


@pytest.mark.parametrize("layer_sizes", [(3, 5, 4, 3), (4, 6, 5, 4, 3)])
@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_gradient_check_with_two_and_three_hidden_layers(layer_sizes, lam):
    assert check_gradients(layer_sizes, lam=lam) < 1e-9  # about 3e-11 measured


def test_debug_matrix_is_filled_column_major_like_octave():
    W = debug_matrix((5, 4))
    assert W[0, 0] == pytest.approx(np.sin(1) / 10)
    assert W[1, 0] == pytest.approx(np.sin(2) / 10)
    assert W[0, 1] == pytest.approx(np.sin(6) / 10)
    assert [t.shape for t in init_debug((3, 5, 3))] == [(5, 4), (3, 6)]


def test_debug_problem_labels_follow_the_course():
    _, X, Y = debug_problem((3, 5, 3), m=5)
    assert X.shape == (5, 3)
    # y = 1 + mod(1..5, 3) = [2, 3, 1, 2, 3]
    np.testing.assert_array_equal(Y.argmax(axis=1) + 1, [2, 3, 1, 2, 3])


@pytest.mark.parametrize("lam", [0.0, 1.0, 2.5])
def test_cost_and_gradient_match_the_notebook_transcription(rng, lam):
    sizes = (20, 7, 4)
    thetas, X, Y = random_problem(rng, sizes, m=60)
    J_ref, grad_ref = nn_cost_function_backprop(pack(thetas), X, Y, lam, sizes)
    J, grads = cost_and_gradient(thetas, X, Y, lam)
    assert J == pytest.approx(J_ref, rel=1e-10)
    np.testing.assert_allclose(pack(grads), grad_ref, rtol=1e-10, atol=1e-10 * np.abs(grad_ref).max())
    assert cost(thetas, X, Y, lam) == pytest.approx(J_ref, rel=1e-10)


def test_cost_and_gradient_match_the_notebook_on_the_digits(digits20, rng):
    X, y = digits20
    thetas = init_random((400, 25, 10), rng=rng)
    Y = one_hot(y)[1]
    J_ref, grad_ref = nn_cost_function_backprop(pack(thetas), X, Y, 1.0)
    J, grads = cost_and_gradient(thetas, X, Y, 1.0)
    assert J == pytest.approx(J_ref, rel=1e-10)
    np.testing.assert_allclose(pack(grads), grad_ref, rtol=1e-10, atol=1e-10 * np.abs(grad_ref).max())


def test_saturated_units_keep_cost_and_gradient_finite(rng):
    thetas, X, Y = random_problem(rng, (20, 7, 4))
    big = [theta * 100 for theta in thetas]
    J, grads = cost_and_gradient(big, X * 100, Y, 1.0)
    assert np.isfinite(J) and J > 0
    assert all(np.all(np.isfinite(g)) for g in grads)
    # The exact data term of a saturated output is |z| where the label disagrees with
    # the sign of z: compare with logaddexp, the textbook-stable form.
    z = core.output_preactivation(big, X * 100)
    expected = np.sum(np.logaddexp(0, z) - Y * z) / X.shape[0]
    assert cost(big, X * 100, Y, 0.0) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("layer_sizes", [(20, 7, 4), (20, 9, 6, 4)])
def test_float32_is_computed_in_float32_and_agrees_with_float64(rng, layer_sizes):
    thetas, X, Y = random_problem(rng, layer_sizes)
    J64, grads64 = cost_and_gradient(thetas, X, Y, 1.0)
    thetas32 = [t.astype(np.float32) for t in thetas]
    J32, grads32 = cost_and_gradient(thetas32, X.astype(np.float32), Y.astype(np.float32), 1.0)
    assert all(g.dtype == np.float32 for g in grads32)
    assert forward(thetas32, X.astype(np.float32))[-1].dtype == np.float32
    assert J32 == pytest.approx(J64, rel=1e-5)
    np.testing.assert_allclose(pack(grads32), pack(grads64), atol=1e-5 * np.abs(pack(grads64)).max())


def test_data_term_adds_up_over_slices(rng):
    thetas, X, Y = random_problem(rng, (20, 7, 4), m=90)
    total_loss, total_grads = 0.0, [np.zeros_like(t) for t in thetas]
    for rows in np.array_split(np.arange(90), 4):
        loss, grads = data_term(thetas, X[rows], Y[rows])
        total_loss += loss
        total_grads = [a + b for a, b in zip(total_grads, grads)]
    J, grads = cost_and_gradient(thetas, X, Y, 0.0)
    assert total_loss / 90 == pytest.approx(J, rel=1e-12)
    np.testing.assert_allclose(pack(total_grads) / 90, pack(grads), rtol=1e-10, atol=1e-14)


def test_sample_weight_two_equals_the_row_repeated(rng):
    thetas, X, Y = random_problem(rng, (20, 7, 4), m=30)
    weights = np.ones(30)
    weights[3] = 2.0
    rows = np.r_[np.arange(30), 3]
    J_w, grads_w = cost_and_gradient(thetas, X, Y, 1.0, sample_weight=weights)
    J_r, grads_r = cost_and_gradient(thetas, X[rows], Y[rows], 1.0)
    assert J_w == pytest.approx(J_r, rel=1e-12)
    np.testing.assert_allclose(pack(grads_w), pack(grads_r), rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("layer_sizes", [(400, 25, 10), (3, 5, 4, 3)])
def test_pack_and_unpack_round_trip(rng, order, layer_sizes):
    thetas = init_random(layer_sizes, rng=rng)
    vector = pack(thetas, order=order)
    assert vector.shape == (sum(t.size for t in thetas),)
    for original, restored in zip(thetas, unpack(vector, layer_sizes, order=order)):
        np.testing.assert_array_equal(original, restored)


def test_c_order_is_the_notebooks_ravel(rng):
    thetas = init_random((4, 3, 2), rng=rng)
    np.testing.assert_array_equal(pack(thetas), np.r_[thetas[0].ravel(), thetas[1].ravel()])


def test_fortran_vector_of_the_pretrained_weights_is_octaves_unrolling(ex4weights):
    Theta1, Theta2 = read_octave_weights(ex4weights)
    vector = pack([Theta1, Theta2], order="F")
    # [Theta1(:); Theta2(:)]: down the columns of Theta1 (25 rows), then of Theta2.
    assert vector.size == 25 * 401 + 10 * 26
    assert vector[0] == Theta1[0, 0] and vector[1] == Theta1[1, 0]
    assert vector[25] == Theta1[0, 1] and vector[25 * 400 + 24] == Theta1[24, 400]
    assert vector[25 * 401] == Theta2[0, 0] and vector[25 * 401 + 10] == Theta2[0, 1]
    assert vector[-1] == Theta2[9, 25]


def test_unpack_rejects_a_vector_of_the_wrong_length():
    with pytest.raises(ValueError, match="need 38"):
        unpack(np.zeros(37), (3, 5, 3))


def test_init_random_is_seeded_and_within_epsilon():
    a = init_random((400, 25, 10), rng=7)
    b = init_random((400, 25, 10), rng=7)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert max(np.abs(t).max() for t in a) <= 0.12
    assert min(np.abs(t).max() for t in a) > 0.11


def test_init_random_auto_epsilon_follows_the_course():
    thetas = init_random((400, 25, 10), epsilon="auto", rng=0)
    limits = [np.sqrt(6) / np.sqrt(400 + 25), np.sqrt(6) / np.sqrt(25 + 10)]
    for theta, limit in zip(thetas, limits):
        assert np.abs(theta).max() <= limit
        assert np.abs(theta).max() > 0.9 * limit


def test_directional_check_on_the_full_digit_network(digits20, ex4weights, monkeypatch):
    X, y = digits20
    thetas = read_octave_weights(ex4weights)
    Y = one_hot(y, [1, 2, 3, 4, 5, 6, 7, 8, 9, 0])[1]
    assert check_directional(thetas, X, Y, lam=1.0) < 1e-6

    # A gradient 1% off must be caught: the check is not vacuous.
    def off_by_one_percent(*args, **kwargs):
        J, grads = cost_and_gradient(*args, **kwargs)
        return J, [g * 1.01 for g in grads]

    monkeypatch.setattr("nnlearn.core.gradcheck.cost_and_gradient", off_by_one_percent)
    assert check_directional(thetas, X, Y, lam=1.0) > 1e-3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layer_sizes", [(6, 5, 3), (6, 5, 4, 3)])
def test_both_memory_orders_of_the_hidden_layers_give_the_same_cost_and_gradient(monkeypatch, rng, dtype, layer_sizes):
    # float64 hidden activations are computed in Fortran order, float32 ones in C order
    # (kernels._COLUMN_MAJOR_HIDDEN); forcing each dtype through the other path must agree.
    thetas, X, Y = random_problem(rng, layer_sizes, m=50, dtype=dtype)
    J, grads = cost_and_gradient(thetas, X, Y, 1.0)
    hidden = kernels._feedforward(thetas, X, core.ACTIVATIONS["sigmoid"])[0][1:]
    assert all(a.flags.f_contiguous == (dtype == np.float64) for a in hidden)
    others = () if dtype == np.float64 else (np.dtype(dtype),)
    monkeypatch.setattr(kernels, "_COLUMN_MAJOR_HIDDEN", others)
    J_other, grads_other = cost_and_gradient(thetas, X, Y, 1.0)
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    assert J_other == pytest.approx(J, rel=tolerance)
    for grad, grad_other in zip(grads, grads_other):
        assert grad.dtype == grad_other.dtype == dtype
        np.testing.assert_allclose(grad_other, grad, rtol=tolerance, atol=tolerance * np.abs(grad).max())
    hidden = kernels._feedforward(thetas, X, core.ACTIVATIONS["sigmoid"])[0][1:]
    assert all(a.flags.f_contiguous == (dtype != np.float64) for a in hidden)
