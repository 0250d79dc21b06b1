"""A benchmark worker process: one peer, its own thread pools, answers on a pipe.

Two ways to run it (``run.py`` does both):

* ``python worker.py``: reads JSON lines from stdin, ``{"op": "setup", ...}`` once, then
  ``{"op": "time", "n": N}`` as often as asked; each answer is one JSON line.
* ``python worker.py --task JSON``: runs one task of a benchmark module
  (``{"module": "bench_b", "name": ..., "args": {...}}``) and prints its JSON result.
"""

from __future__ import annotations

import importlib
import json
import sys

import common
import peers
from threadpoolctl import threadpool_limits

_limits = []  # keeps the BLAS thread limit of this process in force


def set_threads(impl, threads):
    """Give the peer ``threads`` threads: PyTorch's intra-op pool, or NumPy's BLAS."""
    if impl in ("torch", "array_torch"):
        import torch

        torch.set_num_threads(threads)
    else:
        _limits.append(threadpool_limits(limits=threads, user_api="blas"))


def setup(impl, dtype, threads, data="digits", m=None, n=None, hidden=25):
    set_threads(impl, threads)
    if impl == "peak":
        return None, {"gflops": peers.gemm_peak_gflops(dtype)}
    if data == "digits":
        X, _, Y = common.digits(dtype)
    else:
        X, Y = common.synthetic(m, n, dtype=dtype)
    thetas = peers.initial_thetas((X.shape[1], hidden, Y.shape[1]), dtype)
    call = peers.CALLS[impl](X, Y, thetas, threads)
    return call, {"m": X.shape[0], "n": X.shape[1], "hidden": hidden, **getattr(call, "info", {})}


def serve():
    call = None
    for line in sys.stdin:
        message = json.loads(line)
        try:
            if message["op"] == "setup":
                args = {k: v for k, v in message.items() if k != "op"}
                call, info = setup(**args)
                answer = info
            elif message["op"] == "peak":
                answer = {"gflops": peers.gemm_peak_gflops(message["dtype"])}
            else:
                answer = {"times": common.time_calls(call, message["n"]) if call else []}
        except Exception as error:  # reported to the parent, which stops the run
            answer = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(answer), flush=True)


def run_task(task):
    module = importlib.import_module(task["module"])
    return module.TASKS[task["name"]](**task.get("args", {}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--task":
        print(json.dumps(run_task(json.loads(sys.argv[2]))), flush=True)
    else:
        serve()
