"""D. Training on a Dask cluster started as a Dask user starts one, against one process.

The cluster is made with Dask's own command line, as a Dask user makes one:
``dask scheduler --scheduler-file F --host 127.0.0.1 --dashboard-address :0 --port 0``
and two ``dask worker ADDRESS --nthreads 1 --host 127.0.0.1 --dashboard-address :0``,
each worker started through its nanny (Dask's default, with the nanny's environment:
``MALLOC_TRIM_THRESHOLD_``, one BLAS thread), each in a session of its own whose process
group is killed at the end. This process connects as a user does,
``distributed.Client(address)``.

The examples are the embedded digits (``nnlearn.load_digits20()``, 5000 x 400) tiled to
10,000 and 100,000 rows, float64, on the course's 400-25-10 network; weights from
``init_random(network, rng=0)``. With 2 workers of one thread each,
:class:`nnlearn.compute._cluster.ClusterDataTerm` cuts the rows in two partitions, one per
worker, at the boundaries of :class:`nnlearn.compute._threads.ShardedDataTerm`'s 2 shards.

What is measured, the cluster idle while this process computes and the other way round:

1. One worker's call. The cost and gradient of a worker's partition, timed inside the
   worker: a function sent with ``client.run`` finds the actor
   (:class:`nnlearn.compute._partitions.Partitions`) in the worker's ``state.actors`` and
   times ``instance.sums(x)`` in the worker's actor thread (where Dask runs an actor's
   calls), one worker at a time; against ``nnlearn.core.data_term`` on the same rows in this
   process on one BLAS thread (``blas_threads(1)``). Medians of ``CALLS`` calls each, taken
   in 5 alternating blocks; the ratio is worker / this process (target: at most 1.1). Beside
   it: this process on a 64-byte aligned copy of the rows (the worker's are aligned), and
   the actor's ``sums`` called from this process (its round trip, one worker at a time).
2. One evaluation's round trip: the median of a whole ``ClusterDataTerm(...)(thetas)`` call
   (weights out, both workers' sums back, added here) against
   ``ShardedDataTerm(X, Y, network, threads=2)(thetas)`` in this process, and the round
   trip of a no-op method on an actor on each worker (both called, both awaited). The
   cluster's call less this process's (the same partitions on the same 2 cores at once)
   is the overhead per evaluation; the slower worker's time alone (from 1) is given beside
   it. The time to make the term (sending the partitions to the workers) too.
3. Training: ``nnlearn.train(X, y, optimizer="lbfgs", max_iter=30, cluster=client)``
   against the same call without ``cluster`` (this process, its BLAS's default threads:
   2 shards on 2 cores), ``RUNS`` runs of each, alternating; the ratio is of the medians
   (targets: at most 2.0 at 10,000 examples, 1.3 at 100,000). Four times per run:
   the whole call (wall clock, nothing excluded: connecting, the workers' version check,
   sending the partitions, the optimisation); ``model.history["seconds"]`` (the fit:
   from before the data term is made, so it includes sending the partitions, to the
   model); iterations 2 to 30 (from the callback after iteration 1 to the one after
   iteration 30: the optimisation alone, no setup); and to the end of iteration 1 (from
   the call to the first callback: the setup and the first iteration).
4. Exactness: the cluster's weights equal the one process's bit for bit
   (``np.array_equal`` on every ``model.thetas``), at both sizes, in every run.

The 1-minute load average is read before anything runs; above ``QUIET_LOAD`` the
benchmark waits for it (polling every 20 s, at most 10 minutes), since the machine is
shared. It is recorded at the start and the end of each part, with the CPU time other
processes than the benchmark's used meanwhile (``/proc/stat``'s busy time less the
benchmark's processes' own), in all and during each training run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXAMPLES = (10_000, 100_000)
WORKERS = 2
CALLS = 20  # calls per median of one evaluation
RUNS = 5  # training runs per side
MAX_ITER = 30
QUIET_LOAD = 0.7  # 1-minute load average under which the timings start
BUSY = 0.1  # share of the cores used by other processes above which the report warns
TARGETS = {
    "worker_call": 1.1,
    "train": {10_000: 2.0, 100_000: 1.3},
}


def _load():
    return [round(x, 2) for x in os.getloadavg()]


def wait_for_quiet(limit=None, poll=20.0, patience=600.0):
    """Wait until the 1-minute load average is at most ``limit`` (default :data:`QUIET_LOAD`),
    or ``patience`` seconds passed; the load seen first, the load when done, the seconds waited."""
    limit = QUIET_LOAD if limit is None else limit
    first, began = _load(), time.monotonic()
    while os.getloadavg()[0] > limit and time.monotonic() - began < patience:
        print(f"  load average {_load()}: waiting for a quieter machine ...", file=sys.stderr, flush=True)
        time.sleep(poll)
    return {"seen": first, "started_at": _load(), "waited_s": round(time.monotonic() - began, 1)}


# What runs on the workers is made inside functions: the workers cannot import this module,
# and Dask pickles a module-level class or function by reference (its module's name).


def _echo_class():
    class Echo:
        """A do-nothing actor: the cost of calling a worker directly."""

        def noop(self):
            return 0

    return Echo


def _timer():
    async def time_in_worker(key, x, calls, dask_worker):
        """Run on a worker (``client.run``): seconds of ``calls`` calls of its actor's ``sums(x)``,
        in the thread Dask runs the actor's calls in, after one untimed call."""
        import asyncio
        import time

        instance = dask_worker.state.actors[key]

        def timed():
            instance.sums(x)
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                instance.sums(x)
                times.append(time.perf_counter() - start)
            return times

        return await asyncio.get_running_loop().run_in_executor(dask_worker.executors["actor"], timed)

    return time_in_worker


