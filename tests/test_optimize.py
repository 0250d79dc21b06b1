import math

import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der

from nnlearn.optim import FULL_BATCH as OPTIMIZERS
from nnlearn.optim import _fmincg as fmincg_module
from nnlearn.optim import minimize
from nnlearn.optim._fmincg import INT, MAX_EVALS, fmincg
from nnlearn.optim._results import REASONS, OptimizeResult


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


# --- fmincg as the course's optimiser: the branches the embedded digits never reach ---


def kinked(x):
    """|x1| + 2|x2| + (x1 - 2 x2 + 1)^2 / 2, with the sign as the derivative of |.|.

    Its kinks make fmincg's line searches fail: from (3, -2) twice in a row after six
    successful ones.
    """
    r = x[0] - 2 * x[1] + 1
    return abs(x[0]) + 2 * abs(x[1]) + 0.5 * r * r, np.array([np.sign(x[0]) + r, 2 * np.sign(x[1]) - 2 * r])


@pytest.fixture
def searches(monkeypatch):
    """Every fmincg line search, in order: where it starts (x, f1, d1, s, z1), how it
    ended (status), the gradient at the last point it tried (df2) and its evaluations."""
    calls = []
    line_search = fmincg_module._line_search

    def spy(fun, x, f1, d1, s, z1):
        status, _, _, df2, _, evaluations = out = line_search(fun, x, f1, d1, s, z1)
        calls.append(dict(x=x, f1=f1, d1=d1, s=s, z1=z1, status=status, df2=df2, evaluations=evaluations))
        return out

    monkeypatch.setattr(fmincg_module, "_line_search", spy)
    return calls


def test_after_a_failed_line_search_fmincg_restarts_along_the_gradient_of_the_last_point_tried(searches):
    result = fmincg(kinked, np.array([3.0, -2.0]), max_iter=10)
    assert [c["status"] for c in searches] == ["success"] * 6 + ["failed"] * 2
    assert result.reason == "line_search_failed" and result.n_iter == 6
    failed, restart = searches[6], searches[7]
    # Back at the last accepted point, with its cost ...
    np.testing.assert_array_equal(restart["x"], failed["x"])
    assert restart["f1"] == failed["f1"]
    # ... but along steepest descent for the gradient of the last point the failed
    # search tried (the course swaps df1 and df2), not for the gradient there.
    np.testing.assert_array_equal(restart["s"], -failed["df2"])
    assert restart["d1"] == -(failed["df2"] @ failed["df2"])
    assert restart["z1"] == 1 / (1 - restart["d1"])
    assert not np.allclose(restart["s"], -kinked(failed["x"])[1], rtol=0.1)
    np.testing.assert_array_equal(result.x, failed["x"])


def test_the_last_tried_gradient_stays_df1_for_the_next_conjugate_direction(searches):
    fmincg(kinked, np.array([-2.0, -1.0]), max_iter=10)
    assert [c["status"] for c in searches][:4] == ["success", "success", "failed", "success"]
    failed, recovered, after = searches[2], searches[3], searches[4]
    df1, df2, s = failed["df2"], recovered["df2"], recovered["s"]
    beta = (df2 @ df2 - df1 @ df2) / (df1 @ df1)  # Polack-Ribiere with the swapped df1
    np.testing.assert_allclose(after["s"], beta * s - df2, rtol=1e-12)
    # The gradient at the restored point would have made another direction.
    g0 = kinked(failed["x"])[1]
    assert not np.allclose(after["s"], (df2 @ df2 - g0 @ df2) / (g0 @ g0) * s - df2, rtol=0.05)


def test_fmincg_resumed_before_a_failed_line_search_takes_the_same_path():
    x0 = np.array([-2.0, -1.0])
    full = fmincg(kinked, x0, max_iter=10)
    saved = {}
    fmincg(kinked, x0, max_iter=10, checkpoint=lambda state: saved.setdefault(len(state["history"]), state))
    resumed = fmincg(kinked, None, max_iter=10, state=saved[2])  # the third search fails
    assert resumed.history == full.history and (resumed.n_evals, resumed.reason) == (full.n_evals, full.reason)
    np.testing.assert_array_equal(resumed.x, full.x)


def test_a_line_search_makes_at_most_max_evals_plus_one_evaluations(searches):
    # Along a linear function the slope never flattens: every search extrapolates until
    # it runs out of evaluations, and fails.
    result = fmincg(lambda x: (-x.sum(), -np.ones_like(x)), np.zeros(3), max_iter=10)
    assert MAX_EVALS + 1 == 21
    assert [c["evaluations"] for c in searches] == [21, 21]
    assert result.n_evals == 1 + 2 * 21 and result.reason == "line_search_failed"


