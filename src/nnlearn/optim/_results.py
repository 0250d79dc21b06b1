"""What every full-batch optimiser shares: the functions it is given and the result it returns.

An optimiser minimises ``fun(x) -> (J, grad)`` (:data:`Fun`) from ``x0``, calls
``callback(iteration, J, x)`` (:data:`Callback`) and ``checkpoint(state)``
(:data:`Checkpoint`) after each iteration, and returns an :class:`OptimizeResult`.

Why a run ended is its result's ``reason``, one of :data:`REASONS`:

* ``"converged"``: a tolerance was met (SciPy's own tests, fmincg's ``tol``, the
  mini-batch optimisers' no-improvement rule);
* ``"max_iter"``: the iteration limit was reached (for L-BFGS-B also its limit on
  evaluations);
* ``"line_search_failed"``: no acceptable step was found (fmincg's two failed line
  searches in a row, SciPy's abnormal line-search ending);
* ``"interrupted"``: a callback raised StopIteration;
* ``"not_finite"``: the cost, the gradient or a step was not finite (inf or nan,
  :func:`all_finite`). The optimisers end cleanly instead of raising; the result holds
  the last iterate reached and its cost.

It is a module of its own so that :mod:`nnlearn.optim._minimize` (SciPy's optimisers) and
:mod:`nnlearn.optim._fmincg` (the course's) both import it, and neither the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["OptimizeResult", "REASONS", "Fun", "Callback", "Checkpoint", "all_finite"]

#: Why a run ended: the values of :attr:`OptimizeResult.reason`.
REASONS = ("converged", "max_iter", "line_search_failed", "interrupted", "not_finite")

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


def all_finite(values: np.ndarray) -> bool:
    """True when every entry of ``values`` is finite."""
    return bool(np.all(np.isfinite(values)))
