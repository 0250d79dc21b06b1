"""Check nnlearn on a CUDA GPU: the array API data term against NumPy, its speed, a short training.

    python benchmarks/gpu_check.py                 # on the GPU, if there is one
    python benchmarks/gpu_check.py --device cpu    # the same checks on PyTorch CPU tensors (a dry run)
    python benchmarks/gpu_check.py --json out.json # the figures as JSON too

Where PyTorch or a CUDA device is missing it says "no GPU" and exits 0. Otherwise, for
float64 and float32, on the digits (5000 x 400, 400-25-10) and on 60,000 x 784 synthetic
examples with 800 hidden units (``--m``, ``--hidden``):

1. cost and gradient of :func:`nnlearn.core.cost_and_gradient` given CUDA tensors, and
   the sums of :class:`nnlearn.compute._backends.ArrayDataTerm` on CUDA, against NumPy's fast
   kernel on the CPU: equal to 1e-12 (float64) or 1e-5 (float32), relative;
2. timings, median of several calls: the data term on CUDA as the optimisers call it
   (weights there and sums back included), PyTorch written by hand on CUDA, and
   nnlearn's NumPy objective on the CPU;
3. a short L-BFGS training (``--iterations``) through the CUDA data term against the
   same through NumPy: the final weights and cost (float64: equal to 1e-6 after 50
   iterations; float32 is reported).

The exit status is 1 if a check failed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
from peers import torch_network  # noqa: E402

TOLERANCE = {"float64": 1e-12, "float32": 1e-5}
LAM = 1.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="torch device (default cuda; cpu for a dry run)")
    parser.add_argument("--m", type=int, default=60000, help="examples of the large problem")
    parser.add_argument("--hidden", type=int, default=800, help="hidden units of the large problem")
    parser.add_argument("--iterations", type=int, default=50, help="L-BFGS iterations of the training check")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON too")
    return parser.parse_args(argv)


def median_seconds(call, repeats, synchronize):
    call()
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def relative(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def problems(m, hidden):
    from nnlearn import load_digits20

    X, y = load_digits20()
    yield "digits 5000 x 400, 400-25-10", X, y, 25
    rng = np.random.default_rng(0)
    yield f"synthetic {m} x 784, 784-{hidden}-10", rng.random((m, 784)), rng.integers(0, 10, m), hidden


def check(torch, device, name, X, y, hidden, dtype, iterations):
    from nnlearn.compute._backends import ArrayDataTerm, device_dataset
    from nnlearn.compute._dataterm import full_objective
    from nnlearn.compute._threads import ShardedDataTerm
    from nnlearn.core import Network, cost_and_gradient, init_random, one_hot, pack
    from nnlearn.optim._minimize import minimize

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    network = Network((X.shape[1], hidden, 10))
    Y = one_hot(y, np.arange(10))[1].astype(dtype)
    Xd = X.astype(dtype)
    thetas = init_random(network, rng=0, dtype=dtype)
    on_device, _ = device_dataset(torch.from_numpy(Xd).to(device), y, dtype)

    def to(array):
        return torch.from_numpy(array).to(device)

    tol = TOLERANCE[dtype]
    figures = {"problem": name, "dtype": dtype, "device": str(on_device.array.device)}

    J, grads = cost_and_gradient(thetas, Xd, Y, LAM, network=network)
    J_dev, grads_dev = cost_and_gradient([to(t) for t in thetas], on_device.array, to(Y), LAM, network=network)
    figures["cost_and_gradient"] = {
        "J": abs(J_dev - J) / J,
        "grad": relative(pack([g.cpu().numpy() for g in grads_dev]), pack(grads)),
    }
    term = ArrayDataTerm(on_device, Y, network)
    numpy_term = ShardedDataTerm(Xd, Y, network)
    fun, numpy_fun = full_objective(term, LAM), full_objective(numpy_term, LAM)
    x0 = pack(thetas).astype(np.float64)
    (Jt, gt), (Jn, gn) = fun(x0), numpy_fun(x0)
    figures["data_term"] = {"J": abs(Jt - Jn) / Jn, "grad": relative(gt, gn)}
    figures["passed"] = all(v <= tol for part in ("cost_and_gradient", "data_term") for v in figures[part].values())

    repeats = 20 if X.shape[0] * hidden < 1e7 else 5
    by_hand, _ = torch_network(to(Xd), to(Y), thetas, torch, device)  # as part A times PyTorch
    figures["ms"] = {
        f"nnlearn data term on {device}": 1e3 * median_seconds(lambda: fun(x0), repeats, sync),
        f"PyTorch by hand on {device}": 1e3 * median_seconds(by_hand, repeats, sync),
        "nnlearn NumPy on the CPU": 1e3 * median_seconds(lambda: numpy_fun(x0), repeats, sync),
    }
    if X.shape[0] <= 10000:  # the training check on the digits
        start = time.perf_counter()
        trained = minimize(fun, x0, "lbfgs", iterations, 1e-12)
        device_s = time.perf_counter() - start
        start = time.perf_counter()
        reference = minimize(numpy_fun, x0, "lbfgs", iterations, 1e-12)
        numpy_s = time.perf_counter() - start
        drift = float(np.abs(trained.x - reference.x).max())
        figures["training"] = {
            "iterations": [trained.n_iter, reference.n_iter],
            "cost": [trained.fun, reference.fun],
            "max weight difference": drift,
            "seconds": {device: device_s, "numpy": numpy_s},
        }
        if dtype == "float64":
            figures["passed"] = figures["passed"] and drift <= 1e-6
    return figures


def show(figures):
    print(f"\n{figures['problem']}, {figures['dtype']} on {figures['device']}: "
          f"{'PASSED' if figures['passed'] else 'FAILED'}")  # fmt: skip
    for part in ("cost_and_gradient", "data_term"):
        values = ", ".join(f"{k} {v:.2e}" for k, v in figures[part].items())
        print(f"  {part} against NumPy (relative): {values} (tolerance {TOLERANCE[figures['dtype']]:g})")
    for name, ms in figures["ms"].items():
        print(f"  {name}: {ms:.2f} ms")
    if "training" in figures:
        t = figures["training"]
        print(
            f"  training, {t['iterations'][0]} L-BFGS iterations: cost {t['cost'][0]:.10f} here, "
            f"{t['cost'][1]:.10f} with NumPy; weights differ by {t['max weight difference']:.2e}; "
            + ", ".join(f"{k} {v:.2f} s" for k, v in t["seconds"].items())
        )


def main(argv=None):
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        print("no GPU: PyTorch is not installed (pip install torch with CUDA); nothing to check")
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no GPU: torch.cuda.is_available() is False here; nothing to check")
        return 0
    if args.device.startswith("cuda"):
        print(f"GPU: {torch.cuda.get_device_name(0)}, PyTorch {torch.__version__}, CUDA {torch.version.cuda}")
    results = []
    for name, X, y, hidden in problems(args.m, args.hidden):
        for dtype in ("float64", "float32"):
            figures = check(torch, args.device, name, X, y, hidden, dtype, args.iterations)
            show(figures)
            results.append(figures)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    failed = [f"{r['problem']} {r['dtype']}" for r in results if not r["passed"]]
    print(f"\n{'FAILED: ' + '; '.join(failed) if failed else 'all checks passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
