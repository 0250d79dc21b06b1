"""A. One cost+gradient call on the embedded digits (5000 x 400, 400-25-10, lambda 1).

Peers, each in its own process: the notebook's function (the baseline); nnlearn's
objective (as its optimisers call it, the kernel in its fixed forms) on the machine's
cores and on one thread, with NumPy's BLAS (the default ``blas="numpy"``) and with Intel
MKL (``blas="mkl"``); the array API data term (:mod:`nnlearn.compute._backends`, the
reference backpropagation) on NumPy arrays and on PyTorch CPU tensors; PyTorch written at
its best on the machine's cores and on one thread; the two large matrix products alone,
each in its fastest form; and the same two products in the forms nnlearn's kernel gives
them, sharded as nnlearn shards the examples, by NumPy's BLAS and by MKL, on the machine's
cores and on one thread: the two libraries on the same work. They are timed in rounds,
one after another, so every round compares them under the same conditions; ratios are
medians of the per-round ratios. The floor is the time of the two large products at the
machine's measured matrix-multiply peak (the best rate of a 2000 x 2000 product, by NumPy's
BLAS on the machine's cores, or on one thread by NumPy's BLAS or MKL where that is more); a
product's fraction of the peak is its rate over that peak (on one thread: over the best
one-thread peak).

The MKL peers are left out, with a note, where Intel MKL is not installed.
"""

from __future__ import annotations

import importlib.metadata
import os

from common import Worker, _cpu_model, cores, median

M, N, H = 5000, 400, 25
PRODUCT_FLOP = 2 * (2 * M * N * H)  # the two products with the examples, X theta1' and delta2' X
# This target: nnlearn at most 0.9x PyTorch's time, in float64 and in float32 (it
# replaces issue 18's "no slower than PyTorch"). Issue 18's 0.8x where the two products
# alone, at their best form, take <= 0.8x PyTorch's whole call, and the earlier issues'
# targets against the notebook and the floor are kept.
TORCH_TARGET = 0.9
TARGETS = {
    "float64": {"torch": TORCH_TARGET, "torch where the products allow": 0.8, "notebook": 0.3, "floor": 2.5},
    "float32": {"torch": TORCH_TARGET, "torch where the products allow": 0.8, "notebook": 0.15, "floor": 2.5},
}
NNLEARN = "nnlearn"
DTYPES = ("float64", "float32")
MKL_ROLES = ("nnlearn_mkl", "nnlearn_mkl_1", "products_mkl", "products_mkl_1")
PRODUCT_ROLES = ("gemm_best", "products_numpy", "products_numpy_1", "products_mkl", "products_mkl_1")
ONE_THREAD_ROLES = ("nnlearn_1", "nnlearn_mkl_1", "torch_1", "products_numpy_1", "products_mkl_1")


def numpy_blas():
    """NumPy's BLAS library: its name, version and kernel (threadpoolctl's view)."""
    import numpy  # noqa: F401  (loads NumPy's BLAS)
    from threadpoolctl import threadpool_info

    pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
    pool = next((p for p in pools if "numpy" in (p.get("filepath") or "")), pools[0] if pools else None)
    if pool is None:
        return "unknown"
    return f"{pool['internal_api']} {pool['version']} (kernel {pool.get('architecture')})"


def mkl_status():
    """(available, text): MKL's package version, or why its peers are left out."""
    from nnlearn.compute._products import mkl_path

    path = mkl_path()
    if path is None:
        return False, 'Intel MKL is not installed (pip install "nnlearn[mkl]"): its peers are left out'
    try:
        version = importlib.metadata.version("mkl")
    except importlib.metadata.PackageNotFoundError:
        version = "of unknown version"
    return True, f"Intel MKL {version} ({path.name}), sequential, in its strict reproducible mode"


