"""Ctrl-C, checkpoints and resuming.

Ctrl-C is a real SIGINT sent to the installed script in a subprocess; the rest runs the
command line in this process.
"""

import signal
import subprocess
import time

import numpy as np
import pytest

import nnlearn

from .helpers import ENV, SCRIPT, nnlearn_script, run_cli


@pytest.fixture
def cli(capsys, tmp_path, monkeypatch):
    """``cli(*args)``: the command line in-process, in ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    return lambda *args: run_cli(capsys, *args)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["fmincg", "cg"])
def test_sigint_stops_saves_and_resume_reaches_the_uninterrupted_weights(tmp_path, optimizer):
    RUN = ["train", "--optimizer", optimizer, "--max-iter", "150", "--seed", "3", "--quiet"]
    process = subprocess.Popen(
        [str(SCRIPT), *RUN, "--checkpoint", "run.ckpt", "--checkpoint-every", "0", "--out", "interrupted.npz"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "run.ckpt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted after iteration" in stderr and "interrupted.npz" in stderr and "Traceback" not in stderr
    interrupted = nnlearn.load_model(tmp_path / "interrupted.npz")
    stopped_at = interrupted.history["n_iter"]
    assert 1 <= stopped_at < 150 and interrupted.history["interrupted"]

    resumed = nnlearn_script("train", "--resume", "run.ckpt", "--out", "resumed.npz", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    whole = nnlearn_script(*RUN, "--out", "whole.npz", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    a, b = nnlearn.load_model(tmp_path / "resumed.npz"), nnlearn.load_model(tmp_path / "whole.npz")
    assert a.history["cost"] == b.history["cost"] and len(a.history["cost"]) > stopped_at
    for theta_a, theta_b in zip(a.thetas, b.thetas, strict=True):
        np.testing.assert_array_equal(theta_a, theta_b)


def test_sigint_without_out_saves_nothing_and_says_so(tmp_path):
    process = subprocess.Popen(
        [str(SCRIPT), "train", "--max-iter", "400"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Wait for the progress bar: training has started, so the signal meets the handler.
    seen = ""
    while "training" not in seen and process.poll() is None:
        seen += process.stderr.read(1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr
    assert "nothing saved" in stderr
    assert list(tmp_path.iterdir()) == []


def test_a_resumed_run_refuses_contradicting_settings(cli, tmp_path):
    first = cli("train", "--data", "digits8", "--max-iter", "5", "--checkpoint", "c.ckpt", "--quiet")
    assert first.returncode == 0, first.stderr
    again = cli("train", "--resume", "c.ckpt", "--lambda", "3", "--out", "x.npz")
    assert again.returncode == 2 and "--lambda 3.0 differs from the checkpoint's 1.0" in again.stderr
    # An option given with its default value still counts as given.
    third = cli("train", "--resume", "c.ckpt", "--hidden", "25", "--data", "digits20", "--out", "x.npz")
    assert third.returncode == 2 and "--data digits20 differs from the checkpoint's digits8" in third.stderr
    assert not (tmp_path / "x.npz").exists()


def test_a_resumed_run_can_be_extended_with_max_iter(cli, tmp_path):
    first = cli(
        "train",
        "--data",
        "digits8",
        "--optimizer",
        "fmincg",
        "--max-iter",
        "5",
        "--checkpoint",
        "c.ckpt",
        "--quiet",
        "--out",
        "five.npz",
    )
    assert first.returncode == 0, first.stderr
    longer = cli("train", "--resume", "c.ckpt", "--max-iter", "12", "--out", "twelve.npz", "--quiet")
    assert longer.returncode == 0, longer.stderr
    whole = cli(
        "train", "--data", "digits8", "--optimizer", "fmincg", "--max-iter", "12", "--quiet", "--out", "whole.npz"
    )
    assert whole.returncode == 0, whole.stderr
    a, b = nnlearn.load_model(tmp_path / "twelve.npz"), nnlearn.load_model(tmp_path / "whole.npz")
    assert a.history["cost"] == b.history["cost"] and len(a.history["cost"]) == 12


def test_an_existing_checkpoint_is_not_overwritten_by_a_new_run(cli, tmp_path):
    (tmp_path / "c.ckpt").write_bytes(b"someone's file")
    result = cli("train", "--data", "digits8", "--checkpoint", "c.ckpt")
    assert result.returncode == 2 and "--force" in result.stderr
    assert (tmp_path / "c.ckpt").read_bytes() == b"someone's file"