def test_the_kinked_functions_failed_searches_use_all_their_evaluations(searches):
    fmincg(kinked, np.array([3.0, -2.0]), max_iter=10)
    assert [c["evaluations"] for c in searches if c["status"] == "failed"] == [MAX_EVALS + 1] * 2


# A line search never reaches the next two branches: interpolation runs while
# J(point 2) > f1 + RHO z1 d1 or J'(point 2) > -SIG d1, with point 3 the start or an
# accepted extrapolation point (J(point 3) <= f1 + RHO z d1, J'(point 3) <= SIG d1 < 0).
# A positive slope at point 2 puts a root between the cubic's two slopes; otherwise
# the mean slope from point 3 to point 2 exceeds 2 RHO J'(point 3), and a derivative
# quadratic without roots that starts at J'(point 3) < 0 averages at most J'(point 3)/4.
# So the discriminant is >= 0, and the quadratic fit's denominator
# (J'(point 3) z3 + J(point 2) - J(point 3)) is > 0. They are tested on the fits alone.
CUBIC = dict(f2=0.76852, f3=0.9, d2=-0.51828, d3=-0.5, z3=-0.56655)  # the numbers


def test_a_complex_cubic_step_is_clamped_by_magnitude_as_octave_does():
    f2, f3, d2, d3, z3 = CUBIC.values()
    A, B = fmincg_module._cubic_terms(f2, f3, d2, d3, z3)
    disc = B * B - A * d2 * z3 * z3
    assert disc < 0
    z2 = complex(-B, math.sqrt(-disc)) / A  # Octave's (sqrt(disc) - B) / A
    assert abs(z2) > INT * abs(z3)
    # min(z2, INT z3) keeps the real INT z3 (the smaller magnitude); max keeps it over (1 - INT) z3.
    assert fmincg_module._interpolate(**CUBIC, f1=0.9) == pytest.approx(-0.056655, rel=1e-12)
    assert fmincg_module._interpolate(**CUBIC, f1=0.9) == INT * z3


def test_a_complex_cubic_step_smaller_than_int_z3_becomes_one_minus_int_z3():
    fit = dict(f2=0.0, f3=0.334, d2=-0.001, d3=-1.0, z3=-1.0)
    A, B = fmincg_module._cubic_terms(*fit.values())
    disc = B * B - A * fit["d2"] * fit["z3"] ** 2
    assert disc < 0 and abs(complex(-B, math.sqrt(-disc)) / A) < INT  # |z2| = |z3| sqrt(d2 / A), about 0.03
    # min keeps the complex z2, max replaces it by (1 - INT) z3, the larger magnitude.
    assert fmincg_module._interpolate(**fit, f1=0.334) == pytest.approx((1 - INT) * -1.0)


def test_a_real_cubic_step_is_the_cubics_minimiser():
    fit = dict(f2=0.5, f3=1.0, d2=0.4, d3=-1.0, z3=-1.0)  # a minimum between the two points
    A, B = fmincg_module._cubic_terms(*fit.values())
    minimiser = (math.sqrt(B * B - A * fit["d2"]) - B) / A
    assert (1 - INT) * -1.0 < minimiser < INT * -1.0
    assert fmincg_module._interpolate(**fit, f1=1.0) == minimiser


def test_a_quadratic_fit_with_a_zero_denominator_bisects():
    # d3 z3 + f2 - f3 = 1 + 1 - 2 = 0: Octave gets an infinite step, which its guard bisects.
    assert fmincg_module._interpolate(f2=1.0, f3=2.0, d2=0.3, d3=-1.0, z3=-1.0, f1=0.5) == -0.5


@pytest.mark.parametrize("limit, expected", [(-1.0, 2 * 0.56655), (2.0, (2.0 - 0.56655) / 2)])
def test_a_complex_extrapolation_step_takes_the_guards_fallback(limit, expected):
    # The course tests isreal() here: a negative discriminant grows the step EXT-fold,
    # or halves the way to the limit, as an infinite or negative step does.
    f2, f3, d2, d3, z3 = CUBIC.values()
    assert fmincg_module._extrapolate(f2, f3, d2, d3, 0.56655, z3, limit) == pytest.approx(expected, rel=1e-15)


def test_the_kinked_function_reaches_the_complex_extrapolation(monkeypatch):
    negative = []
    extrapolate = fmincg_module._extrapolate

    def spy(f2, f3, d2, d3, z1, z3, limit):
        A, B = fmincg_module._cubic_terms(f2, f3, d2, d3, z3)
        negative.append(B * B - A * d2 * z3 * z3 < 0)
        return extrapolate(f2, f3, d2, d3, z1, z3, limit)

    monkeypatch.setattr(fmincg_module, "_extrapolate", spy)
    fmincg(kinked, np.array([3.0, -2.0]), max_iter=10)
    assert any(negative)


