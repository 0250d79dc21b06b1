"""Full-batch optimisers over a flat weight vector.

Every optimiser minimises ``fun(x) -> (J, grad)`` from ``x0`` for at most ``max_iter``
iterations and records the cost after each iteration:

* ``"cg"``: SciPy's nonlinear conjugate gradients, as in the notebook;
* ``"lbfgs"``: SciPy's L-BFGS-B;
* ``"fmincg"``: :func:`fmincg`, Polack-Ribiere conjugate gradients with a Wolfe-Powell
  line search, in the manner of the course's Octave optimiser.

A ``callback(iteration, J, x)`` may raise :class:`StopIteration` to end the run early
with the weights reached so far.

Why a run ended is its result's ``reason``, one of :data:`REASONS`:

* ``"converged"``: a tolerance was met (SciPy's own tests, fmincg's ``tol``, the
  mini-batch optimisers' no-improvement rule);
* ``"max_iter"``: the iteration limit was reached (for L-BFGS-B also its limit on
  evaluations);
* ``"line_search_failed"``: no acceptable step was found (fmincg's two failed line
  searches in a row, SciPy's abnormal line-search ending);
* ``"interrupted"``: a callback raised StopIteration;
* ``"not_finite"``: the cost, the gradient or a step was not finite (inf or nan). The
  optimisers end cleanly instead of raising; the result holds the last iterate reached
  and its cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike

__all__ = ["OptimizeResult", "minimize", "fmincg", "OPTIMIZERS", "REASONS"]

OPTIMIZERS = ("cg", "lbfgs", "fmincg")
#: Why a run ended: the values of :attr:`OptimizeResult.reason`.
REASONS = ("converged", "max_iter", "line_search_failed", "interrupted", "not_finite")
_SCIPY_METHODS = {"cg": "CG", "lbfgs": "L-BFGS-B"}

#: ``fun(x) -> (J, grad)``: the cost and its gradient at a weight vector.
Fun = Callable[[np.ndarray], tuple[float, np.ndarray]]
#: ``callback(iteration, J, x)``, after each iteration; may raise StopIteration.
Callback = Callable[[int, float, np.ndarray], object]
#: ``checkpoint(state)``, after each iteration, with a dict of arrays and numbers.
Checkpoint = Callable[[dict[str, Any]], object]


@dataclass
class OptimizeResult:
    """Where an optimiser ended: weights ``x``, cost ``fun``, and its trail.

    Attributes
    ----------
    x : ndarray, shape (p,)
    fun : float
        The cost at ``x``.
    n_iter : int
        Iterations recorded in ``history``.
    n_evals : int
        Evaluations of the objective.
    history : list of float
        The cost after each iteration.
    message : str
        Why the run ended, in words.
    interrupted : bool
        True when a callback raised StopIteration.
    reason : str
        Why the run ended, one of :data:`REASONS` (keyword only).
    """

    x: np.ndarray
    fun: float
    n_iter: int
    n_evals: int
    history: list[float] = field(default_factory=list)
    message: str = ""
    interrupted: bool = False
    reason: str = field(kw_only=True)

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown reason {self.reason!r}; expected one of {', '.join(REASONS)}")


def minimize(
    fun: Fun,
    x0: ArrayLike,
    method: str = "cg",
    max_iter: int = 400,
    tol: float | None = None,
    callback: Callback | None = None,
    state: dict[str, Any] | None = None,
    checkpoint: Checkpoint | None = None,
) -> OptimizeResult:
    """Minimise ``fun(x) -> (J, grad)`` with the named optimiser.

    Parameters
    ----------
    fun : callable
        Returns the cost (float) and its gradient (ndarray of the shape of ``x``).
    x0 : ndarray, shape (p,)
    method : {"cg", "lbfgs", "fmincg"}
    max_iter : int
        Iterations (line searches for fmincg).
    tol : float, optional
        Stopping tolerance passed to SciPy (``gtol`` for CG, ``ftol``/``gtol`` for
        L-BFGS-B); for fmincg, stop when an iteration lowers J by less than
        ``tol * max(1, |J|)``.
    callback : callable, optional
        ``callback(iteration, J, x)`` after each iteration; may raise StopIteration.
    state : dict, optional
        A state that ``checkpoint`` received in an earlier run, to continue it: the run
        reaches the weights of the uninterrupted one. fmincg goes on where it was; SciPy's
        optimisers replay the recorded iterations from the saved start (their inner state
        is SciPy's own), which costs those iterations' time again.
    checkpoint : callable, optional
        ``checkpoint(state)`` after each iteration, with a dict of arrays and numbers.

    Returns
    -------
    OptimizeResult
        Its ``reason`` says why the run ended (see :data:`REASONS`).
    """
    if method == "fmincg":
        return fmincg(fun, x0, max_iter, tol, callback, state, checkpoint)
    if method not in _SCIPY_METHODS:
        raise ValueError(f"unknown optimizer {method!r}; choose one of {', '.join(OPTIMIZERS)}")
    return _minimize_scipy(fun, x0, _SCIPY_METHODS[method], max_iter, tol, callback, state, checkpoint)


def _all_finite(values: np.ndarray) -> bool:
    """True when every entry of ``values`` is finite."""
    return bool(np.all(np.isfinite(values)))


def _minimize_scipy(
    fun: Fun,
    x0: ArrayLike,
    method: str,
    max_iter: int,
    tol: float | None,
    callback: Callback | None,
    state: dict[str, Any] | None = None,
    checkpoint: Checkpoint | None = None,
) -> OptimizeResult:
    """SciPy's optimiser with a cost history, callbacks and checkpoints.

    SciPy keeps an optimiser's inner state (search direction, curvature pairs) to itself,
    so a run is resumed by replaying it: from the checkpoint's starting point the
    recorded iterations are run again, deterministically, which rebuilds that state
    exactly; the replayed costs are checked against the recorded ones, and the run goes
    on from there. The callback and the checkpoint see only the new iterations.
    """
    start = np.array(x0 if state is None else state["x0"], dtype=np.float64)
    replay = [] if state is None else list(state["history"])
    history, evaluations = [], [0]
    run: dict[str, Any] = {
        "x": start,
        "fun": math.inf,
        "interrupted": False,
        "replay_matched": True,
        # whether an evaluation since the last iterate met a cost or gradient that is not finite
        "not_finite_since_iterate": False,
    }

    outer_errors = np.geterr()

    def counted(x):
        evaluations[0] += 1
        with np.errstate(**outer_errors):  # the objective warns as it would outside
            J, grad = fun(x)
        if evaluations[0] == 1:
            run["fun"] = float(J)  # the cost at the start: SciPy evaluates there first
        if not (math.isfinite(J) and _all_finite(grad)):
            run["not_finite_since_iterate"] = True
        return J, grad

    def record(intermediate_result):
        history.append(float(intermediate_result.fun))
        run["x"], run["fun"] = np.array(intermediate_result.x), history[-1]
        run["not_finite_since_iterate"] = False
        if len(history) <= len(replay):
            run["replay_matched"] &= history[-1] == replay[len(history) - 1]
            return
        if checkpoint is not None:
            checkpoint(
                {"x0": start, "x": run["x"], "fun": run["fun"], "history": list(history), "n_evals": evaluations[0]}
            )
        if callback is not None:
            try:
                callback(len(history), history[-1], run["x"])
            except StopIteration:
                run["interrupted"] = True
                raise

    # SciPy's line searches compute with whatever the objective returns; when that is inf
    # or nan they warn on the way to giving up, which the reason "not_finite" reports.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = scipy.optimize.minimize(
            counted, start, jac=True, method=method, tol=tol, options={"maxiter": max_iter}, callback=record
        )
    reason = _scipy_reason(result, run["interrupted"], run["not_finite_since_iterate"])
    if reason in ("converged", "max_iter"):
        x, J = result.x, float(result.fun)
    else:
        # After a failed or interrupted line search SciPy's fun may be a trial point's
        # cost (L-BFGS-B's, next to the last iterate's x) or nan: the last iterate, or
        # the start, and its cost are what is known.
        x, J = run["x"], run["fun"]
    message = {
        "interrupted": "stopped by callback",
        "not_finite": f"the cost or gradient is not finite (SciPy: {str(result.message).strip()})",
    }.get(reason, str(result.message))
    if not run["replay_matched"]:
        message += "; the replayed iterations differed from the checkpoint's (other BLAS threads?)"
    return OptimizeResult(
        x=x,
        fun=J,
        n_iter=len(history),
        n_evals=evaluations[0],
        history=history,
        message=message,
        interrupted=reason == "interrupted",
        reason=reason,
    )


def _scipy_reason(result: scipy.optimize.OptimizeResult, interrupted: bool, not_finite_at_end: bool) -> str:
    """The :data:`REASONS` entry for SciPy's CG or L-BFGS-B result.

    Both report ``status`` 0 when a tolerance is met and 1 at the iteration limit
    (L-BFGS-B also at its limit on evaluations). CG's status 2 is a line search that
    found no better point and 3 a nan result; L-BFGS-B's 2 is an abnormal line search (or
    rounding errors that prevent progress). A line search that met an infinite or nan
    cost or gradient after the last iterate failed because of it.
    """
    if interrupted:
        return "interrupted"
    finite = math.isfinite(float(result.fun)) and _all_finite(result.x)
    if not finite or result.status == 3 or (result.status != 0 and result.status != 1 and not_finite_at_end):
        return "not_finite"
    if result.success:
        return "converged"
    if result.status == 1:
        return "max_iter"
    return "line_search_failed"


# fmincg's constants. RHO and SIG are the Wolfe-Powell conditions' constants: sufficient
# decrease J(x + z s) <= J(x) + RHO z J'(x), and curvature |J'(x + z s)| <= -SIG J'(x).
RHO, SIG = 0.01, 0.5
INT = 0.1  # keep a new point at least this fraction of the bracket away from its ends
EXT = 3.0  # extrapolate to at most this many times the current step
# Evaluations a line search may make after its first, as the course's MAX: MAX_EVALS + 1 in all.
MAX_EVALS = 20
RATIO = 100.0  # largest growth of the initial step from one line search to the next


def _divide(a: float, b: float) -> float:
    """``a / b`` as IEEE arithmetic (and Octave) has it: +-inf or nan for ``b == 0``.

    Python raises ZeroDivisionError instead; the course's code relies on the infinity
    (or nan) reaching its guards, which then bisect or fall back.
    """
    if b != 0 or math.isnan(b):
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _cubic_terms(f2: float, f3: float, d2: float, d3: float, z3: float) -> tuple[float, float]:
    """Coefficients of the cubic through (0, f2, d2) and (z3, f3, d3), relative to point 2."""
    A = _divide(6 * (f2 - f3), z3) + 3 * (d2 + d3)
    B = 3 * (f3 - f2) - z3 * (d3 + 2 * d2)
    return A, B


def _interpolate(f2: float, f3: float, d2: float, d3: float, z3: float, f1: float) -> float:
    """Step back from point 2 towards point 3 (``z3`` away): a quadratic fit when the cost
    went up, else a cubic fit; bisection when the fit is infinite or nan. Kept INT away
    from both ends of the bracket.

    When the cubic's discriminant is negative its minimiser is complex. The course's
    Octave code goes on with the complex step (it is neither nan nor infinite, so its
    bisection guard lets it through) and clamps it with ``min`` and ``max``, which
    compare complex numbers by magnitude. ``min(z2, INT*z3)`` keeps INT*z3, the smaller
    in magnitude, when ``|z2| > INT |z3|``: a real number, which ``max`` then compares
    with (1 - INT) z3 as a real. Otherwise ``min`` keeps the complex z2 and ``max``
    replaces it with (1 - INT) z3, the larger in magnitude (so too on a tie, where
    Octave orders by phase and INT*z3 < 0 has the largest, pi). The step is real either way.
    """
    if f2 > f1:
        z2 = z3 - _divide(0.5 * d3 * z3 * z3, d3 * z3 + f2 - f3)
    else:
        A, B = _cubic_terms(f2, f3, d2, d3, z3)
        disc = B * B - A * d2 * z3 * z3
        if disc < 0:
            # z2 = (i sqrt(-disc) - B) / A, taken apart into its real and imaginary parts
            real, imag = _divide(-B, A), _divide(math.sqrt(-disc), A)
            if imag != 0 and math.isfinite(real) and math.isfinite(imag):
                if math.hypot(real, imag) > abs(INT * z3):
                    return max(INT * z3, (1 - INT) * z3)
                return (1 - INT) * z3
            # an imaginary part lost to underflow leaves Octave a real number
            z2 = real if imag == 0 else math.nan
        else:
            z2 = _divide(math.sqrt(disc) - B, A)  # a nan disc gives a nan step, bisected below
    if not math.isfinite(z2):
        z2 = z3 / 2
    return max(min(z2, INT * z3), (1 - INT) * z3)


def _extrapolate(f2: float, f3: float, d2: float, d3: float, z1: float, z3: float, limit: float) -> float:
    """Step forward with cubic extrapolation, at most EXT times the step and never past
    ``limit`` (the smallest step known to be too long, or -1 when there is none).

    A negative discriminant makes the course's extrapolated step complex, which its guard
    (``~isreal(z2)``) sends to the fallback, as it does an infinite, nan or negative step.
    """
    A, B = _cubic_terms(f2, f3, d2, d3, z3)
    disc = B * B - A * d2 * z3 * z3
    z2 = _divide(-d2 * z3 * z3, B + math.sqrt(disc)) if disc >= 0 else math.nan
    bounded = limit > -0.5
    if not math.isfinite(z2) or z2 < 0:
        return (limit - z1) / 2 if bounded else z1 * (EXT - 1)
    if bounded and z2 + z1 > limit:
        return (limit - z1) / 2
    if not bounded and z2 + z1 > z1 * EXT:
        return z1 * (EXT - 1)
    if z2 < -z3 * INT:
        return -z3 * INT
    if bounded and z2 < (limit - z1) * (1 - INT):
        return (limit - z1) * (1 - INT)
    return z2


def _probe(fun: Fun, x: np.ndarray, z: float, s: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, float, bool]:
    """Step from ``x`` by ``z`` along ``s`` and evaluate there.

    Returns
    -------
    x : ndarray, shape (p,)
        ``x + z s``.
    f : float
    grad : ndarray, shape (p,)
    slope : float
        The cost, gradient and slope ``grad @ s`` at the new point; nan when the step
        overflowed, which is not evaluated.
    finite : bool
        Whether the point was evaluated and its cost and slope are finite. A finite
        slope means a finite gradient: an infinite or nan entry makes the dot product
        infinite or nan, ``s`` being finite.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # reported through ``finite``
        x = x + z * s
    if not _all_finite(x):
        return x, math.nan, np.full_like(x, math.nan), math.nan, False
    J, grad = fun(x)
    with np.errstate(over="ignore", invalid="ignore"):
        slope = float(grad @ s)
    f = float(J)
    return x, f, grad, slope, math.isfinite(f) and math.isfinite(slope)