def peer_specs(dtype, mkl=True):
    """Role -> (name in the report, worker spec). The MKL roles only where ``mkl``."""
    c = cores()
    blas = "NumPy's BLAS"
    specs = {
        "notebook": ("notebook", {"impl": "notebook", "dtype": dtype, "threads": c}),
        "nnlearn": (f"{NNLEARN}, {c} threads", {"impl": "nnlearn", "dtype": dtype, "threads": c}),
        "nnlearn_1": (f"{NNLEARN}, 1 thread", {"impl": "nnlearn", "dtype": dtype, "threads": 1}),
        "nnlearn_mkl": (f"{NNLEARN} blas=mkl, {c} threads", {"impl": "nnlearn_mkl", "dtype": dtype, "threads": c}),
        "nnlearn_mkl_1": (f"{NNLEARN} blas=mkl, 1 thread", {"impl": "nnlearn_mkl", "dtype": dtype, "threads": 1}),
        "array_numpy": (
            f"reference via the array API, NumPy, {c} threads",
            {"impl": "array_numpy", "dtype": dtype, "threads": c},
        ),
        "array_torch": (
            f"reference via the array API, torch CPU, {c} threads",
            {"impl": "array_torch", "dtype": dtype, "threads": c},
        ),
        "torch": (f"torch, {c} threads", {"impl": "torch", "dtype": dtype, "threads": c}),
        "torch_1": ("torch, 1 thread", {"impl": "torch", "dtype": dtype, "threads": 1}),
        "gemm_best": (
            f"two products alone at their best form, {blas}, {c} threads",
            {"impl": "gemm_best", "dtype": dtype, "threads": c},
        ),
        "products_numpy": (
            f"two products in the kernel's forms, {blas}, {c} threads",
            {"impl": "products_numpy", "dtype": dtype, "threads": c},
        ),
        "products_numpy_1": (
            f"two products in the kernel's forms, {blas}, 1 thread",
            {"impl": "products_numpy", "dtype": dtype, "threads": 1},
        ),
        "products_mkl": (
            f"two products in the kernel's forms, MKL, {c} threads",
            {"impl": "products_mkl", "dtype": dtype, "threads": c},
        ),
        "products_mkl_1": (
            "two products in the kernel's forms, MKL, 1 thread",
            {"impl": "products_mkl", "dtype": dtype, "threads": 1},
        ),
    }
    return {role: spec for role, spec in specs.items() if mkl or role not in MKL_ROLES}


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


def _load():
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def run_dtype(dtype, rounds, calls, mkl=True):
    load_start = _load()
    specs = peer_specs(dtype, mkl)
    workers, mkl_note = {}, None
    try:
        for role, (_, spec) in specs.items():
            try:
                workers[role] = Worker(spec)
            except RuntimeError as error:
                if role not in MKL_ROLES:
                    raise
                mkl_note = f"MKL's peers left out: {error}"
        if mkl_note:
            for role in MKL_ROLES:
                if role in workers:
                    workers.pop(role).close()
        info = {role: worker.info for role, worker in workers.items()}
        peak_askers = {"peak": workers["gemm_best"], "peak_1": workers["products_numpy_1"]}
        peaks = {key: [w.ask({"op": "peak", "dtype": dtype})["gflops"]] for key, w in peak_askers.items()}
        times = time_rounds(workers, rounds, calls)
        for key, worker in peak_askers.items():
            peaks[key].append(worker.ask({"op": "peak", "dtype": dtype})["gflops"])
    finally:
        for worker in workers.values():
            worker.close()
    names = {role: specs[role][0] for role in workers}
    result = summarise(dtype, times, {k: max(v) for k, v in peaks.items()}, info, names)
    result["mkl_note"] = mkl_note
    result["load_average"] = {"start": load_start, "end": _load()}
    return result


