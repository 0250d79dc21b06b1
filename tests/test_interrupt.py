"""Ctrl-C, SIGTERM, checkpoints and resuming.

Ctrl-C and SIGTERM are real signals: sent to the installed script in a subprocess, or
to this process while the command line runs in it (the handlers are the same). The rest
runs the command line in this process.
"""

import os
import signal
import subprocess
import time

import numpy as np
import pytest

import nnlearn
import nnlearn.cli._monitor
from nnlearn.training._checkpoints import load_checkpoint, save_checkpoint

from .helpers import ENV, SCRIPT, assert_one_line_error, nnlearn_script, run_cli


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


def start_and_signal(tmp_path, signum, *args):
    """Run ``nnlearn train ARGS`` and send ``signum`` once training has started."""
    process = subprocess.Popen(
        [str(SCRIPT), "train", *args],
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
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, seen + stderr


@pytest.mark.slow
def test_sigint_without_out_saves_to_the_default_model_and_says_so(tmp_path):
    status, _, stderr = start_and_signal(
        tmp_path, signal.SIGINT, "--data", "digits8", "--optimizer", "fmincg", "--max-iter", "100000"
    )
    assert status == 130 and "Traceback" not in stderr
    assert "weights so far saved to nnlearn-model.npz" in stderr
    assert nnlearn.load_model(tmp_path / "nnlearn-model.npz").history["interrupted"]


def signal_at(iteration, signum):
    """A Monitor.callback that receives ``signum`` at ``iteration``, as from outside."""
    real = nnlearn.cli._monitor.Monitor.callback

    def callback(self, i, J, x):
        if i == iteration:
            os.kill(os.getpid(), signum)
        return real(self, i, J, x)

    return callback


def test_sigterm_is_a_first_ctrl_c(cli, tmp_path, monkeypatch):
    # A batch system's SIGTERM: stop after the iteration, save, say so, exit 128 + 15.
    monkeypatch.setattr(nnlearn.cli._monitor.Monitor, "callback", signal_at(4, signal.SIGTERM))
    result = cli(
        *("train", "--data", "digits8", "--optimizer", "fmincg", "--max-iter", "50", "--checkpoint", "run.ckpt"),
        *("--out", "my model.npz"),
    )
    assert result.returncode == 143 and "Traceback" not in result.stderr
    assert "SIGTERM: stopping after this iteration" in result.stderr
    assert "interrupted by SIGTERM after iteration 4; weights so far saved to my model.npz" in result.stderr
    # The resume hint names the --out it needs (quoted for the shell), and --force to replace it.
    assert "resume with: nnlearn train --resume run.ckpt --out 'my model.npz' --force" in result.stderr
    model = nnlearn.load_model(tmp_path / "my model.npz")
    assert model.history["interrupted"] and model.history["n_iter"] == 4
    assert model.history.get("stop_reason", "interrupted") == "interrupted"
    _, state = load_checkpoint(tmp_path / "run.ckpt")
    assert len(state["history"]) == 4
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is restored
    # Resumed as the hint says, the run reaches its end.
    resumed = cli("train", "--resume", "run.ckpt", "--out", "my model.npz", "--force", "--quiet")
    assert resumed.returncode == 0 and nnlearn.load_model(tmp_path / "my model.npz").history["n_iter"] == 50


@pytest.mark.slow
def test_sigterm_to_the_script_saves_the_weights_and_hints_the_resume(tmp_path):
    # The signal a batch system sends at the end of a job's time, to a real process: the
    # in-process test above replaces the callback; this one goes through the script.
    status, _, stderr = start_and_signal(
        *(tmp_path, signal.SIGTERM, "--data", "digits8", "--optimizer", "fmincg", "--max-iter", "100000"),
        *("--checkpoint", "run.ckpt", "--out", "m.npz"),
    )
    assert status == 143 and "Traceback" not in stderr, stderr
    assert "SIGTERM: stopping after this iteration" in stderr
    ended = stderr.strip().splitlines()[-1]
    assert ended.startswith("nnlearn train: interrupted by SIGTERM after iteration "), stderr
    assert "weights so far saved to m.npz" in ended
    model = nnlearn.load_model(tmp_path / "m.npz")
    stopped_at = model.history["n_iter"]
    assert model.history["interrupted"] and stopped_at >= 1
    assert f"after iteration {stopped_at};" in ended
    _, state = load_checkpoint(tmp_path / "run.ckpt")
    assert len(state["history"]) == stopped_at  # the checkpoint holds the weights saved
    hint = "nnlearn train --resume run.ckpt --out m.npz --force"
    assert ended.endswith(f"resume with: {hint}")
    # The hint works as given (two more iterations, so that it ends).
    words = __import__("shlex").split(hint)[1:]
    resumed = nnlearn_script(*words, "--max-iter", stopped_at + 2, "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert nnlearn.load_model(tmp_path / "m.npz").history["n_iter"] == stopped_at + 2


def test_interrupted_json_is_one_object(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(nnlearn.cli._monitor.Monitor, "callback", signal_at(2, signal.SIGINT))
    result = cli("train", "--data", "digits8", "--max-iter", "50", "--checkpoint", "c.ckpt", "--json")
    assert result.returncode == 130
    payload = __import__("json").loads(result.stdout)
    assert payload["interrupted"] and payload["signal"] == "SIGINT" and payload["n_iter"] == 2
    assert payload["model"] == "nnlearn-model.npz" and payload["checkpoint"] == "c.ckpt"
    assert payload["resume"] == "nnlearn train --resume c.ckpt --out nnlearn-model.npz --force"


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


def test_an_existing_checkpoint_is_not_overwritten_by_a_resumed_run(cli, tmp_path):
    first = cli("train", "--data", "digits8", "--max-iter", "3", "--checkpoint", "c.ckpt", "--quiet")
    assert first.returncode == 0, first.stderr
    (tmp_path / "other").write_bytes(b"someone's file")
    result = cli("train", "--resume", "c.ckpt", "--checkpoint", "other", "--out", "m.npz")
    assert_one_line_error(result, "other", "--force")
    assert (tmp_path / "other").read_bytes() == b"someone's file" and not (tmp_path / "m.npz").exists()
    # Its own checkpoint, named twice, is rewritten as the run goes on.
    again = cli("train", "--resume", "c.ckpt", "--checkpoint", "c.ckpt", "--max-iter", "5", "--out", "m.npz")
    assert again.returncode == 0, again.stderr
    assert len(load_checkpoint(tmp_path / "c.ckpt")[1]["history"]) == 5


def test_a_resumed_run_refuses_a_max_iter_below_what_it_has_done(cli, tmp_path):
    first = cli("train", "--data", "digits8", "--optimizer", "fmincg", "--max-iter", "6", "--checkpoint", "c.ckpt")
    assert first.returncode == 0, first.stderr
    assert_one_line_error(cli("train", "--resume", "c.ckpt", "--max-iter", "4", "--out", "m.npz"), "--max-iter 4", "6")
    same = cli("train", "--resume", "c.ckpt", "--max-iter", "6", "--out", "m.npz", "--json")
    assert same.returncode == 0 and nnlearn.load_model(tmp_path / "m.npz").history["n_iter"] == 6


def test_a_second_ctrl_c_during_the_final_checkpoint_write_finishes_it(cli, tmp_path, monkeypatch):
    real, calls = nnlearn.cli._monitor.save_checkpoint, []

    def interrupted_twice(path, settings, state):
        calls.append(len(state["history"]))
        if len(calls) == 3:  # Ctrl-C, then Ctrl-C again, in the middle of the write
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return real(path, settings, state)

    monkeypatch.setattr(nnlearn.cli._monitor, "save_checkpoint", interrupted_twice)
    result = cli(
        *("train", "--data", "digits8", "--optimizer", "fmincg", "--max-iter", "50"),
        *("--checkpoint", "c.ckpt", "--checkpoint-every", "0", "--quiet"),
    )
    assert result.returncode == 130 and "Traceback" not in result.stderr
    assert "finishing writing the checkpoint c.ckpt, then stopping" in result.stderr
    assert "aborted; the checkpoint c.ckpt holds iteration 3" in result.stderr
    assert "resume with: nnlearn train --resume c.ckpt --out nnlearn-model.npz" in result.stderr
    _, state = load_checkpoint(tmp_path / "c.ckpt")  # whole, and the third iteration's
    assert len(state["history"]) == 3 and not (tmp_path / "nnlearn-model.npz").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["c.ckpt"]  # no temporary file left
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_a_failing_checkpoint_warns_and_the_run_goes_on(cli, tmp_path, monkeypatch):
    def disk_full(path, settings, state):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(nnlearn.cli._monitor, "save_checkpoint", disk_full)
    result = cli("train", "--data", "digits8", "--max-iter", "5", "--checkpoint", "c.ckpt", "--checkpoint-every", "0")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, result.stderr  # said once, not at every try
    assert "cannot write the checkpoint c.ckpt (No space left on device); the run goes on" in warnings[0]
    assert nnlearn.load_model(tmp_path / "nnlearn-model.npz").history["n_iter"] == 5


def resumed_with(cli, tmp_path, *first, change=None):
    """Train 2 iterations with a checkpoint, change something, resume to 4: the result."""
    started = cli("train", *first, "--max-iter", "2", "--checkpoint", "c.ckpt", "--quiet", "--out", "a.npz", "--force")
    assert started.returncode == 0, started.stderr
    if change is not None:
        change()
    resumed = cli("train", "--resume", "c.ckpt", "--max-iter", "4", "--out", "b.npz", "--quiet", "--force")
    assert resumed.returncode == 0, resumed.stderr
    return resumed


def test_a_resume_that_cannot_be_exact_says_what_differs(cli, tmp_path, monkeypatch):
    X, y = nnlearn.load_digits8()
    np.savez(tmp_path / "d.npz", X=X, y=y)

    def change_the_data():
        np.savez(tmp_path / "d.npz", X=X[::-1], y=y[::-1])

    text = resumed_with(cli, tmp_path, "--data", "d.npz", "--optimizer", "fmincg", change=change_the_data).stderr
    assert "warning: resuming c.ckpt: the data differ" in text and "other examples" in text

    unchanged = resumed_with(cli, tmp_path, "--data", "digits8", "--optimizer", "fmincg")
    assert "warning" not in unchanged.stderr


def test_a_resume_on_other_threads_says_what_that_means(cli, tmp_path, monkeypatch):
    import nnlearn.compute._threads

    # 4000 examples of a 400-25-10 network are enough work for two shards.
    monkeypatch.setattr(nnlearn.compute._threads, "default_threads", lambda: 2)
    started = cli("train", "--max-iter", "1", "--optimizer", "fmincg", "--checkpoint", "c.ckpt", "--out", "a.npz")
    assert started.returncode == 0, started.stderr
    monkeypatch.setattr(nnlearn.compute._threads, "default_threads", lambda: 1)
    resumed = cli("train", "--resume", "c.ckpt", "--max-iter", "2", "--out", "b.npz", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert "the partitions of examples the cost is summed in differ" in resumed.stderr
    assert "ends near, not at, the uninterrupted run's weights" in resumed.stderr
    differences = __import__("json").loads(resumed.stdout)["resume_differences"]
    assert [(d["then"], d["now"]) for d in differences] == [("2 shards on 2 threads", "1 shard on 1 thread")]


def test_a_checkpoint_without_a_record_is_resumed_with_a_notice(cli, tmp_path):
    started = cli("train", "--data", "digits8", "--max-iter", "2", "--checkpoint", "c.ckpt", "--out", "a.npz")
    assert started.returncode == 0, started.stderr
    settings, state = load_checkpoint(tmp_path / "c.ckpt")
    old = {key: value for key, value in settings.items() if not key.startswith("exact.")}
    save_checkpoint(tmp_path / "c.ckpt", old, state)
    resumed = cli("train", "--resume", "c.ckpt", "--max-iter", "3", "--out", "b.npz", "--quiet")
    assert resumed.returncode == 0 and "does not record what exactness depends on" in resumed.stderr


def test_the_checkpoint_records_what_exactness_depends_on(cli, tmp_path):
    cli("train", "--data", "digits8", "--max-iter", "2", "--checkpoint", "c.ckpt", "--out", "a.npz")
    settings, _ = load_checkpoint(tmp_path / "c.ckpt")
    assert settings["exact.nnlearn"] == nnlearn.__version__ and settings["exact.threads"] >= 1
    assert len(settings["exact.data_sha256"]) == 64 and settings["exact.shards"] >= 1 and settings["exact.blas"]
    assert settings["exact.cluster"] == "none" and settings["exact.bounds"] == "even"
    assert "exact.not_exact_since" not in settings  # only a resume with a difference sets it


def test_mini_batch_settings_are_kept_by_a_resumed_run(cli, tmp_path):
    first = cli(
        *("train", "--data", "digits8", "--optimizer", "adam", "--batch-size", "64", "--learning-rate", "0.01"),
        *("--max-iter", "2", "--checkpoint", "c.ckpt", "--out", "a.npz", "--quiet"),
    )
    assert first.returncode == 0, first.stderr
    refused = cli("train", "--resume", "c.ckpt", "--batch-size", "32", "--out", "b.npz")
    assert_one_line_error(refused, "--batch-size 32 differs from the checkpoint's 64")
    resumed = cli("train", "--resume", "c.ckpt", "--max-iter", "4", "--out", "b.npz", "--quiet", "--force")
    assert resumed.returncode == 0, resumed.stderr
    whole = cli(
        *("train", "--data", "digits8", "--optimizer", "adam", "--batch-size", "64", "--learning-rate", "0.01"),
        *("--max-iter", "4", "--out", "whole.npz", "--quiet"),
    )
    assert whole.returncode == 0, whole.stderr
    a, b = nnlearn.load_model(tmp_path / "b.npz"), nnlearn.load_model(tmp_path / "whole.npz")
    assert a.history["batch_size"] == 64 and a.history["cost"] == b.history["cost"]


# ------------------------------------------------------------------ SIGHUP


def noise_data(path):
    """Labels no network can learn: sgd at a tiny learning rate goes on for as long as asked."""
    rng = np.random.default_rng(0)
    np.savez(path, X=rng.random((200, 16)), y=rng.integers(0, 4, 200))


#: A run on noise_data that would take minutes, and stops only when told to.
ENDLESS = (
    *("--data", "noise.npz", "--test-size", "0", "--hidden", "5", "--optimizer", "sgd", "--batch-size", "20"),
    *("--learning-rate", "1e-6", "--n-iter-no-change", "1000000", "--max-iter", "1000000"),
)


def test_sighup_from_a_closed_terminal_keeps_the_weights_and_hints_the_resume(tmp_path):
    noise_data(tmp_path / "noise.npz")
    process = subprocess.Popen(
        [str(SCRIPT), "train", *ENDLESS, "--checkpoint", "run.ckpt", "--out", "m.npz"],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As a terminal's shell starts it, whatever this test runner was started under (nohup).
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    seen = ""
    while "training" not in seen and process.poll() is None:  # the bar: training has started
        seen += process.stderr.read(1)
    os.kill(process.pid, signal.SIGHUP)
    _, stderr = process.communicate(timeout=60)
    stderr = seen + stderr
    assert process.returncode == 129 and "Traceback" not in stderr, stderr  # 128 + 1, as SIGTERM's 128 + 15
    assert "SIGHUP: stopping after this iteration" in stderr
    ended = stderr.strip().splitlines()[-1]
    assert ended.startswith("nnlearn train: interrupted by SIGHUP after iteration "), stderr
    assert ended.endswith(
        "weights so far saved to m.npz; resume with: nnlearn train --resume run.ckpt --out m.npz --force"
    )
    model = nnlearn.load_model(tmp_path / "m.npz")
    assert model.history["interrupted"] and model.history["n_iter"] >= 1
    _, state = load_checkpoint(tmp_path / "run.ckpt")
    assert len(state["history"]) == model.history["n_iter"]


def test_an_ignored_sighup_stays_ignored(cli, tmp_path, monkeypatch):
    # `nohup nnlearn train ...`: the run goes on when the terminal closes.
    monkeypatch.setattr(nnlearn.cli._monitor.Monitor, "callback", signal_at(2, signal.SIGHUP))
    noise_data(tmp_path / "noise.npz")
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        result = cli("train", "--data", "noise.npz", "--test-size", "0", "--max-iter", "5", "--quiet", "--out", "m.npz")
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert result.returncode == 0, result.stderr
    assert nnlearn.load_model(tmp_path / "m.npz").history["n_iter"] == 5
