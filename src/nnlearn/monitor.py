"""Watching a training run from a terminal: progress bar, Ctrl-C and checkpoints.

:class:`Monitor` hands :func:`nnlearn.train` its ``callback`` and ``checkpoint``
arguments. The first Ctrl-C (SIGINT) asks the run to stop after the iteration under way,
which keeps the weights reached so far; a second one aborts at once. Checkpoints are
written atomically every ``every`` seconds, and once more when the run stops, so a run
can be resumed from its last iteration whatever ended it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any, Literal

import numpy as np

from .modelio import save_checkpoint

__all__ = ["Monitor"]


class Monitor:
    """Progress, interruption and checkpoints of one run; use it as a context manager.

    Parameters
    ----------
    total : int
        Iterations the run may take (the bar's length).
    done : int
        Iterations already behind it (a resumed run).
    show : bool
        Draw a tqdm bar on stderr.
    checkpoint_path : str or Path, optional
        Where to keep the run's latest state.
    settings : dict
        Written into every checkpoint beside the state.
    every : float
        Seconds between checkpoint writes.
    """

    def __init__(
        self,
        total: int,
        done: int = 0,
        show: bool = True,
        checkpoint_path: str | os.PathLike | None = None,
        settings: dict[str, Any] | None = None,
        every: float = 30.0,
    ) -> None:
        self.total, self.done, self.show = total, done, show
        self.checkpoint_path, self.settings, self.every = checkpoint_path, settings or {}, every
        self.interrupted = False
        self._bar: Any = None  # a tqdm bar, made on the first iteration
        self._state: dict[str, Any] | None = None
        self._saved_at, self._unsaved = time.monotonic(), False

    def __enter__(self) -> Monitor:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc_info: object) -> Literal[False]:
        signal.signal(signal.SIGINT, self._previous)
        if self._bar is not None:
            self._bar.close()
        if self._unsaved:
            self._save()  # the last iteration's state, however the run ended
        return False

    def _on_sigint(self, signum, frame):
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        print("\nstopping after this iteration (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    def callback(self, iteration: int, J: float, x: np.ndarray) -> None:
        """For :func:`nnlearn.train`: advance the bar; stop the run after a Ctrl-C."""
        if self.show:
            if self._bar is None:  # made on the first iteration, after the data were accepted
                from tqdm import tqdm

                self._bar = tqdm(total=self.total, initial=self.done, desc="training", unit="it", file=sys.stderr)
            self._bar.update(iteration - self._bar.n)
            self._bar.set_postfix(cost=f"{J:.6f}", refresh=False)
        if self.interrupted:
            raise StopIteration

    def checkpoint(self, state: dict[str, Any]) -> None:
        """For :func:`nnlearn.train`: keep the state; write it when ``every`` seconds passed."""
        if self.checkpoint_path is None:
            return
        self._state, self._unsaved = state, True
        if time.monotonic() - self._saved_at >= self.every:
            self._save()

    def _save(self):
        save_checkpoint(self.checkpoint_path, self.settings, self._state)
        self._saved_at, self._unsaved = time.monotonic(), False
