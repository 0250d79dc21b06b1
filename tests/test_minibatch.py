import math

import numpy as np
import pytest

from nnlearn import load_digits8, train
from nnlearn.compute import batch_objective as make_batch_objective
from nnlearn.compute import make_objective
from nnlearn.core import init_random, pack
from nnlearn.optim._minibatch import (
    MinibatchResult,
    MinibatchSettings,
    Plateau,
    epoch_batches,
    minimize_minibatch,
)
from nnlearn.optim._steps import LEARNING_RATES, adam_init, adam_step, sgd_init, sgd_step
from nnlearn.training._settings import OPTIMIZERS

MINI_BATCH = ["sgd", "adam"]


def least_squares(A, b):
    """fun(x, rows): half the mean squared residual over the rows, and its gradient."""

    def fun(x, rows):
        residual = A[rows] @ x - b[rows]
        return 0.5 * residual @ residual / rows.size, A[rows].T @ residual / rows.size

    return fun


@pytest.fixture
def regression(rng):
    A = rng.standard_normal((300, 5))
    x_true = rng.standard_normal(5)
    return A, A @ x_true + 0.01 * rng.standard_normal(300), x_true


def test_adam_first_step_moves_each_weight_by_the_learning_rate_against_its_gradient():
    # At t = 1 the bias corrections give m_hat = g and v_hat = g^2, so the step is
    # -eta g / (|g| + eps), i.e. -eta sign(g) up to eps.
    x, grad = np.array([1.0, -2.0, 0.5]), np.array([4.0, -0.01, 1e-3])
    new_x, state = adam_step(x, grad, adam_init(x), learning_rate=0.1, epsilon=1e-12)
    np.testing.assert_allclose(new_x, x - 0.1 * np.sign(grad), rtol=1e-9)
    assert state["t"] == 1
    np.testing.assert_allclose(state["m"], 0.1 * grad)
    np.testing.assert_allclose(state["v"], 0.001 * grad**2)


def test_adam_second_step_by_hand():
    x, g1, g2 = np.array([0.0]), np.array([1.0]), np.array([3.0])
    x1, state = adam_step(x, g1, adam_init(x), learning_rate=0.5, beta_1=0.5, beta_2=0.75, epsilon=0.0)
    x2, _ = adam_step(x1, g2, state, learning_rate=0.5, beta_1=0.5, beta_2=0.75, epsilon=0.0)
    # m = 0.5*0.5*1 + 0.5*3 = 1.75, m_hat = 1.75/0.75; v = 0.75*0.25 + 0.25*9 = 2.4375,
    # v_hat = 2.4375/0.4375; step = 0.5 * m_hat / sqrt(v_hat)
    expected = -0.5 - 0.5 * (1.75 / 0.75) / np.sqrt(2.4375 / 0.4375)
    np.testing.assert_allclose(x2, [expected], rtol=1e-12)


def test_sgd_without_momentum_is_a_plain_gradient_step():
    x, grad = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    new_x, _ = sgd_step(x, grad, sgd_init(x), learning_rate=0.1, momentum=0.0)
    np.testing.assert_allclose(new_x, x - 0.1 * grad)


@pytest.mark.parametrize("nesterov, expected", [(False, -0.1 - 0.19), (True, -0.19 - 0.271)])
def test_sgd_momentum_two_steps_by_hand(nesterov, expected):
    # grad = 1 twice, eta = 0.1, mu = 0.9: v1 = -0.1, v2 = -0.19. Classical: x = v1 + v2.
    # Nesterov: x moves by mu v - eta g = -0.19, then -0.171 - 0.1 = -0.271.
    x, g = np.zeros(1), np.ones(1)
    state = sgd_init(x)
    for _ in range(2):
        x, state = sgd_step(x, g, state, learning_rate=0.1, momentum=0.9, nesterov=nesterov)
    np.testing.assert_allclose(x, [expected], rtol=1e-12)


def test_the_batches_of_an_epoch_partition_the_examples(rng):
    batches = epoch_batches(103, 20, rng)
    assert [b.size for b in batches] == [20] * 5 + [3]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(103))


@pytest.mark.parametrize("method", MINI_BATCH)
def test_minibatch_optimizers_solve_least_squares(regression, method):
    A, b, x_true = regression
    result = minimize_minibatch(
        least_squares(A, b),
        np.zeros(5),
        300,
        MinibatchSettings(method=method, max_iter=300, batch_size=32, learning_rate=0.05, seed=0, n_iter_no_change=300),
    )
    np.testing.assert_allclose(result.x, x_true, atol=0.02)
    assert len(result.history) == result.n_iter == 300
    assert result.history[-1] < 0.01 * result.history[0]
    assert result.n_evals == 300 * 10
    assert result.reason == "max_iter"


