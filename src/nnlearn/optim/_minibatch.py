"""The mini-batch optimisers' epoch loop over a flat weight vector, and its stopping rule.

For data too large (or too redundant) for full-batch methods, each step follows the
gradient on a batch of b examples drawn without replacement. One *iteration* is one
*epoch*: a pass over all m examples in a fresh order, shuffled by
``numpy.random.default_rng(seed)``. The update each batch's gradient drives (SGD with
momentum, Adam) is :mod:`nnlearn.optim._steps`'s.

What a batch minimises
----------------------
The full objective, with example weights w_i (all 1 when unweighted) and M = sum_i w_i, is

    J = (1/M) sum_i w_i l_i + lam/(2M) sum theta^2        (bias columns excluded).

On a batch B of b rows the optimisers follow

    J_B = m/(b M) sum_{i in B} w_i l_i + lam/(2M) sum theta^2,

that is, unweighted, the batch's *mean* loss plus the *full* problem's penalty: the data
part is an unbiased estimate of J's data part over a random batch and the penalty is J's
own, so E[J_B] = J and E[grad J_B] = grad J. Treating the batch as the whole problem
(penalty lam/(2b)) would regularise m/b times too hard. The caller supplies J_B as
``fun(x, rows)`` (see :func:`nnlearn.compute.batch_objective`).

What is recorded
----------------
``history`` holds, per epoch, the mean of the batch costs J_B weighted by batch size: an
estimate of J while the weights move through the epoch, free to compute, and what
scikit-learn's ``loss_curve_`` records. It is not J at the epoch's final weights.

Stopping follows scikit-learn's MLP: training ends after ``n_iter_no_change`` epochs in a
row fail to improve the best epoch cost by more than ``tol``. With early stopping (a
``validation(x)`` given) it ends after ``n_iter_no_change`` epochs that improve neither
the held-out accuracy nor the held-out loss (:class:`HeldOut`), and the weights of the
best accuracy are returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._results import Callback, Checkpoint, OptimizeResult
from ._steps import LEARNING_RATES, MINI_BATCH, STEPS

__all__ = [
    "MinibatchResult",
    "MinibatchSettings",
    "Plateau",
    "HeldOut",
    "DEFAULT_TOL",
    "epoch_batches",
    "minimize_minibatch",
]

DEFAULT_TOL = 1e-4


@dataclass(frozen=True, kw_only=True)
class MinibatchSettings:
    """How :func:`minimize_minibatch` runs.

    Attributes
    ----------
    method : {"sgd", "adam"}
    max_iter : int
        Epochs at most.
    tol : float, optional
        Smallest improvement that counts (default 1e-4), see ``n_iter_no_change``.
    batch_size : int
        Examples per step (at most m).
    learning_rate : float, optional
        Step size eta; default ``LEARNING_RATES[method]``.
    n_iter_no_change : int
        Stop after this many epochs in a row without improvement.
    seed : None, int or SeedSequence
        The shuffling's.
    refresh_seed : None, int or SeedSequence
        The random state the ``refresh`` hook draws from.
    update : dict
        Passed to the update: ``momentum``, ``nesterov`` (sgd); ``beta_1``, ``beta_2``,
        ``epsilon`` (adam).
    """

    method: str = "adam"
    max_iter: int = 200
    tol: float | None = None
    batch_size: int = 200
    learning_rate: float | None = None
    n_iter_no_change: int = 10
    seed: int | np.random.SeedSequence | None = None
    refresh_seed: int | np.random.SeedSequence | None = None
    update: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class MinibatchResult(OptimizeResult):
    """An :class:`~nnlearn.optim._minimize.OptimizeResult` with the mini-batch run's extras.

    ``validation_scores`` and ``validation_losses`` have the held-out accuracy and loss of
    each epoch with early stopping (else empty);
    ``snapshot`` is the run's state after its last epoch, as ``checkpoint`` receives it:
    given back as ``resume``, a run goes on from there (``partial_fit``'s next epoch).
    """

    validation_scores: list[float] = field(default_factory=list)
    validation_losses: list[float] = field(default_factory=list)
    snapshot: dict[str, Any] = field(default_factory=dict)


def epoch_batches(m: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row indices of one epoch's batches: a random permutation of range(m) cut into
    pieces of ``batch_size`` (the last may be shorter)."""
    order = rng.permutation(m)
    return [order[start : start + batch_size] for start in range(0, m, batch_size)]


@dataclass
class Epoch:
    """What one pass over the batches did.

    ``x`` and ``state`` are the weights and optimiser state reached; ``cost`` the
    size-weighted mean of the batch costs evaluated; ``evaluations`` the batches
    evaluated; ``problem`` is empty when the pass went through, else what was not
    finite, the pass having stopped at that batch (``x`` and ``state`` are then those
    before its step).
    """

    x: np.ndarray
    state: dict[str, Any]
    cost: float
    evaluations: int
    problem: str = ""


def run_epoch(
    fun: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    state: dict[str, Any],
    step: Callable[..., tuple[np.ndarray, dict[str, Any]]],
    batches: Iterable[np.ndarray],
    learning_rate: float,
    options: Mapping[str, Any],
) -> Epoch:
    """One pass over ``batches``, stopping at the first cost, gradient or step that is not finite.

    Parameters
    ----------
    fun : callable
        ``fun(x, rows) -> (J_B, grad_B)``, grad_B of shape (p,).
    x : ndarray, shape (p,)
    state : dict
        The optimiser's state (arrays of shape (p,) and numbers).
    step : callable
        The update, ``step(x, grad, state, learning_rate, spare=..., **options) -> (x, state)``
        (:mod:`nnlearn.optim._steps`); it writes over ``grad``.
    batches : iterable of int ndarray
    learning_rate : float
    options : mapping
        Passed to ``step``.
    """
    total, count, evaluations = 0.0, 0, 0
    # The arrays of the states this epoch's steps replaced, for the next steps to write
    # into (nnlearn.optim._steps); never the epoch's first x and state, which the caller holds.
    spare: dict[str, np.ndarray] = {}
    for index, rows in enumerate(batches, start=1):
        J, grad = fun(x, rows)
        J = float(J)
        if not (isinstance(grad, np.ndarray) and grad.dtype == np.float64 and grad.flags.writeable):
            grad = np.array(grad, dtype=np.float64)  # the step writes over it
        total += J * rows.size
        count += rows.size
        evaluations += 1
        if not (math.isfinite(J) and bool(np.all(np.isfinite(grad)))):
            return Epoch(x, state, total / count, evaluations, f"the cost or gradient at batch {index}")
        # An overflowing step is reported below, as a step that is not finite.
        with np.errstate(over="ignore", invalid="ignore"):
            new_x, new_state = step(x, grad, state, learning_rate, spare=spare, **options)
        if not (bool(np.all(np.isfinite(new_x))) and _finite_state(new_state)):
            return Epoch(x, state, total / count, evaluations, f"the step from batch {index}")
        if index > 1:
            spare.update(x=x, **{name: value for name, value in state.items() if isinstance(value, np.ndarray)})
        x, state = new_x, new_state
    return Epoch(x, state, total / count, evaluations)


def _finite_state(state: Mapping[str, Any]) -> bool:
    """Whether every number and array in an optimiser's state is finite."""
    return all(bool(np.all(np.isfinite(value))) for value in state.values())


@dataclass
class Plateau:
    """scikit-learn's ``n_iter_no_change`` rule on a monitored value.

    ``stale`` counts the epochs in a row whose value failed to beat the best so far by
    more than ``tol`` (lower is better for a cost, higher for a score).
    """

    tol: float
    higher_is_better: bool = False
    best: float | None = None
    stale: int = 0

    def update(self, value: float) -> bool:
        """Record ``value``; True when it is the best so far."""
        if self.best is None:
            self.best = value
            return True
        gain = value - self.best if self.higher_is_better else self.best - value
        self.stale = 0 if gain > self.tol else self.stale + 1
        if gain > 0:
            self.best = value
            return True
        return False


@dataclass
class HeldOut:
    """Early stopping's watch on a held-out part, scored after each iteration or epoch.

    Its accuracy alone stays at chance for the first iterations of a run on inputs in
    [0, 1], and is noisy later while the test accuracy still climbs; its loss (the mean
    cross-entropy) moves from the first. So the run stops once ``patience`` iterations in a
    row have improved neither the best accuracy nor the least loss by more than ``tol``
    (scikit-learn's rule, :class:`Plateau`, on each), and keeps the weights of the best
    accuracy (of equal ones, those with the lower loss).
    """

    tol: float
    losses: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    best_iter: int = 0  # the iteration (from 1) whose weights are kept; 0 before any
    loss: Plateau = field(init=False)
    accuracy: Plateau = field(init=False)

    def __post_init__(self):
        self.loss = Plateau(self.tol, higher_is_better=False)
        self.accuracy = Plateau(self.tol, higher_is_better=True)

    def update(self, loss: float, score: float) -> bool:
        """Record the next iteration's held-out loss and accuracy; True when its weights are kept."""
        kept = self.best_iter
        self.losses.append(float(loss))
        self.scores.append(float(score))
        self.loss.update(float(loss))
        better = self.accuracy.update(float(score))
        if better or (score == self.scores[kept - 1] and loss < self.losses[kept - 1]):
            self.best_iter = len(self.scores)
            return True
        return False

    @property
    def stale(self) -> int:
        return min(self.loss.stale, self.accuracy.stale)

    def message(self, patience: int, unit: str) -> str:
        return (
            f"neither the validation accuracy nor the validation loss improved by more than tol={self.tol} "
            f"for {patience} {unit}"
        )

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of it (:meth:`restore` takes it back)."""
        return {
            "losses": list(self.losses),
            "scores": list(self.scores),
            "best_iter": self.best_iter,
            "plateau_best": self.accuracy.best,
            "plateau_stale": self.accuracy.stale,
            "loss_best": self.loss.best,
            "loss_stale": self.loss.stale,
        }

    @classmethod
    def restore(cls, tol: float, state: Mapping[str, Any]) -> HeldOut:
        scores = [float(v) for v in state["scores"]]
        if "losses" not in state:  # nnlearn 0.2's: the accuracy alone, the first best kept
            state = {**state, "losses": [math.nan] * len(scores), "loss_best": None, "loss_stale": 0}
            state["best_iter"] = int(np.argmax(scores)) + 1 if scores else 0
        held = cls(tol, [float(v) for v in state["losses"]], scores, int(state["best_iter"]))
        held.accuracy.best, held.accuracy.stale = state["plateau_best"], int(state["plateau_stale"])
        held.loss.best, held.loss.stale = state["loss_best"], int(state["loss_stale"])
        return held


def minimize_minibatch(
    fun: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]],
    x0: ArrayLike,
    n_examples: int,
    settings: MinibatchSettings | None = None,
    *,
    callback: Callback | None = None,
    validation: Callable[[np.ndarray], tuple[float, float]] | None = None,
    checkpoint: Checkpoint | None = None,
    resume: Mapping[str, Any] | None = None,
    refresh: Callable[[np.random.Generator], object] | None = None,
) -> MinibatchResult:
    """Minimise the mean of batch objectives ``fun(x, rows) -> (J_B, grad_B)`` by epochs.

    Parameters
    ----------
    fun : callable
        ``fun(x, rows)``: cost and gradient (shape (p,)) on the examples ``rows``
        (int ndarray), scaled as the module docstring says.
    x0 : ndarray, shape (p,)
    n_examples : int
        m, the number of examples ``rows`` index into.
    settings : MinibatchSettings, optional
        The method, its epochs, tolerance, batch size, step size and seeds.
    callback : callable, optional
        ``callback(epoch, J, x)`` after each epoch; may raise StopIteration.
    validation : callable, optional
        ``validation(x) -> (loss, accuracy)`` on a held-out part: enables early stopping
        (:class:`HeldOut`'s rule in place of the training cost's).
    checkpoint : callable, optional
        ``checkpoint(snapshot)`` after each epoch: a dict of arrays, numbers and lists
        holding everything the run needs to go on, shuffling included.
    resume : dict, optional
        A snapshot given to ``checkpoint`` (or a result's ``snapshot``) by an earlier run:
        go on from it exactly, to the weights the uninterrupted run reaches.
    refresh : callable, optional
        ``refresh(rng)`` at the start of every epoch, before its batches are drawn: a
        hook that renews the examples ``fun`` reads (fresh distortions,
        :mod:`nnlearn.training._augment`), drawing from ``rng``, a Generator of its own
        seeded with ``settings.refresh_seed``, whose state the snapshots hold (``"aug_rng"``).

    Returns
    -------
    MinibatchResult
        ``history`` holds the mean batch cost per epoch; ``n_iter`` the epochs run.
        ``reason`` (see :data:`nnlearn.optim.REASONS`) is "converged" when the
        ``n_iter_no_change`` rule stopped the run, "max_iter" after ``max_iter`` epochs,
        "interrupted" when the callback raised StopIteration, and "not_finite" when a
        batch's cost or gradient, or a step, was not finite: the run then stops at that
        batch, before its step, and its last ``history`` entry is the mean of the batch
        costs of that epoch so far.
    """
    settings = MinibatchSettings() if settings is None else settings
    method, max_iter, options = settings.method, settings.max_iter, settings.update
    n_iter_no_change = settings.n_iter_no_change
    if method not in STEPS:
        raise ValueError(f"unknown mini-batch optimizer {method!r}; choose one of {', '.join(MINI_BATCH)}")
    init, step = STEPS[method]
    learning_rate = LEARNING_RATES[method] if settings.learning_rate is None else float(settings.learning_rate)
    batch_size = max(1, min(int(settings.batch_size), n_examples))
    tol = DEFAULT_TOL if settings.tol is None else settings.tol
    plateau = Plateau(tol)  # the training cost's, without early stopping
    held = None if validation is None else HeldOut(tol)
    refresh_rng = None if refresh is None else np.random.default_rng(settings.refresh_seed)
    if resume is None:
        rng = np.random.default_rng(settings.seed)
        x = np.array(x0, dtype=np.float64)
        state = init(x)
        history, best = [], (x, math.inf)
    else:
        x, state, rng, history, best, held = _restore(resume, plateau, held)
        if refresh_rng is not None and "aug_rng" in resume:
            refresh_rng.bit_generator.state = resume["aug_rng"]
    # The epochs a resumed run starts with all went through, each in ceil(m / b) batches.
    evaluations = len(history) * -(-n_examples // batch_size)
    message, reason = f"maximum number of epochs ({max_iter}) reached", "max_iter"
    for epoch in range(len(history) + 1, max_iter + 1):
        if refresh is not None and refresh_rng is not None:
            refresh(refresh_rng)
        batches = epoch_batches(n_examples, batch_size, rng)
        done = run_epoch(fun, x, state, step, batches, learning_rate, options)
        x, state, J = done.x, done.state, done.cost
        evaluations += done.evaluations
        history.append(J)
        if done.problem or not math.isfinite(J):
            message, reason = f"{done.problem or 'the cost'} of epoch {epoch} is not finite", "not_finite"
            break
        if held is not None and validation is not None:
            if held.update(*validation(x)):
                best = (x, J)
        elif plateau.update(J):
            best = (x, J)
        if checkpoint is not None:
            checkpoint(_snapshot(x, state, rng, history, plateau, held, best, refresh_rng))
        if callback is not None:
            try:
                callback(epoch, J, x)
            except StopIteration:
                message, reason = "stopped by callback", "interrupted"
                break
        if (plateau if held is None else held).stale >= n_iter_no_change:
            message = (
                f"training cost did not improve by more than tol={plateau.tol} for {n_iter_no_change} epochs"
                if held is None
                else held.message(n_iter_no_change, "epochs")
            )
            reason = "converged"
            break
    # With early stopping the weights of the best validation score are the result, as in
    # scikit-learn; without, the last weights (the best cost is only a noisy estimate).
    x_last = x
    x, J = best if held is not None and held.scores else (x, history[-1] if history else math.nan)
    return MinibatchResult(
        x=x,
        fun=float(J),
        n_iter=len(history),
        n_evals=evaluations,
        history=history,
        message=message,
        interrupted=reason == "interrupted",
        reason=reason,
        validation_scores=[] if held is None else list(held.scores),
        validation_losses=[] if held is None else list(held.losses),
        snapshot=_snapshot(x_last, state, rng, history, plateau, held, best, refresh_rng),
    )


def _snapshot(x, state, rng, history, plateau, held, best, refresh_rng=None):
    """Everything a run needs to go on exactly: a flat dict of arrays, numbers and lists."""
    extra = {} if refresh_rng is None else {"aug_rng": refresh_rng.bit_generator.state}
    return {
        "x": x,
        "best_x": best[0],
        "best_cost": float(best[1]),
        "history": list(history),
        "scores": [],
        "plateau_best": plateau.best,
        "plateau_stale": plateau.stale,
        **({} if held is None else held.state()),
        "rng": rng.bit_generator.state,
        **{f"opt.{name}": value for name, value in state.items()},
        **extra,
    }


def _restore(snapshot, plateau, held):
    """The loop's variables from a :func:`_snapshot` (``plateau`` is updated in place, and
    ``held`` made again when early stopping is on)."""
    rng = np.random.default_rng()
    rng.bit_generator.state = snapshot["rng"]
    if held is not None:
        held = HeldOut.restore(held.tol, snapshot)
    else:
        plateau.best, plateau.stale = snapshot["plateau_best"], int(snapshot["plateau_stale"])
    state = {name[4:]: value for name, value in snapshot.items() if name.startswith("opt.")}
    best = (np.asarray(snapshot["best_x"]), float(snapshot["best_cost"]))
    return (
        np.array(snapshot["x"], dtype=np.float64),
        state,
        rng,
        list(snapshot["history"]),
        best,
        held,
    )
