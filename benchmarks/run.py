"""Run the benchmark suite and write ``benchmarks/RESULTS.md``.

    python benchmarks/run.py            # A to D (several minutes on 2 quiet cores)
    python benchmarks/run.py --quick    # fewer rounds and sizes
    python benchmarks/run.py --only A   # one part (A, B, C or D; may be repeated)
    python benchmarks/run.py --name x   # write RESULTS-x.md and results-x.json instead

Every peer is timed in a process of its own (see ``common.Worker``); the table is
printed and written with a description of the machine it ran on. The raw numbers go
to ``benchmarks/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_a
import bench_b
import bench_c
import bench_d
import common

PARTS = {"A": bench_a, "B": bench_b, "C": bench_c, "D": bench_d}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and sizes")
    parser.add_argument("--only", action="append", choices=sorted(PARTS), help="run only this part")
    parser.add_argument(
        "--name",
        help="write RESULTS-NAME.md and results-NAME.json (default: RESULTS.md, "
        "results.json), to keep runs under other settings apart",
    )
    return parser.parse_args(argv)


def machine_lines(machine, seconds, quick):
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    lines = [
        "# Benchmark results",
        "",
        f"Run {machine['date']}{' (--quick)' if quick else ''}, {seconds:.0f} s in all.",
        "",
        "| machine | |",
        "| --- | --- |",
        f"| processor | {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB |",
        f"| system | {machine['platform']}, Python {machine['python']} |",
        f"| versions | {versions} |",
    ]
    for pool in machine["blas"]:
        name = os.path.basename(pool["filepath"] or "")
        lines.append(
            f"| BLAS | {pool['internal_api']} {pool['version']}, kernel {pool['architecture']}, "
            f"{pool['num_threads']} threads ({name}) |"
        )
    if machine["openblas_env"]:
        env = ", ".join(f"{k}={v}" for k, v in machine["openblas_env"].items())
        lines.append(f"| environment | {env} |")
    lines.append(
        f"| load average | {machine['load_average_at_start']} at the start, "
        f"{machine['load_average_at_end']} at the end |"
    )
    return lines + [""]


def main(argv=None):
    args = parse_args(argv)
    parts = args.only or sorted(PARTS)
    machine = common.machine()
    start = time.perf_counter()
    results = {}
    for name in parts:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = PARTS[name].run(quick=args.quick)
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    lines = machine_lines(machine, time.perf_counter() - start, args.quick)
    for name in parts:
        lines += PARTS[name].report(results[name])
    text = "\n".join(lines)
    suffix = f"-{args.name}" if args.name else ""
    (common.HERE / f"RESULTS{suffix}.md").write_text(text + "\n")
    (common.HERE / f"results{suffix}.json").write_text(json.dumps({"machine": machine, **results}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