@pytest.mark.parametrize("method", MINI_BATCH)
def test_the_same_seed_gives_the_same_run(regression, method):
    A, b, _ = regression
    runs = [
        minimize_minibatch(
            least_squares(A, b), np.zeros(5), 300, MinibatchSettings(method=method, max_iter=5, batch_size=32, seed=s)
        )
        for s in (7, 7, 8)
    ]
    np.testing.assert_array_equal(runs[0].x, runs[1].x)
    assert runs[0].history == runs[1].history
    assert not np.array_equal(runs[0].x, runs[2].x)


def test_a_callback_can_stop_after_an_epoch(regression):
    A, b, _ = regression
    seen = []

    def stop_after_three(epoch, J, x):
        seen.append(J)
        if epoch == 3:
            raise StopIteration

    result = minimize_minibatch(
        least_squares(A, b), np.zeros(5), 300, MinibatchSettings(method="adam", max_iter=50), callback=stop_after_three
    )
    assert result.n_iter == 3 and result.interrupted and result.history == seen
    assert result.message == "stopped by callback" and result.reason == "interrupted"


def test_training_stops_when_the_cost_stops_improving_by_tol(regression):
    A, b, _ = regression
    # A tolerance larger than any improvement: every epoch after the first is stale.
    result = minimize_minibatch(
        least_squares(A, b),
        np.zeros(5),
        300,
        MinibatchSettings(method="sgd", max_iter=100, tol=1000000.0, n_iter_no_change=4),
    )
    assert result.n_iter == 5
    assert "did not improve" in result.message and result.reason == "converged"


# Held-out (loss, accuracy) after each epoch: the accuracy stalls after epoch 2 while the
# loss still falls; epoch 4 ties epoch 2's accuracy with a lower loss; from epoch 5 neither
# improves, so three epochs later (patience 3) the run stops.
HELD_OUT = [(1.0, 0.5), (0.9, 0.8), (0.8, 0.7), (0.7, 0.8), (0.75, 0.6), (0.72, 0.7), (0.71, 0.75), (0.1, 0.9)]


def test_early_stopping_returns_the_best_scoring_weights(regression):
    A, b, _ = regression
    measures = iter(HELD_OUT)
    seen = []

    def record(epoch, J, x):
        seen.append(x.copy())

    result = minimize_minibatch(
        least_squares(A, b),
        np.zeros(5),
        300,
        MinibatchSettings(method="adam", max_iter=8, n_iter_no_change=3),
        callback=record,
        validation=lambda x: next(measures),
    )
    assert result.validation_scores == [score for _, score in HELD_OUT[:7]]
    assert result.validation_losses == [loss for loss, _ in HELD_OUT[:7]]
    np.testing.assert_array_equal(result.x, seen[3])  # the tie with the lower loss
    assert result.fun == result.history[3]


@pytest.mark.parametrize(
    "values, higher, stale",
    [([3.0, 2.0, 1.99995, 1.9999, 1.0], False, [0, 0, 1, 2, 0]), ([0.5, 0.6, 0.6, 0.55], True, [0, 0, 1, 2])],
)
def test_plateau_counts_epochs_that_do_not_improve_by_tol(values, higher, stale):
    plateau = Plateau(tol=1e-4, higher_is_better=higher)
    counts = []
    for value in values:
        plateau.update(value)
        counts.append(plateau.stale)
    assert counts == stale


@pytest.fixture(scope="module")
def small_digits():
    X, y = load_digits8()
    X, y = X[:300], y[:300]
    Y = (y[:, None] == np.arange(10)).astype(float)
    return X, y, Y


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("lam", [0.0, 3.0])
def test_batch_gradients_average_to_the_full_gradient(small_digits, rng, weighted, lam):
    # Over one epoch's batches, sum_B (b/m) grad J_B = grad J: the batch objective is an
    # unbiased share of the full one, penalty lam/(2M) included (not lam/(2b)).
    X, _, Y = small_digits
    layer_sizes = (64, 7, 10)
    weights = rng.integers(0, 4, size=X.shape[0]).astype(float) if weighted else None
    x = pack(init_random(layer_sizes, rng=0))
    J, grad = make_objective(X, Y, lam, layer_sizes, weights)(x)
    batch_fun = make_batch_objective(X, Y, lam, layer_sizes, weights)
    pieces = [(rows.size / X.shape[0], batch_fun(x, rows)) for rows in epoch_batches(X.shape[0], 64, rng)]
    np.testing.assert_allclose(sum(share * g for share, (_, g) in pieces), grad, rtol=1e-10, atol=1e-14)
    assert sum(share * J_B for share, (J_B, _) in pieces) == pytest.approx(J, rel=1e-12)


