"""The command line's standard streams: stdout that fails, and warnings as one line.

:func:`nnlearn.cli.main` runs a verb with stdout guarded (:class:`GuardedStdout`): a
reader that went away (``nnlearn train | head -1``) only silences stdout, and the verb ends
as it would have (status 0 when all went well); any other failure to write stdout
(closed, a full disk) becomes :class:`StdoutFailed`, a failure while working (status 1),
never mistaken for a mistake in the input. A verb's warnings read ``nnlearn VERB: warning: ...``
on one line (:func:`one_line_warnings`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any, TextIO

from ._monitor import say

__all__ = [
    "WorkFailed",
    "StdoutFailed",
    "GuardedStdout",
    "one_line_warnings",
    "reserve_standard_descriptors",
    "silence_stdout",
]


class WorkFailed(Exception):
    """A failure while working (exit status 1), once the inputs were accepted: an output
    that could not be written. Its message says what failed; :func:`nnlearn.cli.main`
    adds what was saved where."""


class StdoutFailed(WorkFailed):
    """stdout could not be written: closed, or its file system full (not a broken pipe)."""


class GuardedStdout:
    """``sys.stdout`` for a verb's run: writes as ``stream`` does, but

    * a broken pipe (the reader went away: ``nnlearn train | head -1``) sends this and all
      later output nowhere, quietly, and the verb goes on to its own end and status;
    * any other failure (closed, a full disk) raises :class:`StdoutFailed`.

    Parameters
    ----------
    stream : text stream or None
        None: stdout was closed when the process started (``nnlearn train >&-``).

    Attributes
    ----------
    reader_gone : bool
        A broken pipe was met.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if self.reader_gone:
            return len(text)
        if self._stream is None:
            raise StdoutFailed("cannot write the output to stdout (it is closed)")
        with self._guarded():
            return self._stream.write(text)
        return len(text)  # the reader went away meanwhile

    def flush(self) -> None:
        if self.reader_gone or self._stream is None:
            return
        with self._guarded():
            self._stream.flush()

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        try:
            yield
        except BrokenPipeError:
            self.reader_gone = True
            silence_stdout(self._stream)  # what is still buffered must not fail again at exit
        except (OSError, ValueError) as exc:  # ENOSPC, EBADF, EIO; ValueError: a closed file object
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            silence_stdout(self._stream)
            raise StdoutFailed(f"cannot write the output to stdout ({why})") from None

    def __getattr__(self, name: str) -> Any:
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


@contextlib.contextmanager
def one_line_warnings(prefix: str) -> Iterator[None]:
    """Show each warning as ``PREFIX: warning: MESSAGE``: its first line, whitespace
    collapsed, without the file, line and source that Python's own format adds."""

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        first = " ".join(text.splitlines()[0].split()) if text.strip() else category.__name__
        say(f"{prefix}: warning: {first}")

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def reserve_standard_descriptors() -> None:
    """Open the null device on a closed stdin, stdout or stderr (``nnlearn train 2>&-``).

    Otherwise the next file opened (a model being saved) would get that descriptor, and
    whatever a library writes to "stderr" would land inside it. (Python has already set
    ``sys.stdout`` to None for a closed stdout, so writing it still fails.)
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:  # a lower descriptor was free too: it gets its own in turn
                os.dup2(opened, fd)
                os.close(opened)


def silence_stdout(stream: TextIO | None = None) -> None:
    """Point ``stream``'s descriptor (default: stdout's) at the null device: what is still
    buffered for it, and all later output, go nowhere, so that the final flush at exit
    cannot fail again and print a traceback."""
    stream = sys.stdout if stream is None else stream
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # no stream, or one without a descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
