"""Ctrl-C, checkpoints and resuming, with the real command line in a subprocess."""

import signal
import subprocess
import time

import numpy as np
import pytest

import nnlearn

from .test_cli import ENV, SCRIPT, nnlearn_cli

@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["fmincg", "cg"])
def test_sigint_stops_saves_and_resume_reaches_the_uninterrupted_weights(tmp_path, optimizer):
    RUN = ["train", "--optimizer", optimizer, "--max-iter", "150", "--seed", "3", "--quiet"]
    process = subprocess.Popen([str(SCRIPT), *RUN, "--checkpoint", "run.ckpt", "--checkpoint-every", "0",
                                "--out", "interrupted.npz"], cwd=tmp_path, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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

    resumed = nnlearn_cli("train", "--resume", "run.ckpt", "--out", "resumed.npz", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    whole = nnlearn_cli(*RUN, "--out", "whole.npz", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    a, b = nnlearn.load_model(tmp_path / "resumed.npz"), nnlearn.load_model(tmp_path / "whole.npz")
    assert a.history["cost"] == b.history["cost"] and len(a.history["cost"]) > stopped_at
    for theta_a, theta_b in zip(a.thetas, b.thetas):
        np.testing.assert_array_equal(theta_a, theta_b)


def test_sigint_without_out_saves_nothing_and_says_so(tmp_path):
    process = subprocess.Popen([str(SCRIPT), "train", "--max-iter", "400", "--quiet"], cwd=tmp_path, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # loading and the first iterations; an earlier signal is handled the same way
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr
    assert "nothing saved" in stderr
    assert list(tmp_path.iterdir()) == []


def test_a_resumed_run_refuses_contradicting_settings(tmp_path):
    first = nnlearn_cli("train", "--data", "digits8", "--max-iter", "5", "--checkpoint", "c.ckpt", "--quiet",
                        cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = nnlearn_cli("train", "--resume", "c.ckpt", "--lambda", "3", "--out", "x.npz", cwd=tmp_path)
    assert again.returncode == 2 and "--lambda 3.0 differs from the checkpoint's 1.0" in again.stderr
    assert not (tmp_path / "x.npz").exists()


def test_an_existing_checkpoint_is_not_overwritten_by_a_new_run(tmp_path):
    (tmp_path / "c.ckpt").write_bytes(b"someone's file")
    result = nnlearn_cli("train", "--data", "digits8", "--checkpoint", "c.ckpt", cwd=tmp_path)
    assert result.returncode == 2 and "--force" in result.stderr
    assert (tmp_path / "c.ckpt").read_bytes() == b"someone's file"