def test_one_batch_of_everything_is_the_full_objective(small_digits):
    X, _, Y = small_digits
    layer_sizes = (64, 7, 10)
    x = pack(init_random(layer_sizes, rng=1))
    J, grad = make_objective(X, Y, 1.0, layer_sizes)(x)
    J_B, grad_B = make_batch_objective(X, Y, 1.0, layer_sizes)(x, np.arange(X.shape[0]))
    assert J_B == pytest.approx(J, rel=1e-13)
    np.testing.assert_allclose(grad_B, grad, rtol=1e-12, atol=1e-15)


def test_the_command_line_optimizers_include_the_mini_batch_ones():
    assert OPTIMIZERS == ("cg", "lbfgs", "fmincg", "sgd", "adam")
    assert set(LEARNING_RATES) == set(MINI_BATCH)


@pytest.mark.parametrize("optimizer", MINI_BATCH)
def test_train_with_a_mini_batch_optimizer_lowers_the_cost(small_digits, optimizer):
    X, y, _ = small_digits
    model = train(X, y, optimizer=optimizer, max_iter=40, batch_size=50, seed=0)
    history = model.history["cost"]
    assert len(history) == model.history["n_iter"] == 40
    assert history[-1] < 0.5 * history[0]
    assert model.history["batch_size"] == 50 and model.history["validation_scores"] == []
    assert model.score(X, y) > 0.9


@pytest.mark.parametrize("optimizer", MINI_BATCH)
def test_train_with_the_same_seed_gives_the_same_weights(small_digits, optimizer):
    X, y, _ = small_digits
    runs = [train(X, y, optimizer=optimizer, max_iter=3, batch_size=50, seed=s) for s in (5, 5, 6)]
    np.testing.assert_array_equal(runs[0].thetas[0], runs[1].thetas[0])
    assert not np.array_equal(runs[0].thetas[0], runs[2].thetas[0])


def test_train_with_early_stopping_records_validation_scores(small_digits):
    X, y, _ = small_digits
    model = train(
        X,
        y,
        optimizer="adam",
        max_iter=60,
        batch_size=50,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=10,
    )
    scores = model.history["validation_scores"]
    assert len(scores) == model.history["n_iter"] >= 11
    # measured: 0.967 at best (chance is 0.1)
    assert all(0 <= s <= 1 for s in scores) and max(scores) > 0.94


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"n_iter_no_change": 0}, "n_iter_no_change"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"tol": -1.0}, "tol"),
        ({"sample_weight": [1.0, -1.0, 1.0, 1.0]}, "sample_weight"),
        ({"sample_weight": [1.0, 1.0]}, "sample_weight"),
    ],
)
def test_bad_mini_batch_settings_are_rejected(settings, message):
    with pytest.raises(ValueError, match=message):
        train(np.eye(4), np.array([0, 1, 0, 1]), optimizer="adam", **settings)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_a_diverging_learning_rate_is_reported(small_digits):
    from nnlearn.errors import TrainingError

    X, y, _ = small_digits
    with pytest.raises(TrainingError, match=r"after iteration \d+; try a smaller learning_rate"):
        train(X * 1e6, y, optimizer="sgd", learning_rate=1e200, max_iter=3)


def test_early_stopping_reports_converged(regression):
    A, b, _ = regression
    measures = iter(HELD_OUT)
    result = minimize_minibatch(
        least_squares(A, b),
        np.zeros(5),
        300,
        MinibatchSettings(method="adam", max_iter=8, n_iter_no_change=3),
        validation=lambda x: next(measures),
    )
    assert result.reason == "converged" and result.n_iter == 7
    assert "neither the validation accuracy nor the validation loss improved" in result.message


def huge(x, rows):
    """Legal but huge: 1e300 x.x, whose gradient overflows Adam's second moment at once
    and whose SGD step lands where the cost overflows."""
    return 1e300 * (x @ x), 2e300 * x


def infinite(x, rows):
    return math.inf, 2 * x


def nan_gradient(x, rows):
    return float(x @ x), np.full_like(x, math.nan)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
@pytest.mark.parametrize("fun", [huge, infinite, nan_gradient])
@pytest.mark.parametrize("method", MINI_BATCH)
def test_a_batch_objective_that_is_not_finite_ends_the_run_cleanly(method, fun):
    result = minimize_minibatch(fun, np.ones(3), 10, MinibatchSettings(method=method, max_iter=5, batch_size=5, seed=0))
    assert isinstance(result, MinibatchResult)
    assert result.reason == "not_finite" and "not finite" in result.message and not result.interrupted
    assert result.n_iter == len(result.history) == 1 and np.all(np.isfinite(result.x))


