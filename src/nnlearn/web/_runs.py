"""Training runs: one at a time, each in a worker thread, each with its list of events.

A run trains with :func:`nnlearn.train` on 80% of a built-in dataset (a stratified split,
seed 0), its callback posting a ``progress`` event each iteration (a run has at most
:attr:`~nnlearn.web._limits.Limits.max_iter`; a stream delivers them in batches, see
:mod:`nnlearn.web._app`) and ``hidden`` pictures of the first layer (every
:attr:`~nnlearn.web._limits.Limits.hidden_seconds`), and raising
StopIteration when the run is cancelled or past its wall time. A finished run hands its
model to ``swap`` (the server serves it from then on) and posts ``done``; otherwise
``cancelled`` or ``error``. The events are kept, so that a reader who comes late reads
them all (of the ``hidden`` pictures, the latest only).
"""

from __future__ import annotations

import base64
import bisect
import itertools
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from ..compute._threads import blas_threads
from ..core import unpack
from ..datasets._builtin import DATASET_FRAMING, image_side, load_data, split
from ..errors import NNLearnError
from ..model._model import Model
from ..training._settings import Options
from ..training._train import train
from ._limits import Limits
from ._render import TILE_GAP, tile_columns, tiles_png

__all__ = ["Run", "Runs", "Busy", "TEST_SIZE", "SPLIT_SEED", "FINAL"]

#: The held-out part of a run's dataset, and the seed of its stratified split.
TEST_SIZE, SPLIT_SEED = 0.2, 0
#: The events that end a run.
FINAL = ("done", "cancelled", "error")


class Busy(Exception):
    """A run is going; the server trains one at a time."""


class Run:
    """One training run's events, in order: ``(number, name, data)``, numbered from 1."""

    def __init__(self, dataset: str, options: Options):
        self.id = secrets.token_hex(6)
        # What cancelling asks for: the page that started the run holds it (its tab's
        # sessionStorage, so a reload keeps it); the id alone, which any client may read, does not do.
        self.token = secrets.token_urlsafe(24)
        self.dataset, self.options = dataset, options
        self.cancelled = threading.Event()
        self.state = "running"
        self._events: list[tuple[int, str, dict[str, Any]]] = []
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def post(self, name: str, data: dict[str, Any]) -> None:
        """Add an event; a ``hidden`` picture replaces the one before (it only grows stale)."""
        with self._lock:
            if name == "hidden":
                self._events = [event for event in self._events if event[1] != "hidden"]
            self._events.append((next(self._numbers), name, data))
            if name in FINAL:
                self.state = name

    def since(self, number: int) -> list[tuple[int, str, dict[str, Any]]]:
        """The events after event ``number`` (0: all kept)."""
        with self._lock:
            start = bisect.bisect_right([event[0] for event in self._events], number)
            return self._events[start:]

    @property
    def finished(self) -> bool:
        return self.state != "running"


class _Reporter:
    """The run's callback: events as the optimiser goes, StopIteration when it must stop."""

    def __init__(self, run: Run, limits: Limits, network, start: float):
        self.run, self.limits, self.network, self.start = run, limits, network, start
        self.pictured = -np.inf
        self.last: tuple[int, np.ndarray] | None = None
        self.timed_out = False

    def __call__(self, iteration, J, x):
        now = time.monotonic()
        cost = float(J)  # JSON has no NaN or infinity: a diverging run's cost is null until it fails
        self.run.post("progress", {"iteration": int(iteration), "cost": cost if math.isfinite(cost) else None})
        self.last = (int(iteration), x)
        if now - self.pictured >= self.limits.hidden_seconds:
            self.picture(iteration, x)
            self.pictured = now
        if self.run.cancelled.is_set():
            raise StopIteration
        if now - self.start > self.limits.max_run_seconds:
            self.timed_out = True
            raise StopIteration

    def picture(self, iteration, x):
        side = image_side(self.network.layer_sizes[0])
        theta1 = unpack(np.asarray(x, dtype=np.float64), self.network)[0]
        png = base64.b64encode(tiles_png(theta1, side)).decode("ascii")
        units = self.network.layer_sizes[1]
        self.run.post(
            "hidden",
            {
                "iteration": int(iteration),
                "png": f"data:image/png;base64,{png}",
                "units": units,
                "columns": tile_columns(units),
                "side": side,
                "gap": TILE_GAP,
            },
        )

    def finish(self):
        """The last iteration's picture, when the last one shown is older."""
        if self.last is not None:
            self.picture(*self.last)