def _line_search(
    fun: Fun, x: np.ndarray, f1: float, d1: float, s: np.ndarray, z1: float
) -> tuple[str, np.ndarray, float, np.ndarray, float, int]:
    """Search along ``s`` from ``x`` (cost f1, slope d1 < 0) starting with step z1.

    Returns
    -------
    status : {"success", "failed", "not_finite"}
        "not_finite" as soon as a step overflows or a point's cost or gradient is not
        finite.
    x : ndarray, shape (p,)
        The last point reached.
    f2 : float
    df2 : ndarray, shape (p,)
        Cost and gradient at ``x``.
    z1 : float
        The step from the start to ``x``.
    evaluations : int
        At most MAX_EVALS + 1: the first point, then MAX_EVALS more.
    """
    x, f2, df2, d2, finite = _probe(fun, x, z1, s)
    evaluations = int(_all_finite(x))  # a point the step overflowed to is not evaluated
    if not finite:
        return "not_finite", x, f2, df2, z1, evaluations
    f3, d3, z3 = f1, d1, -z1  # point 3: the other end of the bracket, relative to point 2
    limit = -1.0
    while True:
        while (f2 > f1 + z1 * RHO * d1 or d2 > -SIG * d1) and evaluations <= MAX_EVALS:
            limit = z1
            z2 = _interpolate(f2, f3, d2, d3, z3, f1)
            z1 += z2
            x, f2, df2, d2, finite = _probe(fun, x, z2, s)
            evaluations += _all_finite(x)
            if not finite:
                return "not_finite", x, f2, df2, z1, evaluations
            z3 -= z2
        if f2 > f1 + z1 * RHO * d1 or d2 > -SIG * d1:
            return "failed", x, f2, df2, z1, evaluations
        if d2 > SIG * d1:
            return "success", x, f2, df2, z1, evaluations
        if evaluations > MAX_EVALS:
            return "failed", x, f2, df2, z1, evaluations
        z2 = _extrapolate(f2, f3, d2, d3, z1, z3, limit)
        f3, d3, z3 = f2, d2, -z2
        z1 += z2
        x, f2, df2, d2, finite = _probe(fun, x, z2, s)
        evaluations += _all_finite(x)
        if not finite:
            return "not_finite", x, f2, df2, z1, evaluations


