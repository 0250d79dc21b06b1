import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der

from nnlearn.optimize import fmincg, minimize


def rosenbrock(x):
    return rosen(x), rosen_der(x)


def quadratic(A, b):
    return lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b)


def test_fmincg_solves_a_quadratic_in_at_most_n_line_searches():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((8, 8))
    A, b = M @ M.T + 8 * np.eye(8), rng.standard_normal(8)
    result = fmincg(quadratic(A, b), np.zeros(8), max_iter=30)
    np.testing.assert_allclose(result.x, np.linalg.solve(A, b), rtol=1e-6, atol=1e-8)


def test_fmincg_minimises_rosenbrock():
    result = fmincg(rosenbrock, np.array([-1.2, 1.0]), max_iter=200)
    np.testing.assert_allclose(result.x, [1.0, 1.0], atol=1e-4)


def test_fmincg_history_decreases_at_every_iteration():
    result = fmincg(rosenbrock, np.array([-1.2, 1.0, -0.5, 2.0]), max_iter=50)
    assert len(result.history) == result.n_iter > 10
    assert np.all(np.diff(result.history) < 0)
    assert result.n_evals >= result.n_iter


@pytest.mark.parametrize("method", ["cg", "lbfgs", "fmincg"])
def test_every_optimizer_records_the_cost_at_each_iteration(method):
    result = minimize(rosenbrock, np.array([-1.2, 1.0]), method=method, max_iter=25)
    assert len(result.history) == result.n_iter
    assert result.history[-1] == pytest.approx(result.fun)
    assert result.fun < rosen(np.array([-1.2, 1.0]))


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown optimizer"):
        minimize(rosenbrock, np.zeros(2), method="newton")


def test_fmincg_resumed_from_a_checkpoint_reaches_the_same_point():
    x0 = np.array([-1.2, 1.0, -0.5, 2.0, 0.3])
    full = fmincg(rosenbrock, x0, max_iter=40)
    saved = {}

    def keep_twelfth(state):
        if len(state["history"]) == 12:
            saved.update(state)

    first = fmincg(rosenbrock, x0, max_iter=40, checkpoint=keep_twelfth)
    np.testing.assert_array_equal(first.x, full.x)
    resumed = fmincg(rosenbrock, None, max_iter=40, state=saved)
    np.testing.assert_array_equal(resumed.x, full.x)
    assert resumed.history == full.history
