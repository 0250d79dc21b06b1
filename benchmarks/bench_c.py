"""C. Scaling of one cost+gradient call: examples 1k to 60k, hidden units 25 to 800.

Synthetic data with 784 features (an MNIST-sized input) and 10 classes, float64. Every
size is timed in three settings taking turns within one process (only one runs at a
time, each turn after a pause of ``common.SETTLE``): nnlearn's objective on one thread,
on the machine's cores (examples shared among threads, :mod:`nnlearn.compute._threads`), and the
core function on all the examples with OpenBLAS's threads instead. Work per call is
linear in m and in the hidden units, so the time per example (or per hidden unit) should
stay flat; the report flags sizes where it moves by more than 25% from the smallest
size's.

Then the largest size, 60,000 x 784 with 800 hidden units, where every implementation is
bound by its products: nnlearn, the two large products alone at their best form, and
PyTorch, each in its own process (as in part A), in float64 and float32.
"""

from __future__ import annotations

import time

import bench_a
import common
import peers
from threadpoolctl import threadpool_limits

N_FEATURES = 784
EXAMPLES = (1000, 5000, 10000, 30000, 60000)
HIDDEN = (25, 100, 200, 400, 800)
HIDDEN_AT = 10000
DEPARTURE = 0.25


def settings():
    """(label, peer, threads) of each setting timed."""
    c = common.cores()
    return [("1 thread", "nnlearn", 1), (f"{c} threads", "nnlearn", c), (f"{c} BLAS threads", "core_blas", c)]


def time_point(m, hidden, rounds, calls):
    """Median seconds per call in each setting, the settings taking turns."""
    X, Y = common.synthetic(m, N_FEATURES)
    thetas = peers.initial_thetas((N_FEATURES, hidden, 10), "float64")
    runs = {label: (peers.CALLS[peer](X, Y, thetas, t), t) for label, peer, t in settings()}
    times = {label: [] for label in runs}
    for _ in range(rounds):
        for label, (call, t) in runs.items():
            time.sleep(common.SETTLE)  # the previous setting's OpenBLAS threads stop spinning
            with threadpool_limits(limits=t, user_api="blas"):
                times[label] += common.time_calls(call, calls)
    return {label: common.median(v) for label, v in times.items()}


def scaling(examples, hidden, rounds, calls):
    return {
        "settings": [label for label, _, _ in settings()],
        "examples": [{"m": m, "hidden": 25, **time_point(m, 25, rounds, calls)} for m in examples],
        "hidden": [{"m": HIDDEN_AT, "hidden": h, **time_point(HIDDEN_AT, h, rounds, calls)} for h in hidden],
    }


TASKS = {"scaling": scaling}
BOUND = {"m": 60000, "hidden": 800}


def bound_specs(dtype, m, hidden):
    c = common.cores()
    data = {"dtype": dtype, "threads": c, "data": "synthetic", "m": m, "n": N_FEATURES, "hidden": hidden}
    return {
        f"nnlearn, {c} threads": {"impl": "nnlearn", **data},
        f"two products alone at their best form, {c} threads": {"impl": "gemm_best", **data},
        f"torch, {c} threads": {"impl": "torch", **data},
    }


def products_bound(dtype, m, hidden, rounds):
    """The peers at one large size, taking turns, one call a turn; ratios per round."""
    workers = {}
    try:
        for name, spec in bound_specs(dtype, m, hidden).items():
            workers[name] = common.Worker(spec)
        info = {name: worker.info for name, worker in workers.items()}
        times = bench_a.time_rounds(workers, rounds, 1)
    finally:
        for worker in workers.values():
            worker.close()
    medians = {name: common.median([t for r in rounds_ for t in r]) for name, rounds_ in times.items()}
    nnlearn, products, torch = times  # in the order of bound_specs
    return {
        "dtype": dtype,
        "m": m,
        "hidden": hidden,
        "medians_s": medians,
        "ratios": {
            "nnlearn / products": bench_a.paired_ratio(times, nnlearn, products),
            "nnlearn / torch": bench_a.paired_ratio(times, nnlearn, torch),
        },
        "info": info,
    }


def run(quick=False):
    if quick:
        args = {"examples": EXAMPLES[:3], "hidden": HIDDEN[:3], "rounds": 2, "calls": 2}
        bound = {"m": 20000, "hidden": 800, "rounds": 2}
    else:
        args = {"examples": EXAMPLES, "hidden": HIDDEN, "rounds": 3, "calls": 3}
        bound = {**BOUND, "rounds": 3}
    scaled = common.run_task({"module": "bench_c", "name": "scaling", "args": args})
    return {**scaled, "bound": [products_bound(dtype, **bound) for dtype in ("float64", "float32")]}


def _table(rows, key, unit, scale, labels):
    best = dict.fromkeys(labels)
    head = " | ".join(f"{label}: ms | {unit}" for label in labels)
    lines = [f"| {key} | {head} | fastest |", "|" + " ---: |" * (1 + 2 * len(labels)) + " --- |"]
    notes = []
    for row in rows:
        cells = []
        for label in labels:
            seconds = row[label]
            scaled = seconds * scale / row[key]
            best[label] = best[label] or scaled
            cells.append(f"{seconds * 1e3:.2f} | {scaled:.2f}")
            if abs(scaled / best[label] - 1) > DEPARTURE:
                notes.append(f"{key} = {row[key]}, {label}: {unit} is {scaled / best[label]:.2f}x the smallest size's")
        fastest = min(labels, key=lambda label: row[label])
        lines.append(f"| {row[key]} | " + " | ".join(cells) + f" | {fastest} |")
    return lines, notes


def report(result):
    labels = result["settings"]
    lines = ["## C. Scaling (784 synthetic features, 10 classes, float64)", ""]
    lines += ["Examples grow, 25 hidden units (time per example in microseconds):", ""]
    table, notes_m = _table(result["examples"], "m", "us/example", 1e6, labels)
    lines += table + ["", f"Hidden units grow, m = {HIDDEN_AT} (time per hidden unit in milliseconds):", ""]
    table, notes_h = _table(result["hidden"], "hidden", "ms/unit", 1e3, labels)
    lines += table + [""]
    notes = notes_m + notes_h
    lines.append("Departures from linear growth (more than 25% from the smallest size):")
    lines += [""] + ([f"- {n}" for n in notes] if notes else ["- none"]) + [""]
    for bound in result.get("bound", []):
        lines += _bound_report(bound)
    return lines


def _bound_report(r):
    lines = [
        f"### Bound by the products: {r['m']} x {N_FEATURES}, {r['hidden']} hidden units, {r['dtype']}",
        "",
        "| implementation | median s |",
        "| --- | ---: |",
    ]
    lines += [f"| {name} | {seconds:.3f} |" for name, seconds in r["medians_s"].items()]
    lines += ["", "| ratio (median of per-round ratios) | value | target |", "| --- | ---: | --- |"]
    targets = {"nnlearn / products": "<= 1.1"}
    for name, ratio in r["ratios"].items():
        target = targets.get(name, "")
        met = f"{target}: {'met' if ratio <= 1.1 else 'not met'}" if target else "reported"
        lines.append(f"| {name} | {ratio:.3f} | {met} |")
    lines.append("")
    for name, info in r["info"].items():
        if "forms" in info:
            lines.append(f"- {name}: {info['forms']}")
    return lines + [""]
