"""Helpers shared by the command-line tests: the command line in-process, and as the
installed console script in a subprocess (for what only a real process shows: the
script itself, ``python -m nnlearn``, signals)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "nnlearn"
VERBS = (
    *("train", "evaluate", "predict", "cost", "gradcheck", "reproduce"),
    *("report", "show", "export", "shard", "tune", "serve"),
)
# The course's pretrained weights, as shipped inside the package.
EX4WEIGHTS = Path(str(resources.files("nnlearn").joinpath("data", "ex4weights.mat")))
# One BLAS thread per process: the test machines' cores are shared, and two-thread
# OpenBLAS on a busy core is 10-20x slower, not faster. The results do not depend on it.
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class Result:
    """What a run of the command line gave: like subprocess.CompletedProcess."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(capsys, *args):
    """Run ``nnlearn ARGS`` in this process (in the current directory): its exit status and
    what it printed. argparse's errors and ``--help`` end in SystemExit; its code is the
    status, as the console script would give it."""
    from nnlearn.cli import main

    capsys.readouterr()  # drop what came before
    try:
        status = main([str(a) for a in args])
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return Result(status, out, err)


def nnlearn_script(*args, cwd):
    """Run the installed ``nnlearn`` console script in a subprocess."""
    return subprocess.run([str(SCRIPT), *map(str, args)], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)


def ok_json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # exactly one JSON document, nothing else on stdout


def assert_one_line_error(result, *words):
    """Exit status 2, one line ``nnlearn...: error: ...`` on stderr naming ``words``, no
    traceback, nothing on stdout."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nnlearn") and ": error: " in lines[0], lines[0]
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]
    assert result.stdout == ""


@contextmanager
def deadline(seconds):
    """Fail instead of hanging: a FIFO or a device opened for reading blocks or never ends."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s (a FIFO or device read?)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def raises_quickly(call, error, match, seconds=10):
    """``call()`` raises ``error`` matching ``match`` within ``seconds`` (a FIFO must not hang it)."""
    outcome = {}

    def target():
        try:
            call()
        except error as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the reader hangs"
    assert re.search(match, outcome.get("error", "")), outcome