def _fmincg_start(fun: Fun, x0: ArrayLike) -> dict[str, Any]:
    """fmincg's state at ``x0``: the first direction is steepest descent.

    The state's keys: ``x`` (shape (p,)) and ``fun``, the last accepted point and its
    cost; ``grad`` (shape (p,)), the course's df1, the gradient the next direction was
    made from: the gradient at ``x``, except after a failed line search, when it is the
    gradient at the last point that search tried; ``direction`` (shape (p,)) and
    ``slope``, the next search's direction s and the slope assumed along it, ``grad @ s``;
    ``step``, its first step; ``failed_last``, whether the last search failed;
    ``searches``, the line searches made; ``history``, the cost after each successful
    one; ``n_evals``, the evaluations made.
    """
    x = np.array(x0, dtype=np.float64)
    J, grad = fun(x)
    direction = -grad
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow stops the run as "not_finite"
        slope = float(-direction @ direction)
    return {
        "x": x,
        "fun": float(J),
        "grad": grad,
        "direction": direction,
        "slope": slope,
        "step": 1.0 / (1.0 - slope),
        "failed_last": False,
        "searches": 0,
        "history": [],
        "n_evals": 1,
    }


def _fmincg_ready(state: dict[str, Any]) -> bool:
    """Whether a line search can start from ``state``: finite cost, slope and step.

    A finite slope ``grad @ direction`` means a finite gradient and direction; it fails
    when the gradient is so large that its squared norm overflows.
    """
    return math.isfinite(state["fun"]) and math.isfinite(state["slope"]) and math.isfinite(state["step"])


