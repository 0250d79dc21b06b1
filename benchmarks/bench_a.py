"""A. One cost+gradient call on the embedded digits (5000 x 400, 400-25-10, lambda 1).

Peers, each in its own process: the notebook's function (the baseline), nnlearn's
objective (as its optimisers call it) with the machine's cores and with one thread,
nnlearn's core function alone on OpenBLAS's threads (the way sharding replaced),
PyTorch on the CPU with the machine's cores, and the two large matrix products alone.
They are timed in rounds, one after another, so every round compares them under the
same conditions; ratios are medians of the per-round ratios. The floor is the time of the two large products at the
machine's measured matrix-multiply peak.
"""

from __future__ import annotations

from common import Worker, cores, median

M, N, H = 5000, 400, 25
TARGETS = {  # the issue's: nnlearn's time as a fraction of each peer's
    "float64": {"notebook": 0.3, "torch": 0.5, "floor": 2.5},
    "float32": {"notebook": 0.15, "torch": 0.6, "floor": 2.5},
}


def peer_specs(dtype):
    c = cores()
    return {
        "notebook": {"impl": "notebook", "dtype": dtype, "threads": c},
        f"nnlearn, {c} threads": {"impl": "nnlearn", "dtype": dtype, "threads": c},
        "nnlearn, 1 thread": {"impl": "nnlearn", "dtype": dtype, "threads": 1},
        f"core alone, OpenBLAS's {c} threads": {"impl": "core_blas", "dtype": dtype, "threads": c},
        f"torch, {c} threads": {"impl": "torch", "dtype": dtype, "threads": c},
        f"two products alone, {c} threads": {"impl": "gemm", "dtype": dtype, "threads": c},
    }


def time_rounds(workers, rounds, calls):
    """Per peer, the per-call times of every round, the peers taking turns."""
    times = {name: [] for name in workers}
    for _ in range(rounds):
        for name, worker in workers.items():
            times[name].append(worker.time(calls))
    return times


def paired_ratio(times, a, b):
    """Median over rounds of (median of a's calls) / (median of b's calls)."""
    return median([median(x) / median(y) for x, y in zip(times[a], times[b])])


def run_dtype(dtype, rounds, calls):
    workers = {name: Worker(spec) for name, spec in peer_specs(dtype).items()}
    try:
        gemm = next(w for name, w in workers.items() if name.startswith("two products"))
        peaks = [gemm.ask({"op": "peak", "dtype": dtype})["gflops"]]
        times = time_rounds(workers, rounds, calls)
        peaks.append(gemm.ask({"op": "peak", "dtype": dtype})["gflops"])
    finally:
        for worker in workers.values():
            worker.close()
    return summarise(dtype, times, max(peaks))


def summarise(dtype, times, peak):
    medians = {name: median([t for r in rounds for t in r]) for name, rounds in times.items()}
    nnlearn_names = [n for n in times if n.startswith("nnlearn")]
    best = min(nnlearn_names, key=medians.get)
    floor = 2 * (2 * M * N * H) / (peak * 1e9)
    notebook = "notebook"
    torch = next(n for n in times if n.startswith("torch"))
    ratios = {
        "notebook": paired_ratio(times, best, notebook),
        "torch": paired_ratio(times, best, torch),
        "floor": medians[best] / floor,
    }
    return {
        "dtype": dtype,
        "medians_ms": {k: v * 1e3 for k, v in medians.items()},
        "ratios_to_notebook": {k: paired_ratio(times, k, notebook) for k in times},
        "best_nnlearn": best,
        "peak_gflops": peak,
        "floor_ms": floor * 1e3,
        "target_ratios": ratios,
        "targets": TARGETS[dtype],
    }


def run(quick=False):
    rounds, calls = (4, 4) if quick else (10, 5)
    return [run_dtype(dtype, rounds, calls) for dtype in ("float64", "float32")]


def report(results):
    lines = ["## A. One cost+gradient call (5000 x 400 digits, 400-25-10, lambda 1)", ""]
    for r in results:
        lines += [
            f"### {r['dtype']}",
            "",
            "| implementation | median ms | time / notebook's |",
            "| --- | ---: | ---: |",
        ]
        for name, ms in r["medians_ms"].items():
            lines.append(f"| {name} | {ms:.2f} | {r['ratios_to_notebook'][name]:.3f} |")
        lines.append(f"| floor: the two products at {r['peak_gflops']:.0f} GFLOP/s | {r['floor_ms']:.2f} | |")
        lines += ["", f"Targets for the faster nnlearn setting ({r['best_nnlearn']}):", ""]
        lines += ["| nnlearn against | ratio | target | met |", "| --- | ---: | ---: | --- |"]
        for peer, target in r["targets"].items():
            ratio = r["target_ratios"][peer]
            lines.append(f"| {peer} | {ratio:.3f} | <= {target} | {'yes' if ratio <= target else 'no'} |")
        medians = r["medians_ms"]
        torch = next(name for name in medians if name.startswith("torch"))
        products = next(ms for name, ms in medians.items() if name.startswith("two products"))
        budgets = {
            "the notebook's": r["targets"]["notebook"] * medians["notebook"],
            "PyTorch's": r["targets"]["torch"] * medians[torch],
        }
        lines += [
            "",
            "Most time a call may take to meet the target against "
            + ", against ".join(f"{peer}: {ms:.2f} ms" for peer, ms in budgets.items())
            + f". The two large products alone "
            f"took {products:.2f} ms here, and would take {r['floor_ms']:.2f} ms at the measured peak.",
            "",
        ]
    return lines
