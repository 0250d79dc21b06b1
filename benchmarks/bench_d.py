"""D. One evaluation on a Dask cluster against one process, and a cost model from it.

A local cluster of 2 worker processes (one thread each) on 127.0.0.1 holds m examples of
784 synthetic float32 features, made on the workers (never on the client), in one
partition per worker; the network is 784-100-10. For each m the median time of a
cost+gradient evaluation is taken on the cluster (``nnlearn.compute._cluster.ClusterDataTerm``)
and in this process on the same 2 cores (``nnlearn.compute._threads.ShardedDataTerm``), with the
cluster idle while the process computes and the other way round. The fixed cost of the
transport is a round trip of one no-op task per worker.

A cost model t(m, N) = t0 + c m / N is fitted to the cluster's times (least squares over
the sizes), t0 the fixed overhead and c the compute per example; it gives the speed-up
over one process at N workers and the m from which a cluster pays. The workers' memory
(resident set) is read at the largest m.
"""

from __future__ import annotations

import os
import time

import numpy as np

N_FEATURES, HIDDEN, K = 784, 100, 10
EXAMPLES = (10_000, 60_000, 250_000, 1_000_000)
WORKERS = 2


def _rss_mib():
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


class _Echo:
    """A do-nothing actor: the cost of calling a worker directly."""

    def noop(self):
        return 0


def _median_seconds(call, calls):
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(examples=EXAMPLES, calls=5):
    import dask.array as da
    import distributed
    from threadpoolctl import threadpool_limits

    from nnlearn.compute._cluster import ClusterDataTerm, local_cluster
    from nnlearn.compute._threads import ShardedDataTerm
    from nnlearn.core import Network, init_random

    network = Network((N_FEATURES, HIDDEN, K))
    thetas = init_random(network, rng=0, dtype=np.float32)
    rows = []
    with (
        local_cluster(WORKERS) as cluster,
        distributed.Client(cluster) as client,  # the default client: actors need one
        threadpool_limits(1),  # the client's own BLAS threads would compete with the workers
    ):
        workers = list(client.scheduler_info()["workers"])

        def noop_round_trip():
            client.gather([client.submit(int, 0, pure=False, workers=[w]) for w in workers])

        noop_round_trip()
        overhead = _median_seconds(noop_round_trip, 20)
        # The leaner transport measured beside it: an actor per worker, called directly
        # (no scheduler in the path). nnlearn does not use it: an actor's state dies with
        # its worker and nothing remakes it, where a task's inputs are remade.
        actors = [client.submit(_Echo, workers=[w], actor=True).result() for w in workers]

        def actor_round_trip():
            for future in [actor.noop() for actor in actors]:
                future.result()

        actor_round_trip()
        actor_overhead = _median_seconds(actor_round_trip, 20)
        for m in examples:
            rng = da.random.default_rng(0)
            X = rng.random((m, N_FEATURES), chunks=(-(-m // WORKERS), N_FEATURES), dtype=np.float32)
            Y = np.eye(K, dtype=np.float32)[np.arange(m) % K]  # labels are small: the client holds them
            term = ClusterDataTerm(client, X, Y, network)
            term(thetas)  # first call: the chunks are made on the workers
            cluster_s = _median_seconds(lambda term=term: term(thetas), calls)
            memory = client.run(_rss_mib)
            term.close()
            del term
            local_X = np.random.default_rng(0).random((m, N_FEATURES), dtype=np.float32)
            local = ShardedDataTerm(local_X, Y, network, threads=WORKERS)
            local(thetas)
            with threadpool_limits(1):
                local_s = _median_seconds(lambda local=local: local(thetas), calls)
            del local, local_X
            rows.append({"m": m, "cluster_s": cluster_s, "local_s": local_s, "worker_rss_mib": memory})
    return {
        "overhead_s": overhead,
        "actor_overhead_s": actor_overhead,
        "rows": rows,
        "workers": WORKERS,
        "weights": network.n_weights,
    }


def cost_model(result):
    """t(m, N) = t0 + c m / N: t0 the measured round trip, c fitted to the cluster's times."""
    N, t0 = result["workers"], result["overhead_s"]
    m = np.array([r["m"] for r in result["rows"]], dtype=float)
    t = np.array([r["cluster_s"] for r in result["rows"]])
    c = float(np.sum((t - t0) * m / N) / np.sum((m / N) ** 2))  # least squares through (0, t0)
    local_per_example = float(np.median([r["local_s"] / r["m"] for r in result["rows"]]))
    return {"t0_s": t0, "c_s_per_example": c, "local_s_per_example": local_per_example}


def run(quick=False):
    examples = EXAMPLES[:2] if quick else EXAMPLES
    result = measure(examples, calls=3 if quick else 5)
    result["model"] = cost_model(result)
    return result


def report(result):
    model = result["model"]
    lines = [
        f"## D. A cost+gradient evaluation on a Dask cluster ({result['workers']} local worker processes, "
        f"784 float32 features, 784-100-10)",
        "",
        f"A no-op round trip of one task per worker (the transport nnlearn uses): {result['overhead_s'] * 1e3:.1f} ms; "
        f"of one call to an actor on each worker (no scheduler in the path, but no recovery of a lost worker's "
        f"state): {result['actor_overhead_s'] * 1e3:.1f} ms.",
        "",
        "| examples | cluster ms | one process (same cores) ms | cluster / one process | worker memory MiB |",
        "| ---: | ---: | ---: | ---: | --- |",
    ]
    for r in result["rows"]:
        memory = ", ".join(f"{v:.0f}" for v in r["worker_rss_mib"].values())
        lines.append(
            f"| {r['m']:,} | {r['cluster_s'] * 1e3:.1f} | {r['local_s'] * 1e3:.1f} | "
            f"{r['cluster_s'] / r['local_s']:.2f} | {memory} |"
        )
    t0, c = model["t0_s"], model["c_s_per_example"]
    lines += [
        "",
        f"Cost model t(m, N) = t0 + c m / N: t0 = {t0 * 1e3:.1f} ms (the round trip above), "
        f"c = {c * 1e6:.2f} us per example per worker (fitted); one process takes "
        f"{model['local_s_per_example'] * 1e6:.2f} us per example on the same cores. "
        "Predicted speed-up over one 2-core process (each worker one core):",
        "",
        "| examples | N = 2 | N = 4 | N = 8 | N = 16 |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in (10_000, 60_000, 250_000, 1_000_000, 10_000_000):
        local = model["local_s_per_example"] * m
        cells = " | ".join(f"{local / (t0 + c * m / n):.2f}" for n in (2, 4, 8, 16))
        lines.append(f"| {m:,} | {cells} |")
    for n in (4, 8, 16):
        # a cluster of n pays when t0 + c m / n < local_per_example m
        gain = model["local_s_per_example"] - c / n
        where = f"from about {t0 / gain:,.0f} examples" if gain > 0 else "never at this cost per example"
        lines.append(f"\nWith {n} workers a cluster pays {where}.")
    return lines + [""]


if __name__ == "__main__":
    print("\n".join(report(run())))
