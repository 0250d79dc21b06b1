"""Watching a training run from a terminal: progress bar, interruptions and checkpoints.

:class:`Monitor` hands :func:`nnlearn.train` its ``callback`` and ``checkpoint``
arguments. The first Ctrl-C (SIGINT), SIGTERM or SIGHUP (a closed terminal) asks the run
to stop after the iteration under way, which keeps the weights reached so far; a second
one aborts at once, except during a write (:meth:`Monitor.protect`), which is finished
first. A signal ignored when the process started (``nohup``) stays ignored. Checkpoints are
written atomically every ``every`` seconds, and once more when the run stops, so a run
can be resumed from its last iteration whatever ended it; a checkpoint that cannot be
written is reported and the run goes on.

Nothing here lets a closed or broken stderr end a run: the bar and the messages go
through :class:`SafeStream`, which falls silent when its stream fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np

from ..errors import NNLearnError
from ..persist._atomic import OutputExistsError, write_new
from ..training._checkpoints import save_checkpoint
from ..training._continuation import Continuation

__all__ = ["Monitor", "SafeStream", "say"]

#: The signals that ask a run to stop, and the exit status that reports each (128 + its
#: number): SIGHUP is what a closed terminal sends.
STOP_SIGNALS = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}


class SafeStream:
    """A text stream that never raises: once its stream fails (closed, broken pipe), it
    falls silent.

    Parameters
    ----------
    stream : text stream, optional
        Default: ``sys.stderr`` at each write (None when Python started without one).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self.broken = False

    @property
    def stream(self) -> TextIO | None:
        return self._stream if self._stream is not None else sys.stderr

    def write(self, text: str) -> int:
        stream = self.stream
        if self.broken or stream is None:
            return len(text)
        try:
            stream.write(text)
        except RuntimeError:  # a signal handler's message came in the middle of another write
            pass
        except (OSError, ValueError):  # EPIPE, EBADF; ValueError: the file object was closed
            self.broken = True
        return len(text)

    def flush(self) -> None:
        stream = self.stream
        if self.broken or stream is None:
            return
        try:
            stream.flush()
        except RuntimeError:
            pass
        except (OSError, ValueError):
            self.broken = True

    def isatty(self) -> bool:
        try:
            return bool(self.stream is not None and self.stream.isatty())
        except (OSError, ValueError):
            return False

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", None) or "utf-8"


_STDERR = SafeStream()