# --- why a run ended ---


def test_the_reasons_are_the_documented_ones_and_no_other():
    assert REASONS == ("converged", "max_iter", "line_search_failed", "interrupted", "not_finite")
    with pytest.raises(ValueError, match="unknown reason"):
        OptimizeResult(x=np.zeros(1), fun=0.0, n_iter=0, n_evals=0, reason="tired")


@pytest.mark.parametrize("method", OPTIMIZERS)
def test_every_optimizer_reports_max_iter_at_the_limit(method):
    result = minimize(rosenbrock, np.array([-1.2, 1.0]), method=method, max_iter=5)
    assert result.reason == "max_iter" and result.n_iter == 5


@pytest.mark.parametrize("method, tol", [("cg", None), ("lbfgs", None), ("fmincg", 1e-10)])
def test_every_optimizer_reports_converged_when_a_tolerance_stops_it(method, tol):
    rng = np.random.default_rng(0)
    M = rng.standard_normal((8, 8))
    A, b = M @ M.T + 8 * np.eye(8), rng.standard_normal(8)
    result = minimize(quadratic(A, b), np.zeros(8), method=method, max_iter=400, tol=tol)
    assert result.reason == "converged" and result.n_iter < 400
    np.testing.assert_allclose(result.x, np.linalg.solve(A, b), atol=1e-4)  # L-BFGS-B: its default ftol


@pytest.mark.parametrize("method", OPTIMIZERS)
def test_every_optimizer_reports_interrupted_when_the_callback_stops_it(method):
    def stop_after_two(iteration, J, x):
        if iteration == 2:
            raise StopIteration

    result = minimize(rosenbrock, np.array([-1.2, 1.0]), method=method, max_iter=50, callback=stop_after_two)
    assert result.reason == "interrupted" and result.interrupted and result.n_iter == 2


@pytest.mark.parametrize("method", OPTIMIZERS)
def test_every_optimizer_reports_a_failed_line_search_on_the_kinked_function(method):
    result = minimize(kinked, np.array([3.0, -2.0]), method=method, max_iter=400)
    assert result.reason == "line_search_failed" and result.n_iter < 400
    assert result.fun == kinked(result.x)[0]  # the cost at the weights returned, not at a trial point


# --- objectives that are not finite ---


def huge(x):
    """Legal but huge: 1e300 x.x overflows a step away, and its gradient's squared norm at once."""
    return 1e300 * (x @ x), 2e300 * x


def infinite(x):
    return math.inf, 2 * x


def nan_gradient(x):
    return float(x @ x), np.full_like(x, math.nan)


def walled(x):
    """x.x - 40 sum(x), infinite outside |x_i| < 10: the unconstrained minimum, x = 20, is outside."""
    return (float(x @ x - 40 * x.sum()) if np.max(np.abs(x)) < 10 else math.inf), 2 * x - 40


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
@pytest.mark.parametrize("fun", [huge, infinite, nan_gradient])
@pytest.mark.parametrize("method", OPTIMIZERS)
def test_an_objective_that_is_not_finite_ends_every_optimizer_cleanly(method, fun):
    result = minimize(fun, np.array([3.0, -2.0, 1.0]), method=method, max_iter=50)
    assert result.reason == "not_finite" and "not finite" in result.message and not result.interrupted
    np.testing.assert_equal(result.fun, fun(result.x)[0])  # the last iterate (or the start) and its cost


def test_fmincg_stops_at_the_last_accepted_point_when_a_trial_point_is_not_finite():
    result = fmincg(walled, np.zeros(2), max_iter=50)
    assert result.reason == "not_finite" and "line search 1" in result.message
    np.testing.assert_array_equal(result.x, np.zeros(2))
    assert result.fun == 0.0 and result.n_evals > 1


def test_fmincg_does_not_evaluate_a_point_that_a_step_overflowed_to():
    def refuse(x):
        raise AssertionError("evaluated a point that is not finite")

    x, f, grad, slope, finite = fmincg_module._probe(refuse, np.ones(2), 1e300, np.full(2, 1e300))
    assert not finite and np.isinf(x).all() and math.isnan(f) and math.isnan(slope) and np.isnan(grad).all()


def test_divide_gives_ieee_infinities_instead_of_raising():
    assert fmincg_module._divide(1.0, 0.0) == math.inf and fmincg_module._divide(-1.0, 0.0) == -math.inf
    assert fmincg_module._divide(1.0, -0.0) == -math.inf and math.isnan(fmincg_module._divide(0.0, 0.0))
    assert fmincg_module._divide(3.0, 2.0) == 1.5