def test_an_overflowing_step_stops_before_it_is_taken():
    # Adam's second moment, g^2 = 4e600, overflows on the first batch: the weights stay
    # where they were and the epoch's cost is that batch's.
    result = minimize_minibatch(
        huge, np.ones(3), 10, MinibatchSettings(method="adam", max_iter=5, batch_size=5, seed=0)
    )
    assert result.message == "the step from batch 1 of epoch 1 is not finite" and result.reason == "not_finite"
    np.testing.assert_array_equal(result.x, np.ones(3))
    assert result.history == [3e300] and result.n_evals == 1


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_a_cost_that_overflows_stops_the_epoch_at_that_batch():
    # SGD's first step from x = 1 lands near -3.8e299, where 1e300 x.x is infinite.
    result = minimize_minibatch(huge, np.ones(3), 10, MinibatchSettings(method="sgd", max_iter=5, batch_size=5, seed=0))
    assert result.message == "the cost or gradient at batch 2 of epoch 1 is not finite"
    assert result.history == [math.inf] and result.fun == math.inf and result.n_evals == 2


def test_a_resumed_run_counts_the_evaluations_of_the_epochs_before_it(regression):
    A, b, _ = regression
    saved = {}
    full = minimize_minibatch(
        least_squares(A, b),
        np.zeros(5),
        300,
        MinibatchSettings(method="sgd", max_iter=6, batch_size=32, seed=0, n_iter_no_change=99),
        checkpoint=lambda snapshot: saved.setdefault(len(snapshot["history"]), snapshot),
    )
    resumed = minimize_minibatch(
        least_squares(A, b),
        None,
        300,
        MinibatchSettings(method="sgd", max_iter=6, batch_size=32, n_iter_no_change=99),
        resume=saved[4],
    )
    assert resumed.n_evals == full.n_evals == 6 * 10 and resumed.history == full.history


def textbook_sgd(x, grad, velocity, eta, mu=0.9, nesterov=True):
    velocity = mu * velocity - eta * grad
    return x + (mu * velocity - eta * grad if nesterov else velocity), velocity


def textbook_adam(x, grad, t, m, v, eta, b1=0.9, b2=0.999, eps=1e-8):
    t += 1
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * np.square(grad)
    return x - eta * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps), t, m, v


@pytest.mark.parametrize("nesterov", [True, False])
def test_the_steps_written_in_place_are_the_textbook_formulas_bit_for_bit(nesterov):
    """The steps write into spare arrays and over the gradient (nnlearn.optim._steps); the
    weights and states they give are those of the formulas written plainly."""
    from nnlearn.optim._steps import adam_init, adam_step, sgd_init, sgd_step

    rng = np.random.default_rng(7)
    x = rng.standard_normal(1000)
    sgd, adam, spare_sgd, spare_adam = sgd_init(x), adam_init(x), {}, {}
    x_sgd, x_adam = x.copy(), x.copy()
    plain_sgd, plain_adam = (x, np.zeros_like(x)), (x, 0, np.zeros_like(x), np.zeros_like(x))
    for _ in range(5):
        grad = rng.standard_normal(1000) * 10.0 ** rng.integers(-6, 3)
        before = x_sgd.copy(), sgd["velocity"].copy()
        new_sgd, sgd_state = sgd_step(x_sgd, grad.copy(), sgd, 0.1, nesterov=nesterov, spare=spare_sgd)
        np.testing.assert_array_equal(x_sgd, before[0])  # the step leaves its inputs as they were
        np.testing.assert_array_equal(sgd["velocity"], before[1])
        spare_sgd.update(x=x_sgd, velocity=sgd["velocity"])
        x_sgd, sgd = new_sgd, sgd_state
        plain_sgd = textbook_sgd(*plain_sgd[:1], grad, plain_sgd[1], 0.1, nesterov=nesterov)
        np.testing.assert_array_equal(x_sgd, plain_sgd[0])
        np.testing.assert_array_equal(sgd["velocity"], plain_sgd[1])

        new_adam, adam_state = adam_step(x_adam, grad.copy(), adam, 0.01, spare=spare_adam)
        spare_adam.update(x=x_adam, m=adam["m"], v=adam["v"])
        x_adam, adam = new_adam, adam_state
        plain_adam = textbook_adam(plain_adam[0], grad, *plain_adam[1:], 0.01)
        np.testing.assert_array_equal(x_adam, plain_adam[0])
        assert adam["t"] == plain_adam[1]
        np.testing.assert_array_equal(adam["m"], plain_adam[2])
        np.testing.assert_array_equal(adam["v"], plain_adam[3])
