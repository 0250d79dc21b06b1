"""A cluster as a Dask user runs one: ``dask scheduler`` and ``dask worker`` processes started
from Dask's own command line on 127.0.0.1, then killed, starved or impersonated mid-run.

Every fault must end in one line of nnlearn's words within 30 s: exit status 2 before any
training (a bad address, unusable workers), 1 for a loss during the run, with the weights
reached so far saved.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import distributed
import numpy as np
import pytest

import nnlearn
from nnlearn import load_model
from nnlearn.compute._cluster import ClusterError, connect
from nnlearn.compute._threads import blas_threads
from nnlearn.training import Continuation

from .helpers import ENV, SCRIPT

DASK = Path(sys.executable).parent / "dask"
# Faults must be said within this many seconds (the bound).
SAY_WITHIN = 30


class Processes:
    """A scheduler and workers started with Dask's command line; each in its own session,
    so that a kill takes a worker's nanny and its worker process together."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.file = directory / "scheduler.json"
        self.scheduler = self._start(
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dashboard-address",
            ":0",
            "--scheduler-file",
            self.file,
        )
        deadline = time.monotonic() + 30
        while not self.file.exists() or not self.file.read_text().strip():
            assert time.monotonic() < deadline and self.scheduler.poll() is None, "the scheduler did not start"
            time.sleep(0.05)
        self.address = json.loads(self.file.read_text())["address"]
        self.workers: list[subprocess.Popen] = []

    def _start(self, *args):
        log = open(self.directory / f"{args[0]}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
        return subprocess.Popen(
            [str(DASK), *map(str, args)], env=ENV, stdout=log, stderr=log, start_new_session=True, cwd=self.directory
        )

    def add_workers(self, count: int, *options) -> None:
        for _ in range(count):
            self.workers.append(self._start("worker", self.address, "--nthreads", "1", "--host", "127.0.0.1", *options))

    def wait_for_workers(self, count: int) -> None:
        with distributed.Client(self.address, set_as_default=False, timeout="20s") as client:
            client.wait_for_workers(count, timeout=60)

    def kill(self, process) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def close(self) -> None:
        for process in [*self.workers, self.scheduler]:
            self.kill(process)


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = Processes(tmp_path_factory.mktemp("dask"))
    started.add_workers(2)
    started.wait_for_workers(2)
    yield started
    started.close()


def nnlearn_train(*args, cwd, timeout=120, env=ENV):
    return subprocess.run(
        [str(SCRIPT), "train", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]


@pytest.mark.slow
def test_a_dask_command_line_cluster_trains_to_the_local_weights_and_says_what_ran(cluster, tmp_path):
    common = ["--optimizer", "lbfgs", "--max-iter", "15", "--test-size", "0", "--quiet"]
    # two threads: two shards, at the boundaries of the two workers' partitions
    local = nnlearn_train(*common, "--out", "local.npz", cwd=tmp_path, env={**ENV, "OPENBLAS_NUM_THREADS": "2"})
    assert local.returncode == 0, local.stderr
    text = nnlearn_train(*common, "--out", "text.npz", "--cluster", cluster.address, cwd=tmp_path)
    assert text.returncode == 0 and text.stderr == "", text.stderr
    assert f"cluster          {cluster.address}: 2 workers" in text.stdout
    assert "partitions       2 of 2,500, 2,500 rows" in text.stdout
    result = nnlearn_train(
        *common, "--json", "--out", "c.npz", "--cluster", cluster.address, "--checkpoint", "c.ckpt", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    ran = json.loads(result.stdout)["cluster"]
    workers = sorted(ran["workers"])
    assert ran == {"address": cluster.address, "workers": workers, "partition_rows": [2500, 2500], "lost_workers": 0}
    assert len(workers) == 2 and all(w.startswith("tcp://127.0.0.1:") for w in workers)
    model = load_model(tmp_path / "c.npz")
    assert model.history["cluster"] == cluster.address and model.history["cluster_partitions"] == [2500, 2500]
    assert sorted(model.history["cluster_workers"]) == workers
    assert all(np.array_equal(a, b) for a, b in zip(model.thetas, load_model(tmp_path / "local.npz").thetas))
    record = Continuation.load(tmp_path / "c.ckpt")[1].exactness
    assert record["exact.cluster"] == cluster.address and record["exact.partition_rows"] == "2500 2500"
    assert record["exact.workers"].split() == workers


def start_training(tmp_path, address, *args):
    """``nnlearn train`` on a cluster, long enough to be cut short; returns once it has
    checkpointed an iteration (so the run is under way)."""
    process = subprocess.Popen(
        [str(SCRIPT), "train", "--optimizer", "lbfgs", "--max-iter", "400", "--quiet", "--cluster", address,
         "--checkpoint", "run.ckpt", "--checkpoint-every", "1", "--out", "m.npz", *args],
        cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (tmp_path / "run.ckpt").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.02)
    return process


def ended_within(process, seconds):
    began = time.monotonic()
    out, err = process.communicate(timeout=120)
    return time.monotonic() - began, process.returncode, out, err


def assert_weights_kept(tmp_path, line):
    model = load_model(tmp_path / "m.npz")
    n_iter = model.history["n_iter"]
    assert n_iter >= 1 and f"the weights of iteration {n_iter} saved to m.npz" in line, line
    # they are the weights of a run of that many iterations on this machine's two threads
    with blas_threads(2):
        alone = nnlearn.train(*nnlearn.load_digits20(), optimizer="lbfgs", max_iter=n_iter)
    assert all(np.array_equal(a, b) for a, b in zip(model.thetas, alone.thetas))


@pytest.mark.slow
def test_killing_the_scheduler_mid_run_ends_in_one_line_with_the_weights_saved(processes, tmp_path):
    processes.add_workers(2)
    processes.wait_for_workers(2)
    run = start_training(tmp_path, processes.address, "--test-size", "0")
    processes.kill(processes.scheduler)
    seconds, status, out, err = ended_within(run, SAY_WITHIN)
    line = one_line(err)
    assert status == 1 and seconds < SAY_WITHIN, (seconds, err)
    assert line.startswith(f"nnlearn train: error: lost the Dask scheduler at {processes.address}"), line
    assert_weights_kept(tmp_path, line)


@pytest.mark.slow
def test_killing_every_worker_mid_run_ends_in_one_line_with_the_weights_saved(processes, tmp_path, monkeypatch, capsys):
    from nnlearn.cli._monitor import Monitor

    from .helpers import run_cli

    processes.add_workers(2)
    processes.wait_for_workers(2)
    # In this process, so that the wait for a worker to come back can be shortened.
    monkeypatch.setattr(nnlearn.compute._cluster, "WORKER_SECONDS", 2)
    monkeypatch.chdir(tmp_path)
    callback, killed = Monitor.callback, []

    def kill_the_workers_at_five(self, iteration, J, x):
        callback(self, iteration, J, x)
        if iteration == 5:
            for worker in processes.workers:
                processes.kill(worker)
            killed.append(time.monotonic())

    monkeypatch.setattr(Monitor, "callback", kill_the_workers_at_five)
    common = ["train", "--optimizer", "lbfgs", "--max-iter", "50", "--quiet", "--test-size", "0"]
    result = run_cli(capsys, *common, "--cluster", processes.address, "--out", "m.npz")
    seconds = time.monotonic() - killed[0]
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and result.returncode == 1 and seconds < SAY_WITHIN, result.stderr
    # the loss said in nnlearn's words: the workers gone, then the error with the weights kept
    assert lines[-1].startswith(f"nnlearn train: error: lost every worker of the Dask cluster at {processes.address}")
    assert all(line.startswith("nnlearn train: ") for line in lines) and len(lines) <= 2, result.stderr
    assert_weights_kept(tmp_path, lines[-1])


class Silent(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(handler):
    """A TCP server on 127.0.0.1 in a thread: its address."""
    if isinstance(handler, bytes):
        banner = handler

        class Banner(http.server.BaseHTTPRequestHandler):
            def handle(self):
                self.wfile.write(banner)

        handler = Banner
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("server", "message"),
    [
        (Silent, "said nothing in 5 s"),
        (b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n", "not as a Dask scheduler does"),
    ],
    ids=["http", "other"],
)
def test_an_address_where_no_dask_scheduler_answers_is_refused_in_one_line(tmp_path, server, message, monkeypatch):
    with serving(server) as address:
        began = time.monotonic()
        result = nnlearn_train("--optimizer", "lbfgs", "--cluster", address, cwd=tmp_path, timeout=SAY_WITHIN)
        assert time.monotonic() - began < 15
        line = one_line(result.stderr)
        assert result.returncode == 2 and message in line and address in line, line
        monkeypatch.setattr(nnlearn.compute._cluster, "ANSWER_SECONDS", 1)  # the library's wait, shortened
        with pytest.raises(ClusterError, match=message.replace("5 s", "1 s")):
            connect(address)
    assert list(tmp_path.iterdir()) == []


def test_a_closed_port_is_refused_in_one_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        result = nnlearn_train("--optimizer", "lbfgs", "--cluster", address, cwd=tmp_path, timeout=SAY_WITHIN)
    line = one_line(result.stderr)
    assert result.returncode == 2 and f"cannot reach a Dask scheduler at {address}" in line, line


@pytest.mark.slow
def test_workers_that_cannot_run_this_nnlearn_are_named_before_any_work(processes, tmp_path, monkeypatch):
    monkeypatch.setattr(nnlearn.compute._cluster, "WORKER_SECONDS", 2)
    # no workers yet: said after the wait
    with pytest.raises(ClusterError, match="has no workers .waited 2 s.; start some with `dask worker"):
        connect(processes.address)
    missing, other = tmp_path / "missing.py", tmp_path / "other.py"
    missing.write_text("import sys\nsys.modules['nnlearn'] = None  # as if it were not installed\n")
    other.write_text("import nnlearn\nnnlearn.__version__ = '0.0.1'\n")
    processes.add_workers(1, "--preload", missing)
    processes.wait_for_workers(1)
    result = nnlearn_train("--optimizer", "lbfgs", "--cluster", processes.address, cwd=tmp_path)
    line = one_line(result.stderr)
    assert result.returncode == 2 and "cannot import nnlearn" in line and "tcp://127.0.0.1:" in line, line
    processes.kill(processes.workers.pop())
    processes.add_workers(1, "--preload", other)
    processes.wait_for_workers(1)
    with pytest.raises(ClusterError, match=rf"has nnlearn 0.0.1, this process {nnlearn.__version__}"):
        connect(processes.address)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".npz", ".ckpt")) == []
