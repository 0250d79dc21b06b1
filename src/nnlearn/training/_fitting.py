"""Fitting weights: the named optimiser run from a starting point on the examples.

:func:`fit_weights` is the step of :func:`nnlearn.training._train.fit` that optimises: the
full-batch optimisers (:mod:`nnlearn.optim._minimize`) get ``fun(x) -> (J, grad)`` over a data
term (:mod:`nnlearn.compute._dataterm`; this machine's cores by default), the mini-batch ones
(:mod:`nnlearn.optim._minibatch`) ``fun(x, rows)`` over a batch. Early stopping holds out a
stratified part first (:func:`hold_out`) and watches it: its accuracy each epoch for the
mini-batch optimisers (themselves), its loss each iteration for the full-batch ones
(:class:`Watch`); augmentation
(:mod:`nnlearn.training._augment`) then distorts what is left: once before a full-batch run, every
epoch of a mini-batch one (:class:`_EpochCopies`: the next epoch's copies made in a thread
while this one trains, the same as made in turn). A run that diverges ends in a
:class:`TrainingError`; one whose examples are lost keeps the weights of its last iteration.
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..compute._dataterm import DataTerm, batch_objective, full_objective, held_out
from ..compute._threads import ShardedDataTerm, blas_threads
from ..core import Network
from ..errors import ExamplesLost, ParameterError, TrainingError
from ..optim._minibatch import DEFAULT_TOL, HeldOut, MinibatchSettings, minimize_minibatch
from ..optim._minimize import minimize
from ..optim._results import OptimizeResult
from ._augment import augmented, distort
from ._continuation import Continuation
from ._settings import Options

__all__ = ["fit_weights", "hold_out", "DataTermFactory", "Watch", "ValidatedResult", "EarlyStoppingWarning"]

#: Makes the data term of a run: ``(X, Y, network, sample_weight) -> DataTerm``.
DataTermFactory = Callable[..., DataTerm]


def _streams(seed):
    """Independent shuffling, validation-split and distortion seeds from one seed. The first
    two are what they were before augmentation existed: SeedSequence's children do not
    depend on how many are spawned."""
    return tuple(np.random.SeedSequence(seed).spawn(3))


def hold_out(X, Y, sample_weight, fraction, seed):
    """Stratified split of a validation fraction for early stopping.

    Returns
    -------
    train : tuple (X, Y, sample_weight)
    validation : tuple (X, Y, sample_weight)
    """
    from sklearn.model_selection import train_test_split

    labels = np.argmax(Y, axis=1)
    state = int(np.random.default_rng(seed).integers(2**31 - 1))
    try:
        fit_rows, val_rows = train_test_split(
            np.arange(X.shape[0]), test_size=fraction, random_state=state, stratify=labels
        )
    except ValueError as exc:
        raise ParameterError(
            f"early stopping cannot hold out a stratified validation_fraction={fraction} of "
            f"{X.shape[0]} examples ({exc}); change validation_fraction or turn early stopping off"
        ) from None
    weights = (None, None) if sample_weight is None else (sample_weight[fit_rows], sample_weight[val_rows])
    return (X[fit_rows], Y[fit_rows], weights[0]), (X[val_rows], Y[val_rows], weights[1])


def _fit_minibatch(X, Y, network, start, options, *, sample_weight, callback, checkpoint, streams, measure):
    shuffle_seed, _, augment_seed = streams
    refresh = None
    if options.augment:
        # Each epoch trains on the originals and fresh distorted copies of them, written
        # over the copies' rows of one buffer, which the batch objective reads.
        m, reps = X.shape[0], options.augment.copies + 1
        X, Y = np.concatenate([X] * reps), np.concatenate([Y] * reps)
        sample_weight = None if sample_weight is None else np.concatenate([sample_weight] * reps)
        originals = X[:m]
        refresh = _EpochCopies(
            lambda rng: distort(originals, copies=reps - 1, settings=options.augment, seed=rng),
            X[m:],
            options.max_iter - start.n_iter,
        )

    # Unlike the full-batch objective, a batch's products are too small to share between
    # threads (docs/benchmarks.md), so batches stay on the optimiser's one thread.
    fun = batch_objective(X, Y, options.lam, network, sample_weight, blas=options.blas)
    settings = MinibatchSettings(
        method=options.optimizer,
        max_iter=options.max_iter,
        tol=options.tol,
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        n_iter_no_change=options.patience,
        seed=shuffle_seed,
        refresh_seed=augment_seed,
    )
    try:
        return minimize_minibatch(
            fun,
            start.x,
            X.shape[0],
            settings,
            callback=callback,
            validation=measure,
            checkpoint=checkpoint,
            resume=start.state,
            refresh=refresh,
        )
    finally:
        if refresh is not None:
            refresh.close()


class _EpochCopies:
    """A mini-batch run's ``refresh`` hook (:func:`nnlearn.optim._minibatch.minimize_minibatch`):
    fresh copies written over ``out`` at each epoch's start, the next epoch's made meanwhile.

    ``make(rng)`` makes one epoch's copies, drawing from the Generator ``rng``. Made in turn,
    each epoch's come from the run's generator as the epoch before left it. Here, as soon as
    an epoch has its copies, the next epoch's are made in a thread of their own, from a
    copy of the generator in the state it is now in, while this epoch trains (NumPy lets go
    of the GIL in its loops, so they take another core). When the next epoch asks, with
    the generator in that state, it takes them, and the generator moves on to the state the
    copy's draws left it in. The copies, the generator's state between epochs (what a
    checkpoint saves) and so the weights are those of copies made in turn, bit for bit.

    Parameters
    ----------
    make : callable
        ``make(rng) -> ndarray`` of ``out``'s shape.
    out : ndarray
        The rows the copies are written over.
    epochs : int
        The calls to come (the run's epochs left): none is made ahead after the last.
    """

    def __init__(self, make: Callable[[np.random.Generator], np.ndarray], out: np.ndarray, epochs: int):
        self.make, self.out, self.epochs = make, out, epochs
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nnlearn-augment")
        # The generator's state the next epoch's copies start from, and the Future of (copies, its state after).
        self._ahead: tuple[Mapping[str, Any], Future] | None = None

    def __call__(self, rng: np.random.Generator) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == rng.bit_generator.state:
            copies, after = ahead[1].result()
            rng.bit_generator.state = after
        else:  # the run's first epoch, or a generator set elsewhere
            copies = self.make(rng)
        self.out[...] = copies
        self.epochs -= 1
        if self.epochs > 0:
            twin = copy.deepcopy(rng)
            self._ahead = (rng.bit_generator.state, self._pool.submit(self._made, twin))

    def _made(self, rng):
        return self.make(rng), rng.bit_generator.state

    def close(self) -> None:
        """Wait for copies being made ahead (an early stop, an interruption leaves them unused)."""
        self._ahead = None
        self._pool.shutdown(wait=True, cancel_futures=True)


def _full_batch_data(X, Y, sample_weight, options, resume, streams):
    """The full-batch optimisers' examples, the fixed distorted copies added, and the resume
    state split into the optimiser's and this module's own (:data:`_OWN_KEYS`)."""
    resume = None if resume is None else dict(resume)
    saved = {name: resume.pop(name) for name in list(resume) if name in _OWN_KEYS} if resume else {}
    extra: dict = {}
    if options.augment:
        rng = np.random.default_rng(streams[2])
        if "aug_rng" in saved:  # the copies made again from the state they were made with
            rng.bit_generator.state = saved["aug_rng"]
        extra["aug_rng"] = rng.bit_generator.state
        X, Y, sample_weight = augmented(X, Y, sample_weight, options.augment, rng)
    return (X, Y, sample_weight), resume, saved, extra


def _fit_full_batch(fun, x0, options, *, callback, checkpoint, resume, saved, extra, measure):
    """The full-batch optimiser on ``fun``, with early stopping's watch on the held-out
    part when ``measure`` is given."""
    watch = None if measure is None else Watch(measure, options.patience, saved)

    def save(state):
        if watch is not None:
            watch.observe(len(state["history"]), state["x"])
            extra.update(watch.snapshot())
        checkpoint({**state, **extra})

    def observe(iteration, J, x):
        if watch is not None:
            watch.observe(iteration, x)
        if callback is not None:
            callback(iteration, J, x)
        if watch is not None and watch.done:
            watch.stopped = True
            raise StopIteration

    trail = _Trail(observe)
    try:
        result = minimize(
            fun,
            x0,
            options.optimizer,
            options.max_iter,
            options.tol,
            trail,
            resume,
            None if checkpoint is None else save,
        )
    except ExamplesLost as exc:
        exc.result = trail.result(x0, str(exc))  # type: ignore[attr-defined]
        raise
    return result if watch is None else watch.result(result)


# What _fit_full_batch adds to an optimiser's checkpoint (Watch.snapshot's, and the
# distortions' random state), kept from the optimiser on resume.
_OWN_KEYS = frozenset({"aug_rng", "es.best_x"} | {f"es.{name}" for name in HeldOut(DEFAULT_TOL).state()})


@dataclass
class ValidatedResult(OptimizeResult):
    """A full-batch run with early stopping: its result, with the held-out part's accuracy
    and loss after each iteration (``validation_scores``, ``validation_losses``) and the
    iteration whose weights it holds."""

    validation_scores: list[float] = field(default_factory=list)
    validation_losses: list[float] = field(default_factory=list)
    best_iteration: int = 0


class Watch:
    """Early stopping of a full-batch optimiser: the held-out part scored after each
    iteration, by :class:`nnlearn.optim._minibatch.HeldOut`'s rule, as the mini-batch
    optimisers have it each epoch. Its state goes into the run's checkpoints
    (:meth:`snapshot`, keys ``es.*``), so that a resumed run stops where the uninterrupted
    one would.

    ``measure(x) -> (loss, accuracy)`` scores weights on the held-out part.
    """

    def __init__(self, measure, n_iter_no_change, saved=None):
        self.measure, self.patience = measure, n_iter_no_change
        self.held = HeldOut(DEFAULT_TOL)
        self.best_x, self.stopped = None, False
        if saved and "es.scores" in saved:
            self.held = HeldOut.restore(DEFAULT_TOL, {name[3:]: value for name, value in saved.items()})
            self.best_x = np.array(saved["es.best_x"], dtype=np.float64)

    def observe(self, iteration, x):
        """Score iteration ``iteration``'s weights, once (the checkpoint and the callback both ask)."""
        if iteration <= len(self.held.scores):
            return
        if self.held.update(*self.measure(x)):
            self.best_x = np.array(x, dtype=np.float64)

    @property
    def done(self):
        return self.held.stale >= self.patience

    def snapshot(self):
        return {"es.best_x": self.best_x, **{f"es.{name}": value for name, value in self.held.state().items()}}

    def result(self, result):
        """The optimiser's result with the best iteration's weights, and why it stopped."""
        held = self.held
        if self.best_x is None:  # not one iteration went through
            return ValidatedResult(**vars(result), validation_scores=list(held.scores))
        fields = vars(result) | {"x": self.best_x, "fun": result.history[held.best_iter - 1]}
        if self.stopped:
            fields.update(reason="converged", interrupted=False, message=held.message(self.patience, "iterations"))
        return ValidatedResult(
            **fields,
            validation_scores=list(held.scores),
            validation_losses=list(held.losses),
            best_iteration=held.best_iter,
        )


def fit_weights(
    X: np.ndarray,
    Y: np.ndarray,
    network: Network,
    options: Options,
    start: Continuation,
    *,
    sample_weight=None,
    callback=None,
    checkpoint=None,
    data_term: DataTermFactory = ShardedDataTerm,
) -> OptimizeResult:
    """Run the optimiser ``options`` name from ``start`` on checked, converted data.

    Parameters
    ----------
    X : ndarray, shape (m, n), float64 or float32
    Y : ndarray, shape (m, K), one-hot, X's dtype
    network : Network
    options : Options
        Checked options; its optimiser, lambda, iterations, tolerance and mini-batch settings.
    start : Continuation
        The weights to start from, and the optimiser's state to go on from (None: a
        fresh optimiser).
    sample_weight, callback
        As for :func:`train`.
    checkpoint : callable, optional
        ``checkpoint(state)`` after each iteration, with the optimiser's state (a dict).
    data_term : callable
        ``data_term(X, Y, network, sample_weight, blas=...)`` makes the full-batch optimisers' data
        term (:class:`nnlearn.compute._dataterm.DataTerm`); this machine's cores by default.

    Returns
    -------
    OptimizeResult
        A :class:`~nnlearn.optim._minibatch.MinibatchResult` for the mini-batch optimisers; a
        :class:`ValidatedResult` for the full-batch ones with early stopping.

    Raises
    ------
    TrainingError
        When the cost or the weights end non-finite.
    """
    streams = _streams(options.seed)
    measure = None
    if options.early_stopping:
        (X, Y, sample_weight), validation = hold_out(X, Y, sample_weight, options.validation_fraction, streams[1])
        measure = held_out(validation[0], validation[1], network, validation[2])
    # Overflow on the way to a non-finite cost is reported once, as a TrainingError below,
    # not as NumPy's warnings on the way.
    if options.is_minibatch:
        with blas_threads(1), np.errstate(over="ignore", invalid="ignore"):
            result = _fit_minibatch(
                X,
                Y,
                network,
                start,
                options,
                sample_weight=sample_weight,
                callback=callback,
                checkpoint=checkpoint,
                streams=streams,
                measure=measure,
            )
    else:
        (X, Y, sample_weight), resume, saved, extra = _full_batch_data(
            X, Y, sample_weight, options, start.state, streams
        )
        # The data term shares the examples among the threads (nnlearn.compute._threads), so it is
        # made before the optimiser's own small vector work is held to one thread: OpenBLAS
        # threads fighting over that work made L-BFGS-B several times slower (docs/benchmarks.md).
        fun = full_objective(data_term(X, Y, network, sample_weight, blas=options.blas), options.lam)
        with blas_threads(1), np.errstate(over="ignore", invalid="ignore"):
            result = _fit_full_batch(
                fun,
                start.x,
                options,
                callback=callback,
                checkpoint=checkpoint,
                resume=resume,
                saved=saved,
                extra=extra,
                measure=measure,
            )
    if measure is not None:
        _warn_near_chance(result, validation)
    if result.reason == "not_finite" or not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        hint = "; try a smaller learning_rate" if options.is_minibatch else ""
        if options.lam > 1e100:
            hint = f"; lambda {options.lam:g} makes the penalty overflow, use a smaller one"
        raise TrainingError(
            f"training diverged: the cost or its gradient stopped being finite after iteration {result.n_iter}{hint}"
        )
    return result


class EarlyStoppingWarning(UserWarning):
    """Early stopping kept weights that score on the held-out part little better than chance."""


#: How near, in points of accuracy, the best held-out score may come to chance before a warning.
NEAR_CHANCE = 0.05


def _warn_near_chance(result, validation):
    """Warn when the held-out part's best accuracy is within :data:`NEAR_CHANCE` of chance:
    always guessing its most frequent class."""
    scores = getattr(result, "validation_scores", None)
    if not scores:
        return
    _, Y, weights = validation
    chance = float(np.max(np.average(Y, axis=0, weights=weights)))
    best = max(scores)
    if best < chance + NEAR_CHANCE:
        warnings.warn(
            f"early stopping's best held-out accuracy, {best:.1%}, is within {100 * NEAR_CHANCE:.0f} points of chance "
            f"({chance:.1%}, always the most frequent class): the model learnt little; scale the inputs, "
            "raise n_iter_no_change or max_iter, or turn early stopping off",
            EarlyStoppingWarning,
            stacklevel=_callers_level(),
        )


def _callers_level():
    """The ``stacklevel`` that names the first caller outside nnlearn (``train``, ``fit``, a script)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("nnlearn."):
        frame, level = frame.f_back, level + 1
    return level


class _Trail:
    """A callback that remembers the last iteration's weights before calling ``callback``:
    what is kept when the examples are lost mid-run."""

    def __init__(self, callback):
        self.callback, self.x, self.costs = callback, None, []

    def __call__(self, iteration, J, x):
        self.x = np.array(x, copy=True)
        self.costs.append(float(J))
        if self.callback is not None:
            self.callback(iteration, J, x)

    def result(self, x0, message):
        x = x0 if self.x is None else self.x
        fun = self.costs[-1] if self.costs else float("nan")
        n = len(self.costs)
        return OptimizeResult(
            x=x,
            fun=fun,
            n_iter=n,
            n_evals=0,
            history=list(self.costs),
            message=message,
            interrupted=True,
            reason="interrupted",
        )
