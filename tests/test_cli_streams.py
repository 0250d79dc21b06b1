"""Exit statuses when output fails, one rule for every verb (docs/cli.md's table): a reader
of stdout that went away is no failure (0, quietly, everything saved); stdout closed or
full is a failure while working (1, one line saying what was saved where), never a
mistake in the input (2). Real processes, pipes and devices, and the same in-process."""

import errno
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import nnlearn
from nnlearn.cli import EXIT_STATUSES

from .helpers import ENV, SCRIPT, run_cli

TRAIN = ("train", "--data", "d.npz", "--test-size", "0", "--hidden", "3", "--max-iter", "2", "--quiet")


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.random((40, 4)), y=np.arange(40) % 2)
    return tmp_path


def start(tmp_path, *args, stdout=subprocess.PIPE, shell_redirect=None):
    """``nnlearn ARGS`` as a process; ``shell_redirect`` (``>&-``) is applied by a shell."""
    argv = [str(SCRIPT), *args]
    if shell_redirect is not None:
        argv = ["sh", "-c", f'exec "$0" "$@" {shell_redirect}', *argv]
    return subprocess.Popen(argv, cwd=tmp_path, env=ENV, stdout=stdout, stderr=subprocess.PIPE, text=True)


def test_a_reader_that_went_away_is_no_failure(data):
    # `nnlearn train --json | head -c 10`, `nnlearn predict m.npz d.npz | head -1`: the
    # reader has gone before the result is printed (closed here before the process writes).
    nnlearn.train(*nnlearn.load_data(data / "d.npz"), hidden_layer_sizes=(3,), max_iter=2).save(data / "given.npz")
    trained = start(data, *TRAIN, "--json", "--out", "m.npz")
    predicted = start(data, "predict", "given.npz", "d.npz")
    trained.stdout.close()
    predicted.stdout.close()
    assert trained.wait(timeout=120) == 0 and predicted.wait(timeout=120) == 0
    assert trained.stderr.read() == "" and predicted.stderr.read() == ""  # quietly, as git does
    assert nnlearn.load_model(data / "m.npz").history["n_iter"] == 2  # everything saved


def test_a_full_or_closed_stdout_is_a_failure_that_says_what_was_saved(data):
    with open("/dev/full", "w") as full:
        filled = start(data, *TRAIN, "--out", "full.npz", stdout=full)
        closed = start(data, *TRAIN, "--out", "closed.npz", stdout=None, shell_redirect=">&-")
        assert filled.wait(timeout=120) == 1 and closed.wait(timeout=120) == 1
    assert filled.stderr.read() == (
        "nnlearn train: error: cannot write the output to stdout (No space left on device); "
        "the model was saved to full.npz\n"
    )
    assert closed.stderr.read() == (
        "nnlearn train: error: cannot write the output to stdout (it is closed); the model was saved to closed.npz\n"
    )
    for name in ("full.npz", "closed.npz"):
        assert nnlearn.load_model(data / name).history["n_iter"] == 2


class Failing:
    """A stdout whose writes fail with ``error`` (an OSError's errno)."""

    def __init__(self, error):
        self.error = error

    def write(self, text):
        raise (BrokenPipeError if self.error == errno.EPIPE else OSError)(self.error, os.strerror(self.error))

    def flush(self):
        pass


VERBS = {
    "gradcheck": ["gradcheck"],
    "cost": ["cost"],
    "evaluate": ["evaluate", "given.npz", "--data", "d.npz"],
    "train": [*TRAIN, "--out", "m.npz"],
}


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_follows_the_rule(verb, data, capsys, monkeypatch):
    monkeypatch.chdir(data)
    nnlearn.train(*nnlearn.load_data(data / "d.npz"), hidden_layer_sizes=(3,), max_iter=2).save(data / "given.npz")
    args = VERBS[verb]
    monkeypatch.setattr("sys.stdout", Failing(errno.EPIPE))
    gone = run_cli(capsys, *args)
    assert (gone.returncode, gone.stderr) == (0, "")
    monkeypatch.setattr("sys.stdout", Failing(errno.ENOSPC))
    full = run_cli(capsys, *args, *(["--force"] if verb == "train" else []))
    assert full.returncode == 1 and full.stderr.count("\n") == 1
    assert full.stderr.startswith(f"nnlearn {verb}: error: cannot write the output to stdout (No space left")
    assert full.stderr.endswith("; the model was saved to m.npz\n" if verb == "train" else "device)\n")


def test_a_file_that_cannot_be_written_while_working_is_status_1(data, capsys, monkeypatch):
    import nnlearn.reporting._plots as plots

    def save_figure(fig, path, overwrite=False):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.chdir(data)
    monkeypatch.setattr(plots, "save_figure", save_figure)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    result = run_cli(capsys, "show", "--data", "d.npz", "--out", "x.png")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "nnlearn show: error: cannot write x.png (No space left on device); nothing was saved\n"


def test_the_exit_statuses_are_documented_as_they_are():
    text = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    documented = {int(status) for status in re.findall(r"^\| (\d+) \|", text, flags=re.MULTILINE)}
    assert documented == set(EXIT_STATUSES)