def _one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, NNLearnError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


def _train(run: Run, limits: Limits, swap: Callable[[Model], str]) -> None:
    """The worker thread's whole work: every outcome ends in one final event."""
    start = time.monotonic()
    try:
        X, y = load_data(run.dataset)
        X_train, X_test, y_train, y_test = split(X, y, test_size=TEST_SIZE, seed=SPLIT_SEED)
        options = run.options
        network = options.network(X.shape[1], np.unique(y).size)
        run.post(
            "start",
            {
                "dataset": run.dataset,
                "layer_sizes": list(network.layer_sizes),
                "optimizer": options.optimizer,
                "max_iter": options.max_iter,
                "train_examples": len(y_train),
                "test_examples": len(y_test),
            },
        )
        if run.cancelled.is_set():
            run.post("cancelled", {"iterations": 0})
            return
        reporter = _Reporter(run, limits, network, start)
        # One BLAS thread (by default) for the run: the server's requests keep a core.
        with blas_threads(limits.train_threads):
            model = train(X_train, y_train, options=options, callback=reporter)
        reporter.finish()
        if run.cancelled.is_set():
            run.post("cancelled", {"iterations": model.history["n_iter"]})
            return
        done = _record(model, run.dataset, X_train, y_train, X_test, y_test, reporter.timed_out)
        done["model"] = swap(model)
        run.post("done", done)
    except Exception as exc:  # a run's failure (diverged, out of memory, ...) is an event, never a crash
        run.post("error", {"error": _one_line(exc)})


def _record(model, dataset, X_train, y_train, X_test, y_test, timed_out):
    """What the model records of its run (so that its figures judge it on its test part),
    and the ``done`` event's numbers."""
    train_accuracy, test_accuracy = model.score(X_train, y_train), model.score(X_test, y_test)
    model.history.update(
        data=dataset,
        test_size=TEST_SIZE,
        split_seed=SPLIT_SEED,
        framing=DATASET_FRAMING[dataset],
        train_accuracy=train_accuracy,
        test_accuracy=test_accuracy,
        source=f"trained here on {dataset}",
    )
    if timed_out:
        model.history["stopped_by"] = "the server's time limit"
    return {
        "train_accuracy": train_accuracy,
        "test_accuracy": test_accuracy,
        "iterations": model.history["n_iter"],
        "cost": model.history["cost"][-1] if model.history["cost"] else None,
        "seconds": model.history["seconds"],
        "stopped": model.history.get("stopped_by") or model.history.get("stop_reason"),
    }


class Runs:
    """The server's runs: at most one going, the last ``limits.kept_runs`` finished kept.

    ``swap(model) -> id`` serves a finished run's model and returns its id.
    """

    def __init__(self, limits: Limits, swap: Callable[[Model], str]):
        self.limits, self.swap = limits, swap
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, dataset: str, options: Options) -> Run:
        """A new run, started in its thread. :class:`Busy` while another is going."""
        with self._lock:
            going = [run for run in self._runs.values() if not run.finished]
            if going:
                raise Busy(f"run {going[0].id} is still training; one run at a time (cancel it first)")
            run = Run(dataset, options)
            self._runs[run.id] = run
            finished = [key for key, old in self._runs.items() if old.finished]
            for key in finished[: max(0, len(finished) - self.limits.kept_runs)]:
                del self._runs[key]
                self._threads.pop(key, None)
            thread = threading.Thread(
                target=_train, args=(run, self.limits, self.swap), name=f"nnlearn-run-{run.id}", daemon=True
            )
            self._threads[run.id] = thread
            thread.start()
            return run

    def get(self, run_id: str) -> Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def going(self) -> Run | None:
        """The run under way, if one is."""
        with self._lock:
            return next((run for run in self._runs.values() if not run.finished), None)

    def cancel_all(self) -> None:
        """Ask every run still going to stop (at its next iteration)."""
        with self._lock:
            for run in self._runs.values():
                run.cancelled.set()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds in all for the runs' threads to end."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