def _facts():
    def worker_facts(dask_worker):
        """What a worker runs with: its resident memory, and the environment its nanny gave it."""
        import os

        import psutil
        from threadpoolctl import threadpool_info

        return {
            "rss_mib": round(psutil.Process().memory_info().rss / 2**20),
            "MALLOC_TRIM_THRESHOLD_": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "blas_threads": [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"],
            "nthreads": dask_worker.state.nthreads,
        }

    return worker_facts


class CpuMeter:
    """CPU time used on this machine by other processes than this benchmark's (this process
    and its cluster's process groups) between two readings: the machine's busy time from
    ``/proc/stat`` less the benchmark's processes' own (psutil), and the hypervisor's steal."""

    def __init__(self, groups=()):
        self.groups = set(groups)

    def read(self):
        import psutil

        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        user, nice, system, _idle, _iowait, _irq, _softirq, steal = fields
        tick = os.sysconf("SC_CLK_TCK")
        mine = 0.0
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if process.pid == os.getpid() or os.getpgid(process.pid) in self.groups:
                    times = process.cpu_times()
                    mine += times.user + times.system
        # interrupts left out: the loopback's packets are handled there, for no process
        return time.monotonic(), (user + nice + system) / tick, steal / tick, mine

    @staticmethod
    def between(first, last):
        return {
            "seconds": round(last[0] - first[0], 2),
            "others_cpu_s": round(max(0.0, (last[1] - first[1]) - (last[3] - first[3])), 2),
            "steal_s": round(last[2] - first[2], 2),
        }


def _median_seconds(call, calls):
    call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@contextlib.contextmanager
def command_line_cluster(workers=WORKERS, timeout=60.0):
    """A scheduler and ``workers`` nanny-managed workers of one thread, started with
    ``dask scheduler`` and ``dask worker``; yields the scheduler's address and kills every
    process group on leaving, also on an error."""
    dask = str(Path(sys.executable).parent / "dask")
    processes = []
    with tempfile.TemporaryDirectory(prefix="nnlearn-bench-d-") as folder:
        folder = Path(folder)
        scheduler_file = folder / "scheduler.json"

        def start(name, *args):
            log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 (closed with the processes)
            process = subprocess.Popen(
                [dask, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=folder,
                start_new_session=True,
            )
            processes.append((name, process, log))
            return process

        def logs():
            return "\n".join(
                f"--- {name} ---\n" + (folder / f"{name}.log").read_text(errors="replace")[-1500:]
                for name, *_ in processes
            )

        try:
            scheduler = start(
                "scheduler",
                "scheduler",
                "--scheduler-file",
                str(scheduler_file),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                ":0",
            )
            deadline = time.monotonic() + timeout
            address = None
            while address is None:
                if scheduler.poll() is not None:
                    raise RuntimeError(f"dask scheduler ended ({scheduler.returncode}):\n{logs()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dask scheduler wrote no {scheduler_file} in {timeout:g} s:\n{logs()}")
                with contextlib.suppress(OSError, ValueError):
                    address = json.loads(scheduler_file.read_text())["address"]
                if address is None:
                    time.sleep(0.1)
            for k in range(workers):
                start(
                    f"worker-{k}",
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--dashboard-address",
                    ":0",
                )
            yield address, logs, [process.pid for _, process, _ in processes]
        finally:
            for _, process, _ in reversed(processes):  # the workers first, then the scheduler
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
            for _, process, log in reversed(processes):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=15)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # the group: the nanny's worker too
                process.wait()
                log.close()


def tiled_digits(m):
    """The embedded digits' rows repeated to ``m`` examples: X (m x 400, float64) and labels."""
    import nnlearn

    X, y = nnlearn.load_digits20()
    reps = -(-m // X.shape[0])
    return np.tile(X.astype(np.float64), (reps, 1))[:m].copy(), np.tile(y, reps)[:m].copy()


def measure_calls(client, X, y, calls):
    """Parts 1 and 2 at one size: one worker's call inside it against this process, and a
    whole evaluation on the cluster against this process's 2 shards."""
    from nnlearn.compute._cluster import ClusterDataTerm
    from nnlearn.compute._partitions import aligned
    from nnlearn.compute._threads import ShardedDataTerm, blas_threads
    from nnlearn.core import Network, data_term, init_random, one_hot, pack

    network = Network((X.shape[1], 25, 10))
    thetas = init_random(network, rng=0)
    x = pack(thetas)
    Y = one_hot(y)[1].astype(X.dtype)
    start = time.perf_counter()
    term = ClusterDataTerm(client, X, Y, network)
    made_s = time.perf_counter() - start
    try:
        term(thetas)
        workers = []
        blocks = 5  # alternating blocks of calls / 5 calls, the worker first: drift moves both sides
        for holder in term._holders:
            (index,) = holder.indices
            i, j = term.bounds[index], term.bounds[index + 1]
            rows = (X[i:j], Y[i:j])
            own = tuple(aligned(a, X.dtype) for a in rows)
            remote, called, local, local_aligned = [], [], [], []
            for _ in range(blocks):
                remote += client.run(_timer(), holder.actor.key, x, calls // blocks, workers=[holder.worker])[
                    holder.worker
                ]
                for _ in range(calls // blocks):  # the same, called from here (the actor's round trip)
                    t = time.perf_counter()
                    holder.actor.sums(x).result()
                    called.append(time.perf_counter() - t)
                with blas_threads(1):
                    for sink, (Xp, Yp) in ((local, rows), (local_aligned, own)):
                        data_term(thetas, Xp, Yp, None, network=network)
                        for _ in range(calls // blocks):
                            t = time.perf_counter()
                            data_term(thetas, Xp, Yp, None, network=network)
                            sink.append(time.perf_counter() - t)
            workers.append(
                {
                    "worker": holder.worker,
                    "rows": j - i,
                    "worker_s": float(np.median(remote)),
                    "called_s": float(np.median(called)),
                    "local_s": float(np.median(local)),
                    "local_aligned_s": float(np.median(local_aligned)),
                    "local_offset_bytes": int(X[i:j].ctypes.data % 64),
                }
            )
        cluster_s = _median_seconds(lambda: term(thetas), calls)
        facts = client.run(_facts())
        sharded = ShardedDataTerm(X, Y, network, threads=WORKERS)
        local_s = _median_seconds(lambda: sharded(thetas), calls)
        same = _same_sums(term(thetas), sharded(thetas))
    finally:
        term.close()
    return {
        "m": X.shape[0],
        "partitions": [j - i for i, j in zip(term.bounds, term.bounds[1:])],
        "made_s": made_s,
        "workers": workers,
        "cluster_s": cluster_s,
        "sharded_s": local_s,
        "sums_equal": same,
        "worker_facts": facts,
    }


def _same_sums(a, b):
    return bool(a[0] == b[0] and all(np.array_equal(p, q) for p, q in zip(a[1], b[1])))


def measure_noop(client, calls=50):
    """The round trip of a no-op method of an actor on each worker, both called, both awaited."""
    echoes = [
        client.submit(_echo_class(), actor=True, workers=[w], allow_other_workers=False, pure=False).result()
        for w in sorted(client.nthreads())
    ]

    def round_trip():
        for future in [echo.noop() for echo in echoes]:
            future.result()

    return _median_seconds(round_trip, calls)


def measure_training(client, X, y, runs, meter):
    """Part 3 and 4 at one size: ``runs`` lbfgs trainings on the cluster and in this process,
    alternating, with their times and whether their weights are equal."""
    import nnlearn

    sides = {"cluster": client, "local": None}
    times = {side: [] for side in sides}
    reference = None  # the first run in this process
    equal = {side: [] for side in sides}
    for run in range(runs):
        order = ("local", "cluster") if run % 2 == 0 else ("cluster", "local")
        for side in order:
            marks = []
            before = meter.read()
            start = time.perf_counter()
            model = nnlearn.train(
                X,
                y,
                optimizer="lbfgs",
                max_iter=MAX_ITER,
                cluster=sides[side],
                callback=lambda i, J, x, marks=marks: marks.append(time.perf_counter()),
            )
            wall = time.perf_counter() - start
            others = CpuMeter.between(before, meter.read())["others_cpu_s"]
            times[side].append(
                {
                    "wall_s": wall,
                    "fit_s": model.history["seconds"],
                    "iterations_s": marks[-1] - marks[0],
                    "to_first_iteration_s": marks[0] - start,
                    "n_iter": model.history["n_iter"],
                    "n_evals": model.history["n_evals"],
                    "others_cpu_s": others,
                }
            )
            if reference is None:
                reference = model.thetas
            else:
                equal[side].append(all(np.array_equal(a, b) for a, b in zip(reference, model.thetas)))
    summary = {}
    for side, rows in times.items():
        summary[side] = {key: float(np.median([r[key] for r in rows])) for key in rows[0]}
    return {"m": X.shape[0], "runs": times, "median": summary, "weights_equal": equal}


def run(quick=False):
    import distributed

    from nnlearn.compute._cluster import check_workers
    from nnlearn.compute._threads import default_threads

    examples = EXAMPLES[:1] if quick else EXAMPLES
    calls, runs = (6, 3) if quick else (CALLS, RUNS)
    load = {"before": wait_for_quiet()}
    result = {"workers": WORKERS, "calls_per_median": calls, "runs": runs, "local_threads": default_threads()}
    data = {m: tiled_digits(m) for m in examples}
    with command_line_cluster() as (address, logs, groups), distributed.Client(address, timeout="60s") as client:
        try:
            client.wait_for_workers(WORKERS, timeout=120)
        except TimeoutError:
            raise RuntimeError(f"the {WORKERS} dask workers did not join in 120 s:\n{logs()}") from None
        result["nthreads"] = check_workers(client)  # as train does: the workers import nnlearn
        meter = CpuMeter(groups)
        load["calls_start"] = _load()
        first = meter.read()
        result["noop_s"] = measure_noop(client)
        result["calls"] = [measure_calls(client, *data[m], calls) for m in examples]
        middle = meter.read()
        load["training_start"] = _load()
        result["training"] = [measure_training(client, *data[m], runs, meter) for m in examples]
        load["end"] = _load()
        result["others"] = {
            "calls": CpuMeter.between(first, middle),
            "training": CpuMeter.between(middle, meter.read()),
        }
    result["load"] = load
    return result


def _ms(seconds):
    return f"{seconds * 1e3:.1f}"


def _others(result):
    cores = os.cpu_count() or 1
    parts = []
    for name, what in (("calls", "parts 1-2"), ("training", "part 3")):
        o = result["others"][name]
        parts.append(
            f"{o['others_cpu_s']:.1f} CPU-s in the {o['seconds']:.0f} s of {what} "
            f"({o['others_cpu_s'] / o['seconds'] / cores:.0%} of the {cores} cores; steal {o['steal_s']:.1f} s)"
        )
    worst = max(
        (r["others_cpu_s"] / r["wall_s"] / cores, size["m"], side)
        for size in result["training"]
        for side, rows in size["runs"].items()
        for r in rows
    )
    busy = max(o["others_cpu_s"] / o["seconds"] / cores for o in result["others"].values())
    warning = (
        f" **The machine was not quiet (others up to {busy:.0%} of the cores): these figures are not representative.**"
        if max(busy, worst[0]) > BUSY
        else ""
    )
    return (
        "Other processes than this benchmark's used " + " and ".join(parts) + f"; at most {worst[0]:.0%} of the "
        f"cores during one training run ({worst[2]}, {worst[1]:,} examples)." + warning
    )


def _equal(equal):
    cluster, local = equal["cluster"], equal["local"]
    return (
        f"{'yes' if all(cluster) else 'NO'}: {sum(cluster)} of {len(cluster)} cluster runs "
        f"(and {sum(local)} of {len(local)} other local runs) equal the first local run's"
    )


def report(result):
    load = result["load"]
    before = load["before"]
    facts = next(iter(result["calls"][0]["worker_facts"].values()))
    lines = [
        f"## D. Training on a Dask cluster started with Dask's command line ({result['workers']} workers, "
        "one thread each; 400-25-10, float64, the digits tiled)",
        "",
        "`dask scheduler` and two `dask worker ADDRESS --nthreads 1` (through the nanny, as by default: "
        f"`MALLOC_TRIM_THRESHOLD_={facts['MALLOC_TRIM_THRESHOLD_']}`, BLAS threads {facts['blas_threads']}) "
        f"on 127.0.0.1; this process a `distributed.Client` of them, and the one-process peer "
        f"({result['local_threads']} BLAS threads, its default).",
        "",
        f"Load average (1, 5, 15 min): {before['seen']} first seen, {before['started_at']} when the timings "
        f"started (after waiting {before['waited_s']:.0f} s for 1-min <= {QUIET_LOAD}), "
        f"{load['training_start']} before the training runs, {load['end']} at the end. " + _others(result),
        "",
        f"### 1. One worker's cost+gradient, timed inside the worker (median of {result['calls_per_median']} calls)",
        "",
        "| examples | worker | rows | in the worker ms | this process, 1 BLAS thread ms | worker / this process "
        "| this process, 64-byte aligned copy ms | the actor's `sums` called from this process ms |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    worst = 0.0
    for size in result["calls"]:
        for w in size["workers"]:
            ratio = w["worker_s"] / w["local_s"]
            worst = max(worst, ratio)
            lines.append(
                f"| {size['m']:,} | {w['worker'].split('//')[-1]} | {w['rows']:,} | {_ms(w['worker_s'])} | "
                f"{_ms(w['local_s'])} | {ratio:.2f} | {_ms(w['local_aligned_s'])} | {_ms(w['called_s'])} |"
            )
    target = TARGETS["worker_call"]
    offsets = sorted({w["local_offset_bytes"] for s in result["calls"] for w in s["workers"]})
    lines += [
        "",
        f"Target: at most {target:.1f}x; worst {worst:.2f}x ({'met' if worst <= target else 'MISSED'}). "
        f"This process's rows start {', '.join(map(str, offsets))} bytes past a 64-byte boundary; the "
        "worker's are aligned (`Partitions.hold`).",
        "",
        f"### 2. One evaluation (median of {result['calls_per_median']} calls)",
        "",
        f"No-op round trip, one actor call on each worker: {_ms(result['noop_s'])} ms. The overhead of an "
        "evaluation is the cluster's call less this process's, which computes the same partitions on the same "
        "2 cores at once; the slower worker timed alone (part 1) is given beside it: two partitions computed "
        "at once take longer each than one alone, on the cluster as in this process.",
        "",
        "| examples | cluster call ms | ShardedDataTerm, 2 threads, ms | cluster / one process "
        "| cluster less one process ms | slower worker alone ms | same sums "
        "| making the term (sending the partitions) s | worker memory MiB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for size in result["calls"]:
        slower = max(w["worker_s"] for w in size["workers"])
        memory = ", ".join(str(f["rss_mib"]) for f in size["worker_facts"].values())
        lines.append(
            f"| {size['m']:,} | {_ms(size['cluster_s'])} | {_ms(size['sharded_s'])} | "
            f"{size['cluster_s'] / size['sharded_s']:.2f} | {_ms(size['cluster_s'] - size['sharded_s'])} | "
            f"{_ms(slower)} | "
            f"{'yes' if size['sums_equal'] else 'NO'} | {size['made_s']:.2f} | {memory} |"
        )
    lines += [
        "",
        f"### 3. {MAX_ITER} lbfgs iterations (median of {result['runs']} runs each, alternating)",
        "",
        "Whole call: `nnlearn.train(...)` wall clock, nothing excluded (connecting, the workers' check, "
        "sending the partitions). Fit: `history['seconds']` (sending the partitions and the optimisation). "
        "Iterations 2-30: from the callback after the first iteration to the one after the last "
        "(optimisation only). To the end of iteration 1: from the call to the first callback (the setup and "
        "the first iteration's evaluations).",
        "",
        "| examples | evaluations | whole call: cluster s | one process s | ratio (target) "
        "| fit: cluster s | one process s | ratio | iterations 2-30: cluster s | one process s | ratio "
        "| to the end of iteration 1: cluster s | one process s | weights equal |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for size in result["training"]:
        c, o = size["median"]["cluster"], size["median"]["local"]
        target = TARGETS["train"].get(size["m"])
        ratio = c["wall_s"] / o["wall_s"]
        verdict = "" if target is None else f" (<= {target}: {'met' if ratio <= target else 'MISSED'})"
        lines.append(
            f"| {size['m']:,} | {c['n_evals']:.0f} | {c['wall_s']:.2f} | {o['wall_s']:.2f} | {ratio:.2f}{verdict} | "
            f"{c['fit_s']:.2f} | {o['fit_s']:.2f} | {c['fit_s'] / o['fit_s']:.2f} | "
            f"{c['iterations_s']:.2f} | {o['iterations_s']:.2f} | {c['iterations_s'] / o['iterations_s']:.2f} | "
            f"{c['to_first_iteration_s']:.2f} | {o['to_first_iteration_s']:.2f} | {_equal(size['weights_equal'])} |"
        )
    per_iteration = []
    for size in result["training"]:
        c, o = size["median"]["cluster"], size["median"]["local"]
        more = (c["iterations_s"] - o["iterations_s"]) / (MAX_ITER - 1)
        per_iteration.append(f"{size['m']:,} examples, {_ms(more)} ms")
    lines += [
        "",
        "An iteration on the cluster less one in this process (iterations 2-30): " + "; ".join(per_iteration) + ".",
    ]
    return lines + [""]


if __name__ == "__main__":
    print("\n".join(report(run())))
