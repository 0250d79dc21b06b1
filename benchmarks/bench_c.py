"""C. Scaling of one cost+gradient call: examples 1k to 60k, hidden units 25 to 800.

Synthetic data with 784 features (an MNIST-sized input) and 10 classes, float64. Every
size is timed with one BLAS thread and with the machine's cores, the two settings
taking turns within one process (they share one BLAS library, so nothing else runs
beside them). Work per call is linear in m and in the hidden units, so the time per
example (or per hidden unit) should stay flat; the report flags sizes where it moves
by more than 25% from the smallest size's.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

import common
import peers

N_FEATURES = 784
EXAMPLES = (1000, 5000, 10000, 30000, 60000)
HIDDEN = (25, 100, 200, 400, 800)
HIDDEN_AT = 10000
DEPARTURE = 0.25


def time_point(m, hidden, threads, rounds, calls):
    """Median seconds per call at each thread setting, the settings taking turns."""
    X, Y = common.synthetic(m, N_FEATURES)
    call = peers.nnlearn_call(X, Y, peers.initial_thetas((N_FEATURES, hidden, 10), "float64"))
    times = {t: [] for t in threads}
    for _ in range(rounds):
        for t in threads:
            with threadpool_limits(limits=t, user_api="blas"):
                times[t] += common.time_calls(call, calls)
    return {str(t): common.median(v) for t, v in times.items()}


def scaling(examples, hidden, rounds, calls):
    threads = sorted({1, common.cores()})
    return {
        "threads": threads,
        "examples": [{"m": m, "hidden": 25, **time_point(m, 25, threads, rounds, calls)} for m in examples],
        "hidden": [{"m": HIDDEN_AT, "hidden": h, **time_point(HIDDEN_AT, h, threads, rounds, calls)}
                   for h in hidden],
    }


TASKS = {"scaling": scaling}


def run(quick=False):
    if quick:
        args = {"examples": EXAMPLES[:3], "hidden": HIDDEN[:3], "rounds": 2, "calls": 2}
    else:
        args = {"examples": EXAMPLES, "hidden": HIDDEN, "rounds": 3, "calls": 3}
    return common.run_task({"module": "bench_c", "name": "scaling", "args": args})


def _table(rows, key, unit, scale, threads):
    best = {t: None for t in threads}
    head = " | ".join(f"{t} thr ms | {t} thr {unit}" for t in threads)
    lines = [f"| {key} | {head} | faster setting |", "|" + " ---: |" * (1 + 2 * len(threads)) + " --- |"]
    notes = []
    for row in rows:
        cells = []
        for t in threads:
            seconds = row[str(t)]
            scaled = seconds * scale / row[key]
            best[t] = best[t] or scaled
            cells.append(f"{seconds * 1e3:.2f} | {scaled:.2f}")
            if abs(scaled / best[t] - 1) > DEPARTURE:
                notes.append(f"{key} = {row[key]}, {t} thread(s): {unit} is {scaled / best[t]:.2f}x "
                             f"the smallest size's")
        faster = min(threads, key=lambda t: row[str(t)])
        lines.append(f"| {row[key]} | " + " | ".join(cells) + f" | {faster} thread(s) |")
    return lines, notes


def report(result):
    threads = result["threads"]
    lines = ["## C. Scaling (784 synthetic features, 10 classes, float64)", ""]
    lines += ["Examples grow, 25 hidden units (time per example in microseconds):", ""]
    table, notes_m = _table(result["examples"], "m", "us/example", 1e6, threads)
    lines += table + ["", f"Hidden units grow, m = {HIDDEN_AT} (time per hidden unit in milliseconds):", ""]
    table, notes_h = _table(result["hidden"], "hidden", "ms/unit", 1e3, threads)
    lines += table + [""]
    notes = notes_m + notes_h
    lines.append("Departures from linear growth (more than 25% from the smallest size):")
    lines += [""] + ([f"- {n}" for n in notes] if notes else ["- none"]) + [""]
    return lines