def _fmincg_advance(fun: Fun, state: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """One line search from ``state``.

    Returns
    -------
    state : dict
        The next state (see :func:`_fmincg_start`); ``state`` itself is not changed.
    status : {"success", "failed", "not_finite"}
        As :func:`_line_search` reports. After "not_finite" the state is the old one,
        with the search and its evaluations counted.
    """
    x, f1, df1, s, d1 = state["x"], state["fun"], state["grad"], state["direction"], state["slope"]
    status, x2, f2, df2, z1, evaluations = _line_search(fun, x, f1, d1, s, state["step"])
    new = dict(state, searches=state["searches"] + 1, n_evals=state["n_evals"] + evaluations)
    if status == "not_finite":
        return new, status
    if status == "failed":
        # As the course does: back to the last accepted point and its cost, but the next
        # direction is steepest descent for the gradient of the last point tried (the
        # course swaps df1 and df2 here), and that gradient stays df1 for the next step's
        # Polack-Ribiere update. After a second failure in a row the run ends, so the
        # course makes no new direction then.
        if not state["failed_last"]:
            s = -df2
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow stops the next iteration
                d1 = float(-s @ s)
            new.update(grad=df2, direction=s, slope=d1, step=1.0 / (1.0 - d1))
        new.update(failed_last=True)
        return new, status
    # Overflows here leave a slope that is not finite, which ends the next iteration.
    with np.errstate(over="ignore", invalid="ignore"):
        beta = _divide(float(df2 @ df2 - df1 @ df2), float(df1 @ df1))  # Polack-Ribiere
        s = beta * s - df2
        d2 = float(df2 @ s)
        if d2 > 0:  # not a descent direction: restart along steepest descent
            s = -df2
            d2 = float(-s @ s)
    # The course's min ignores a nan ratio, as Python's min(RATIO, nan) does.
    z1 *= min(RATIO, _divide(d1, d2 - np.finfo(float).tiny))
    new.update(
        x=x2,
        fun=f2,
        grad=df2,
        direction=s,
        slope=d2,
        step=z1,
        failed_last=False,
        history=state["history"] + [f2],
    )
    return new, status


def fmincg(
    fun: Fun,
    x0: ArrayLike,
    max_iter: int = 400,
    tol: float | None = None,
    callback: Callback | None = None,
    state: dict[str, Any] | None = None,
    checkpoint: Checkpoint | None = None,
) -> OptimizeResult:
    """Polack-Ribiere conjugate gradients with a Wolfe-Powell line search.

    Each iteration is one line search along the conjugate direction s: the step is
    refined by quadratic or cubic interpolation while the sufficient-decrease or
    curvature condition fails, and grown by cubic extrapolation while the slope is
    still steep, with at most MAX_EVALS + 1 evaluations. When a line search fails, the
    run goes back to the last good point and restarts along steepest descent for the
    gradient of the last point tried, as the course's optimiser does; two failures in a
    row end the run.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (J, grad)``, grad of shape (p,).
    x0 : ndarray, shape (p,)
        Ignored when ``state`` is given.
    max_iter : int
        Line searches at most, failed ones included.
    tol : float, optional
        Stop when a line search lowers J by less than ``tol * max(1, |J|)``.
    callback : callable, optional
        ``callback(iteration, J, x)`` after every successful line search; may raise
        StopIteration.
    state : dict, optional
        A state handed to ``checkpoint`` by an earlier run: continue it exactly.
    checkpoint : callable, optional
        ``checkpoint(state)`` after every successful line search; the dict holds
        arrays and numbers only and is not changed afterwards.

    Returns
    -------
    OptimizeResult
        ``history`` holds J after every successful line search; ``x`` and ``fun`` are
        the last accepted point and its cost, also when the run ends because a cost or
        gradient is not finite (``reason`` "not_finite").
    """
    state = _fmincg_start(fun, x0) if state is None else state
    message, reason = "maximum number of iterations reached", "max_iter"
    while True:
        if not _fmincg_ready(state):
            where = f"after line search {state['searches']}" if state["searches"] else "at the start"
            message, reason = f"the cost, gradient or search direction is not finite {where}", "not_finite"
            break
        if state["searches"] >= max_iter:
            break
        previous, failed_before = state["fun"], state["failed_last"]
        state, status = _fmincg_advance(fun, state)
        if status == "not_finite":
            message = f"the cost or gradient is not finite at a point of line search {state['searches']}"
            reason = "not_finite"
            break
        if status == "failed":
            if failed_before:
                message, reason = "line search failed twice in a row", "line_search_failed"
                break
            continue
        if checkpoint is not None:
            checkpoint(state)
        if callback is not None:
            try:
                callback(len(state["history"]), state["fun"], state["x"])
            except StopIteration:
                message, reason = "stopped by callback", "interrupted"
                break
        if tol is not None and previous - state["fun"] < tol * max(1.0, abs(state["fun"])):
            message, reason = "cost change below tol", "converged"
            break
    return OptimizeResult(
        x=state["x"],
        fun=state["fun"],
        n_iter=len(state["history"]),
        n_evals=state["n_evals"],
        history=list(state["history"]),
        message=message,
        interrupted=reason == "interrupted",
        reason=reason,
    )
