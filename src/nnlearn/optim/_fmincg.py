"""fmincg: the course's optimiser, Polack-Ribiere conjugate gradients with a Wolfe-Powell line search.

Each iteration is one line search along the conjugate direction, its steps refined by
quadratic or cubic interpolation and grown by cubic extrapolation, in the manner of the
course's Octave ``fmincg`` down to its handling of infinite, nan and complex steps
(:func:`_interpolate`, :func:`_extrapolate`). :func:`nnlearn.optim._minimize.minimize` runs it as
``method="fmincg"``; its result and reasons are :mod:`nnlearn.optim._results`'.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._results import Callback, Checkpoint, Fun, OptimizeResult, all_finite

__all__ = ["fmincg", "RHO", "SIG", "INT", "EXT", "MAX_EVALS", "RATIO"]

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
    if not all_finite(x):
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
    evaluations = int(all_finite(x))  # a point the step overflowed to is not evaluated
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
            evaluations += all_finite(x)
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
        evaluations += all_finite(x)
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