def summarise(dtype, times, peaks, info, names):
    """Medians, ratios to the notebook and to PyTorch, the products' fractions of the peak,
    MKL against NumPy's BLAS, and the targets judged on nnlearn's faster default setting.

    ``times`` and ``info`` are keyed by role, ``names`` gives each role's name in the report.
    """
    medians = {role: median([t for r in rounds for t in r]) for role, rounds in times.items()}
    best = min(("nnlearn", "nnlearn_1"), key=medians.get)
    mkl_peak_1 = max((i.get("peak_gflops_1_thread", 0.0) for i in info.values()), default=0.0)
    peak_1 = max(peaks["peak_1"], mkl_peak_1)
    peak = max(peaks["peak"], peak_1)  # the cores do at least what one does (a busy machine can hide it)
    floor = PRODUCT_FLOP / (peak * 1e9)
    ratios = {
        "torch": paired_ratio(times, best, "torch"),
        "torch where the products allow": paired_ratio(times, best, "torch"),
        "notebook": paired_ratio(times, best, "notebook"),
        "floor": medians[best] / floor,
    }
    products = {}
    for role in PRODUCT_ROLES:
        if role in times:
            gflops = PRODUCT_FLOP / medians[role] / 1e9
            one = role in ONE_THREAD_ROLES
            products[names[role]] = {
                "ms": medians[role] * 1e3,
                "gflops": gflops,
                "threads": 1 if one else cores(),
                "peak_gflops": peak_1 if one else peak,
                "fraction_of_peak": gflops / (peak_1 if one else peak),
                "forms": info[role].get("forms"),
            }
    mkl = None
    if "products_mkl" in times:
        best_mkl = min(("nnlearn_mkl", "nnlearn_mkl_1"), key=medians.get)
        mkl = {
            "products_mkl_to_numpy": paired_ratio(times, "products_mkl", "products_numpy"),
            "products_mkl_to_numpy_1_thread": paired_ratio(times, "products_mkl_1", "products_numpy_1"),
            "best_nnlearn_mkl": names[best_mkl],
            "nnlearn_mkl_to_torch": paired_ratio(times, best_mkl, "torch"),
            "nnlearn_mkl_to_nnlearn": paired_ratio(times, "nnlearn_mkl", "nnlearn"),
            "nnlearn_mkl_to_nnlearn_1_thread": paired_ratio(times, "nnlearn_mkl_1", "nnlearn_1"),
            "mkl_peak_gflops_1_thread": mkl_peak_1,
        }
    return {
        "dtype": dtype,
        "medians_ms": {names[k]: v * 1e3 for k, v in medians.items()},
        "ratios_to_notebook": {names[k]: paired_ratio(times, k, "notebook") for k in times},
        "ratios_to_torch": {names[k]: paired_ratio(times, k, "torch") for k in times},
        "best_nnlearn": names[best],
        "one_thread_to_torch": paired_ratio(times, "nnlearn_1", "torch_1"),
        "products_to_torch": paired_ratio(times, "gemm_best", "torch"),
        "peak_gflops": peak,
        "peak_gflops_1_thread": peak_1,
        "numpy_peak_gflops_1_thread": peaks["peak_1"],
        "floor_ms": floor * 1e3,
        "products": products,
        "mkl": mkl,
        "target_ratios": ratios,
        "targets": TARGETS[dtype],
        "info": {names[k]: v for k, v in info.items()},
    }


def run(quick=False):
    rounds, calls = (4, 4) if quick else (10, 5)
    mkl, mkl_text = mkl_status()
    return {
        "processor": f"{_cpu_model()}, {cores()} cores",
        "numpy_blas": numpy_blas(),
        "mkl": mkl_text,
        "calls": [run_dtype(dtype, rounds, calls, mkl) for dtype in DTYPES],
    }


def _summary(results):
    calls = results["calls"]
    lines = [
        f"Processor: {results.get('processor')}. NumPy's BLAS: {results.get('numpy_blas')}. MKL: {results.get('mkl')}.",
        "",
        f"| dtype | nnlearn / torch | target | met | products' fraction of peak | "
        f"MKL / NumPy's BLAS, products, {cores()} threads | same, 1 thread | nnlearn blas=mkl / torch |",
        "| --- | ---: | ---: | --- | --- | ---: | ---: | ---: |",
    ]
    for r in calls:
        ratio = r["target_ratios"]["torch"]
        fractions = ", ".join(
            f"{_short(name)} {p['fraction_of_peak']:.0%}" for name, p in r["products"].items() if p["threads"] > 1
        )
        mkl = r.get("mkl")
        if mkl:
            mkl_cells = (
                f"{mkl['products_mkl_to_numpy']:.3f} | {mkl['products_mkl_to_numpy_1_thread']:.3f} | "
                f"{mkl['nnlearn_mkl_to_torch']:.3f}"
            )
        else:
            mkl_cells = "left out | left out | left out"
        lines.append(
            f"| {r['dtype']} | {ratio:.3f} | <= {TORCH_TARGET} | {'yes' if ratio <= TORCH_TARGET else 'no'} | "
            f"{fractions} (of {r['peak_gflops']:.0f} GFLOP/s) | {mkl_cells} |"
        )
    lines += [
        "",
        f"nnlearn / torch: nnlearn's faster setting with its default BLAS (NumPy's) against PyTorch on "
        f"{cores()} threads. The products' fraction of the peak: the two products with the examples "
        "(2 x 2 x 5000 x 400 x 25 flop) at their median time, over the best rate of a 2000 x 2000 product "
        "by NumPy's BLAS on the same threads. MKL / NumPy's BLAS: the two products in the kernel's forms, "
        "sharded as nnlearn shards them, MKL's time over NumPy's, paired round by round.",
    ]
    notes = {r.get("mkl_note") for r in calls} - {None}
    return lines + [f"Note: {n}" for n in sorted(notes)] + [""]