def say(message: str) -> None:
    """Print one line on stderr, whatever state stderr is in: on a line of its own when a
    progress bar is drawn there (the bar is cleared first and drawn again after)."""
    bars = sys.modules.get("tqdm")
    if bars is not None:
        with bars.tqdm.external_write_mode(file=_STDERR):
            _STDERR.write(message + "\n")
    else:
        _STDERR.write(message + "\n")
    _STDERR.flush()


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
    replace_checkpoint : bool
        Whether the first checkpoint write may replace an existing file (a resumed run's
        own checkpoint, or ``--force``); otherwise it creates the file and fails, with a
        warning, if another process created it meanwhile.
    prefix : str
        Starts every message (``nnlearn train``).

    Attributes
    ----------
    interrupted : bool
        A stop was asked for (SIGINT, SIGTERM or SIGHUP).
    signal_name : str or None
        The first stop signal's name.
    saved_iteration : int or None
        The iteration the checkpoint file holds, once this run wrote it.
    """

    def __init__(
        self,
        total: int,
        done: int = 0,
        show: bool = True,
        checkpoint_path: str | os.PathLike | None = None,
        settings: dict[str, Any] | None = None,
        every: float = 30.0,
        replace_checkpoint: bool = True,
        prefix: str = "nnlearn",
    ) -> None:
        self.total, self.done, self.show = total, done, show
        self.checkpoint_path, self.settings, self.every = checkpoint_path, settings or {}, every
        self.replace_checkpoint, self.prefix = replace_checkpoint, prefix
        self.interrupted, self.signal_name = False, None
        self.saved_iteration: int | None = None
        self._bar: Any = None  # a tqdm bar, made on the first iteration
        self._cost: float | None = None
        self._state: dict[str, Any] | None = None
        self._saved_at, self._unsaved, self._failing = time.monotonic(), False, False
        self._writing: str | None = None  # what protect() is writing now
        self._abort = False  # a second signal came during a write: stop once it is done
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Monitor:
        # Signal handlers can only be set from the main thread; elsewhere (a library
        # caller's worker thread) the run simply cannot be stopped by a signal.
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                number = getattr(signal, name, None)  # no SIGHUP on Windows
                # A signal ignored when nnlearn started stays ignored (`nohup nnlearn train`,
                # a background job's Ctrl-C), as Unix programs leave it.
                if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
                    self._previous[number] = signal.signal(number, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> Literal[False]:
        try:
            self.close_bar()
            self.flush()  # the last iteration's state, however the run ended
        finally:
            for number, handler in self._previous.items():
                signal.signal(number, handler)
            self._previous = {}
        return False

    @property
    def exit_status(self) -> int:
        """The exit status that reports the stop signal received (130 for SIGINT, 143 for
        SIGTERM, 129 for SIGHUP)."""
        return STOP_SIGNALS.get(self.signal_name or "SIGINT", 130)

    def _on_signal(self, signum, frame):
        name = signal.Signals(signum).name
        key = "Ctrl-C" if name == "SIGINT" else name
        if self._writing is not None:
            # Never leave a write half done: finish it, then stop.
            if self.interrupted:
                self._abort = True
            else:
                self.interrupted, self.signal_name = True, name
            say(f"\n{self.prefix}: {key}: finishing writing {self._writing}, then stopping")
            return
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted, self.signal_name = True, name
        again = "Ctrl-C" if name == "SIGINT" else name
        say(f"\n{self.prefix}: {key}: stopping after this iteration ({again} again to abort)")

    @contextlib.contextmanager
    def protect(self, what: str) -> Iterator[None]:
        """Run a write to completion even if a second stop signal arrives meanwhile.

        ``what`` names the file for the message. A signal during the write is noted; a
        second one (an abort) takes effect when the write is done, as KeyboardInterrupt.
        """
        outer, self._writing = self._writing, what
        try:
            yield
        finally:
            self._writing = outer
        if self._abort and outer is None:
            self._abort = False
            raise KeyboardInterrupt

    def callback(self, iteration: int, J: float, x: np.ndarray) -> None:
        """For :func:`nnlearn.train`: advance the bar; stop the run after a stop signal."""
        self._cost = J
        if self.show:
            if self._bar is None:  # made on the first iteration, after the data were accepted
                from tqdm import tqdm

                self._bar = tqdm(total=self.total, initial=self.done, desc="training", unit="it", file=_STDERR)
            self._bar.update(iteration - self._bar.n)
            self._bar.set_postfix(cost=f"{J:.6f}", refresh=False)
        if self.interrupted:
            raise StopIteration

    def finish(self, stop: str | None) -> None:
        """Show why the run stopped in the bar's last state, and close the bar."""
        if self._bar is not None and stop:
            postfix = {} if self._cost is None else {"cost": f"{self._cost:.6f}"}
            self._bar.set_postfix(**postfix, stop=stop, refresh=False)  # close() draws it
        self.close_bar()

    def close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def checkpoint(self, continuation: Continuation) -> None:
        """For :func:`nnlearn.train`: keep the run's state; write it when ``every`` seconds passed.

        The checkpoint holds the command's settings and exactness record (made with the
        data as the command names it), not the library's."""
        state = dict(continuation.state or {})
        if self.checkpoint_path is None:
            return
        self._state, self._unsaved = state, True
        if time.monotonic() - self._saved_at >= self.every:
            self._save()

    def flush(self) -> None:
        """Write the latest state now, if it is not on disk yet."""
        if self._unsaved and self.checkpoint_path is not None:
            self._save()

    def _save(self):
        path, state = Path(self.checkpoint_path), self._state
        assert state is not None
        try:
            with self.protect(f"the checkpoint {path}"):
                if self.replace_checkpoint:
                    save_checkpoint(path, self.settings, state)
                else:
                    write_new(path, lambda tmp: save_checkpoint(tmp, self.settings, state))
                    self.replace_checkpoint = True  # the file is this run's from now on
        except OutputExistsError:
            say(
                f"{self.prefix}: warning: {path} was created by another process while this run was writing "
                "its first checkpoint; it is left alone, and this run goes on without checkpoints"
            )
            self.checkpoint_path = None
            return
        except (OSError, NNLearnError) as exc:
            if not self._failing:
                say(
                    f"{self.prefix}: warning: cannot write the checkpoint {path} ({_why(exc)}); the run goes on "
                    "and tries again at the next checkpoint"
                )
            self._failing = True
            self._saved_at = time.monotonic()
            return
        if self._failing:
            say(f"{self.prefix}: the checkpoint {path} is written again")
        self._failing = False
        self._saved_at, self._unsaved = time.monotonic(), False
        self.saved_iteration = len(state.get("history", ()))


def _why(exc: BaseException) -> str:
    """Why a write failed, in a few words: the system's reason, or nnlearn's message."""
    if isinstance(exc, OSError) and not isinstance(exc, NNLearnError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
