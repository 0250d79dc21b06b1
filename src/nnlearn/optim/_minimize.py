"""Full-batch optimisers over a flat weight vector.

Every optimiser minimises ``fun(x) -> (J, grad)`` from ``x0`` for at most ``max_iter``
iterations and records the cost after each iteration:

* ``"cg"``: SciPy's nonlinear conjugate gradients, as in the notebook;
* ``"lbfgs"``: SciPy's L-BFGS-B;
* ``"fmincg"``: :func:`fmincg`, Polack-Ribiere conjugate gradients with a Wolfe-Powell
  line search, in the manner of the course's Octave optimiser (:mod:`nnlearn.optim._fmincg`).

A ``callback(iteration, J, x)`` may raise :class:`StopIteration` to end the run early
with the weights reached so far.

Why a run ended is its result's ``reason``, one of :data:`REASONS`
(:mod:`nnlearn.optim._results` says what each means). A cost, gradient or step that is not
finite (inf or nan) ends a run cleanly with ``"not_finite"`` instead of raising; the
result holds the last iterate reached and its cost.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike

from ._fmincg import fmincg
from ._results import Callback, Checkpoint, Fun, OptimizeResult, all_finite

__all__ = ["minimize", "FULL_BATCH", "REPLAYING"]

#: The full-batch optimisers, by name.
FULL_BATCH = ("cg", "lbfgs", "fmincg")
#: Those of SciPy, whose inner state is SciPy's own: a resumed run replays its iterations.
REPLAYING = ("cg", "lbfgs")
_SCIPY_METHODS = {"cg": "CG", "lbfgs": "L-BFGS-B"}


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
        raise ValueError(f"unknown optimizer {method!r}; choose one of {', '.join(FULL_BATCH)}")
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
        if not (math.isfinite(J) and all_finite(grad)):
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
    finite = math.isfinite(float(result.fun)) and all_finite(result.x)
    if not finite or result.status == 3 or (result.status != 0 and result.status != 1 and not_finite_at_end):
        return "not_finite"
    if result.success:
        return "converged"
    if result.status == 1:
        return "max_iter"
    return "line_search_failed"