def _short(name):
    return "best form" if "best form" in name else ("MKL" if "MKL" in name else "kernel's forms")


def _call_table(r):
    load = r.get("load_average") or {}
    lines = [
        f"### {r['dtype']}",
        "",
        f"Load average {load.get('start')} before, {load.get('end')} after.",
        "",
        "| implementation | median ms | time / notebook's | time / torch's |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, ms in r["medians_ms"].items():
        lines.append(f"| {name} | {ms:.2f} | {r['ratios_to_notebook'][name]:.3f} | {r['ratios_to_torch'][name]:.3f} |")
    lines.append(f"| floor: the two products at {r['peak_gflops']:.0f} GFLOP/s | {r['floor_ms']:.2f} | | |")
    return lines + [""]


def _products_table(r):
    lines = [
        "The two products with the examples against the processor's measured matrix-multiply peak "
        f"({r['peak_gflops']:.0f} GFLOP/s on {cores()} threads, {r['peak_gflops_1_thread']:.0f} on one: "
        f"NumPy's BLAS {r['numpy_peak_gflops_1_thread']:.0f}"
        + (f", MKL {r['mkl']['mkl_peak_gflops_1_thread']:.0f}" if r.get("mkl") else "")
        + "):",
        "",
        "| products | forms | median ms | GFLOP/s | fraction of peak |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, p in r["products"].items():
        lines.append(f"| {name} | {p['forms']} | {p['ms']:.2f} | {p['gflops']:.1f} | {p['fraction_of_peak']:.1%} |")
    return lines + [""]


def _mkl_lines(r):
    mkl = r.get("mkl")
    if not mkl:
        return [f"MKL: {r.get('mkl_note') or 'left out'}.", ""]
    c = cores()
    return [
        "Intel MKL against NumPy's BLAS (time / time, paired round by round):",
        "",
        "| | ratio |",
        "| --- | ---: |",
        f"| the two products in the kernel's forms, {c} threads | {mkl['products_mkl_to_numpy']:.3f} |",
        f"| the two products in the kernel's forms, 1 thread | {mkl['products_mkl_to_numpy_1_thread']:.3f} |",
        f"| nnlearn blas=mkl / nnlearn, {c} threads | {mkl['nnlearn_mkl_to_nnlearn']:.3f} |",
        f"| nnlearn blas=mkl / nnlearn, 1 thread | {mkl['nnlearn_mkl_to_nnlearn_1_thread']:.3f} |",
        f"| nnlearn blas=mkl ({mkl['best_nnlearn_mkl']}) / torch, {c} threads | {mkl['nnlearn_mkl_to_torch']:.3f} |",
        "",
    ]


def _targets(r):
    lines = [f"Targets for nnlearn's faster setting ({r['best_nnlearn']}):", ""]
    lines += ["| nnlearn against | ratio | target | met |", "| --- | ---: | ---: | --- |"]
    allowed = r["products_to_torch"] <= r["targets"]["torch where the products allow"]
    for peer, target in r["targets"].items():
        ratio = r["target_ratios"][peer]
        if peer == "torch where the products allow" and not allowed:
            verdict = f"does not apply: the products alone take {r['products_to_torch']:.3f}x torch's call"
        else:
            verdict = "yes" if ratio <= target else "no"
        lines.append(f"| {peer} | {ratio:.3f} | <= {target} | {verdict} |")
    lines += [
        "",
        f"On one thread each (where other processes on the machine weigh alike on both): nnlearn "
        f"took {r['one_thread_to_torch']:.3f}x PyTorch's time.",
    ]
    return lines + [""]


def report(results):
    lines = ["## A. One cost+gradient call (5000 x 400 digits, 400-25-10, lambda 1)", ""]
    lines += _summary(results)
    for r in results["calls"]:
        lines += _call_table(r) + _products_table(r) + _mkl_lines(r) + _targets(r)
    return lines
