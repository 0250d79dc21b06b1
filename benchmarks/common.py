"""Helpers shared by the benchmarks: data, timing, worker processes, the machine.

Every timing is wall-clock (``time.perf_counter``) over repeated calls; reports quote
medians, and ratios are taken round by round between peers timed back to back, so a
drift in the machine's speed (other jobs on a shared machine) moves both sides.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def cores():
    """Processors this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def digits(dtype="float64"):
    """The embedded 5000 x 400 digits, their labels and one-hot targets, in ``dtype``."""
    from nnlearn import load_digits20
    from nnlearn.core import one_hot

    X, y = load_digits20()
    Y = one_hot(y)[1]
    return X.astype(dtype), y, Y.astype(dtype)


def synthetic(m, n, K=10, dtype="float64", seed=0):
    """Random inputs in [0, 1) and one-hot labels of K classes, like pixel data."""
    rng = np.random.default_rng(seed)
    X = rng.random((m, n)).astype(dtype)
    Y = np.eye(K, dtype=dtype)[rng.integers(0, K, m)]
    return X, Y


def time_calls(fn, n):
    """Seconds of each of ``n`` calls of ``fn`` (after one untimed warm-up call)."""
    fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median(values):
    return statistics.median(values)


SETTLE = 0.3  # seconds between two peers' turns


class Worker:
    """A separate Python process that sets up one peer and times it on request.

    Each peer lives in its own process so that its thread pools (OpenBLAS, PyTorch's
    OpenMP) are its own. An idle worker waits on a pipe, but the thread pools of the
    peer timed just before keep spinning for a while after its last call (OpenBLAS's
    threads for about 0.1 s): :meth:`time` first waits ``SETTLE`` seconds, so that the
    peer timed is never timed against its predecessor's spinning threads.
    """

    def __init__(self, spec):
        self.spec = spec
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.info = self.ask({"op": "setup", **spec})

    def ask(self, message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        if not reply:
            raise RuntimeError(f"worker {self.spec} ended without answering {message}")
        answer = json.loads(reply)
        if "error" in answer:
            raise RuntimeError(f"worker {self.spec}: {answer['error']}")
        return answer

    def time(self, n):
        time.sleep(SETTLE)
        return self.ask({"op": "time", "n": n})["times"]

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)


def run_task(task, timeout=900):
    """Run one task in a fresh worker process and return its JSON answer."""
    completed = subprocess.run(
        [sys.executable, str(HERE / "worker.py"), "--task", json.dumps(task)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"task {task} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib():
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def _versions():
    import importlib.metadata as metadata

    names = ["nnlearn", "numpy", "scipy", "scikit-learn", "threadpoolctl", "torch"]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _blas_pools():
    import scipy.linalg  # noqa: F401  (loads SciPy's own BLAS so that it is listed too)
    from threadpoolctl import threadpool_info

    return [
        {key: pool.get(key) for key in ("internal_api", "version", "architecture", "num_threads", "filepath")}
        for pool in threadpool_info()
        if pool["user_api"] == "blas"
    ]


def machine():
    """What the results were measured on: processor, cores, memory, BLAS, versions."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": _cpu_model(),
        "cores": cores(),
        "memory_gib": round(_memory_gib(), 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": _versions(),
        "blas": _blas_pools(),
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")},
        "load_average_at_start": [round(x, 2) for x in load],
    }
