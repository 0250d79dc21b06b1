"""Full-batch optimisers over a flat weight vector.

Every optimiser minimises ``fun(x) -> (J, grad)`` from ``x0`` for at most ``max_iter``
iterations and records the cost after each iteration:

* ``"cg"``: SciPy's nonlinear conjugate gradients, as in the notebook;
* ``"lbfgs"``: SciPy's L-BFGS-B;
* ``"fmincg"``: :func:`fmincg`, Polack-Ribiere conjugate gradients with a Wolfe-Powell
  line search, in the manner of the course's Octave optimiser.

A ``callback(iteration, J, x)`` may raise :class:`StopIteration` to end the run early
with the weights reached so far.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike

__all__ = ["OptimizeResult", "minimize", "fmincg", "OPTIMIZERS"]

OPTIMIZERS = ("cg", "lbfgs", "fmincg")
_SCIPY_METHODS = {"cg": "CG", "lbfgs": "L-BFGS-B"}

#: ``fun(x) -> (J, grad)``: the cost and its gradient at a weight vector.
Fun = Callable[[np.ndarray], tuple[float, np.ndarray]]
#: ``callback(iteration, J, x)``, after each iteration; may raise StopIteration.
Callback = Callable[[int, float, np.ndarray], object]
#: ``checkpoint(state)``, after each iteration, with a dict of arrays and numbers.
Checkpoint = Callable[[dict[str, Any]], object]


@dataclass
class OptimizeResult:
    """Where an optimiser ended: weights ``x``, cost ``fun``, and its trail."""

    x: np.ndarray
    fun: float
    n_iter: int
    n_evals: int
    history: list[float] = field(default_factory=list)
    message: str = ""
    interrupted: bool = False


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
    """
    if method == "fmincg":
        return fmincg(fun, x0, max_iter, tol, callback, state, checkpoint)
    if method not in _SCIPY_METHODS:
        raise ValueError(f"unknown optimizer {method!r}; choose one of {', '.join(OPTIMIZERS)}")
    return _minimize_scipy(fun, x0, _SCIPY_METHODS[method], max_iter, tol, callback, state, checkpoint)


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
    run: dict[str, Any] = {"x": start, "fun": math.inf, "interrupted": False, "replay_matched": True}

    def counted(x):
        evaluations[0] += 1
        return fun(x)

    def record(intermediate_result):
        history.append(float(intermediate_result.fun))
        run["x"], run["fun"] = np.array(intermediate_result.x), history[-1]
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

    result = scipy.optimize.minimize(
        counted, start, jac=True, method=method, tol=tol, options={"maxiter": max_iter}, callback=record
    )
    interrupted = run["interrupted"]
    x, J = (run["x"], run["fun"]) if interrupted else (result.x, float(result.fun))
    message = "stopped by callback" if interrupted else str(result.message)
    if not run["replay_matched"]:
        message += "; the replayed iterations differed from the checkpoint's (other BLAS threads?)"
    return OptimizeResult(
        x=x,
        fun=J,
        n_iter=len(history),
        n_evals=evaluations[0],
        history=history,
        message=message,
        interrupted=interrupted,
    )


# fmincg's constants. RHO and SIG are the Wolfe-Powell conditions' constants: sufficient
# decrease J(x + z s) <= J(x) + RHO z J'(x), and curvature |J'(x + z s)| <= -SIG J'(x).
RHO, SIG = 0.01, 0.5
INT = 0.1  # keep a new point at least this fraction of the bracket away from its ends
EXT = 3.0  # extrapolate to at most this many times the current step
MAX_EVALS = 20  # evaluations per line search
RATIO = 100.0  # largest growth of the initial step from one line search to the next


def _cubic_terms(f2, f3, d2, d3, z3):
    """Coefficients of the cubic through (0, f2, d2) and (z3, f3, d3), relative to point 2."""
    A = 6 * (f2 - f3) / z3 + 3 * (d2 + d3)
    B = 3 * (f3 - f2) - z3 * (d3 + 2 * d2)
    return A, B


def _interpolate(f2, f3, d2, d3, z3, f1):
    """Step back from point 2 towards point 3 (a bracket): a quadratic fit when the cost
    went up, else a cubic fit; bisection when the fit is unusable. Kept INT away from
    both ends of the bracket."""
    if f2 > f1:
        z2 = z3 - (0.5 * d3 * z3 * z3) / (d3 * z3 + f2 - f3)
    else:
        A, B = _cubic_terms(f2, f3, d2, d3, z3)
        disc = B * B - A * d2 * z3 * z3
        z2 = (math.sqrt(disc) - B) / A if disc >= 0 and A != 0 else math.nan
    if not math.isfinite(z2):
        z2 = z3 / 2
    return max(min(z2, INT * z3), (1 - INT) * z3)


def _extrapolate(f2, f3, d2, d3, z1, z3, limit):
    """Step forward with cubic extrapolation, at most EXT times the step and never past
    ``limit`` (the smallest step known to be too long, or -1 when there is none)."""
    A, B = _cubic_terms(f2, f3, d2, d3, z3)
    disc = B * B - A * d2 * z3 * z3
    denominator = B + math.sqrt(disc) if disc >= 0 else 0.0
    z2 = -d2 * z3 * z3 / denominator if denominator != 0 else math.nan
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


def _line_search(fun, x, f1, d1, s, z1):
    """Search along ``s`` from ``x`` (cost f1, slope d1 < 0) starting with step z1.

    Returns ``(success, x, f2, df2, z1, evaluations)`` at the point reached.
    """
    x = x + z1 * s
    f2, df2 = fun(x)
    evaluations, d2 = 1, float(df2 @ s)
    f3, d3, z3 = f1, d1, -z1  # point 3: the other end of the bracket, relative to point 2
    limit = -1.0
    while True:
        while (f2 > f1 + z1 * RHO * d1 or d2 > -SIG * d1) and evaluations < MAX_EVALS:
            limit = z1
            z2 = _interpolate(f2, f3, d2, d3, z3, f1)
            z1 += z2
            x = x + z2 * s
            f2, df2 = fun(x)
            evaluations += 1
            d2 = float(df2 @ s)
            z3 -= z2
        if f2 > f1 + z1 * RHO * d1 or d2 > -SIG * d1:
            return False, x, f2, df2, z1, evaluations
        if d2 > SIG * d1:
            return True, x, f2, df2, z1, evaluations
        if evaluations >= MAX_EVALS:
            return False, x, f2, df2, z1, evaluations
        z2 = _extrapolate(f2, f3, d2, d3, z1, z3, limit)
        f3, d3, z3 = f2, d2, -z2
        z1 += z2
        x = x + z2 * s
        f2, df2 = fun(x)
        evaluations += 1
        d2 = float(df2 @ s)


def _fmincg_start(fun, x0):
    x = np.array(x0, dtype=np.float64)
    J, grad = fun(x)
    direction = -grad
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


def _fmincg_advance(fun, state):
    """One line search from ``state``; returns the next state and whether it succeeded."""
    x, f1, df1, s, d1 = state["x"], state["fun"], state["grad"], state["direction"], state["slope"]
    success, x2, f2, df2, z1, evaluations = _line_search(fun, x, f1, d1, s, state["step"])
    new = dict(state, searches=state["searches"] + 1, n_evals=state["n_evals"] + evaluations)
    if not success:
        # Back to the last good point, and along steepest descent from there.
        s = -df1
        d1 = float(-s @ s)
        new.update(direction=s, slope=d1, step=1.0 / (1.0 - d1), failed_last=True)
        return new, False
    beta = float((df2 @ df2 - df1 @ df2) / (df1 @ df1))  # Polack-Ribiere
    s = beta * s - df2
    d2 = float(df2 @ s)
    if d2 > 0:  # not a descent direction: restart along steepest descent
        s = -df2
        d2 = float(-s @ s)
    z1 *= min(RATIO, d1 / (d2 - np.finfo(float).tiny))
    new.update(
        x=x2,
        fun=float(f2),
        grad=df2,
        direction=s,
        slope=d2,
        step=z1,
        failed_last=False,
        history=state["history"] + [float(f2)],
    )
    return new, True


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
    still steep. When a line search fails, the search restarts from the last good point
    along steepest descent; two failures in a row end the run.

    Parameters
    ----------
    state : dict, optional
        A state handed to ``checkpoint`` by an earlier run: continue it exactly.
    checkpoint : callable, optional
        ``checkpoint(state)`` after every successful line search; the dict holds
        arrays and numbers only and is not changed afterwards.

    Returns
    -------
    OptimizeResult
        ``history`` holds J after every successful line search.
    """
    state = _fmincg_start(fun, x0) if state is None else state
    message, interrupted = "maximum number of iterations reached", False
    while state["searches"] < max_iter:
        previous, failed_before = state["fun"], state["failed_last"]
        state, success = _fmincg_advance(fun, state)
        if not success:
            if failed_before:
                message = "line search failed twice in a row"
                break
            continue
        if checkpoint is not None:
            checkpoint(state)
        if callback is not None:
            try:
                callback(len(state["history"]), state["fun"], state["x"])
            except StopIteration:
                message, interrupted = "stopped by callback", True
                break
        if tol is not None and previous - state["fun"] < tol * max(1.0, abs(state["fun"])):
            message = "cost change below tol"
            break
    return OptimizeResult(
        x=state["x"],
        fun=state["fun"],
        n_iter=len(state["history"]),
        n_evals=state["n_evals"],
        history=list(state["history"]),
        message=message,
        interrupted=interrupted,
    )
