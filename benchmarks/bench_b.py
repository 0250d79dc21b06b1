"""B. Time to reach the cost at which the notebook's training ends.

The notebook trains the 400-25-10 network with SciPy's CG for 400 iterations at
lambda 1 from weights uniform in [-0.12, 0.12]; the cost it ends at is the target.
Every peer starts from the same weights (scikit-learn cannot be given them) and is
timed, in its own process, from the start of training until its cost first reaches
the target:

* nnlearn ``train`` with each of its optimisers, stopped by a callback;
* PyTorch's L-BFGS (strong Wolfe line search), stopped in the closure as soon as an
  evaluated cost reaches the target (this favours it slightly: nnlearn checks once per
  iteration, PyTorch at every evaluation);
* scikit-learn's ``MLPClassifier(solver="lbfgs")`` with 25 logistic units and
  ``alpha = lambda`` (its penalty is alpha/(2 n) ||W||^2, the course's). Its output
  layer is a softmax under log loss, so its cost is another function: it is timed to
  reach the training accuracy of the notebook's model instead, refitting with
  max_iter from a fixed schedule (each fit deterministic) and taking the first that
  reaches it.
"""

from __future__ import annotations

import time
import warnings

import common
import numpy as np
import peers

LAM = 1.0
LAYERS = (400, 25, 10)
NNLEARN_OPTIMIZERS = ("lbfgs", "fmincg", "cg")
SKLEARN_SCHEDULE = (25, 50, 100, 150, 200, 300, 400, 600)


def _accuracy(thetas, X, y):
    from nnlearn.core import forward

    return float(np.mean(forward(thetas, X)[-1].argmax(axis=1) == y))


def notebook_cg():
    """The notebook's training: SciPy CG, 400 iterations, on the notebook's function."""
    import scipy.optimize

    from nnlearn.core import pack, unpack

    X, y, Y = common.digits("float64")
    function = peers.notebook_function()
    x0 = pack(peers.initial_thetas(LAYERS, "float64"))
    start = time.perf_counter()
    result = scipy.optimize.minimize(function, x0, args=(X, Y, LAM), method="CG", jac=True, options={"maxiter": 400})
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "cost": float(result.fun),
        "iterations": int(result.nit),
        "evaluations": int(result.nfev),
        "accuracy": _accuracy(unpack(result.x, LAYERS), X, y),
    }


def nnlearn_train(optimizer, dtype, target, max_iter=2000):
    """nnlearn's ``train`` from the notebook's weights, stopped when J <= target."""
    import nnlearn

    X, y, _ = common.digits(dtype)
    reached = {}

    def stop(iteration, J, x):
        if J <= target:
            reached.update(iteration=iteration, cost=J)
            raise StopIteration

    start = time.perf_counter()
    model = nnlearn.train(
        X,
        y,
        hidden_layer_sizes=LAYERS[1:-1],
        lam=LAM,
        optimizer=optimizer,
        max_iter=max_iter,
        dtype=dtype,
        initial_thetas=peers.initial_thetas(LAYERS, "float64"),
        callback=stop,
    )
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "reached": bool(reached),
        "iterations": reached.get("iteration"),
        "cost": reached.get("cost"),
        "evaluations": model.history.get("n_evals"),
        "accuracy": float(model.score(X, y)),
    }


class _Reached(Exception):
    pass


def torch_lbfgs(dtype, target, max_iter=3000):
    """PyTorch's L-BFGS with a strong Wolfe line search on the same network and loss."""
    import torch

    torch.set_num_threads(common.cores())
    X, y, Y = common.digits(dtype)
    call, params = peers.torch_network(
        torch.from_numpy(X), torch.from_numpy(Y), peers.initial_thetas(LAYERS, dtype), torch
    )
    # history_size 10 is SciPy's L-BFGS-B default; PyTorch's 100 costs more per iteration.
    optimizer = torch.optim.LBFGS(
        params,
        lr=1,
        max_iter=max_iter,
        max_eval=max_iter * 2,
        tolerance_grad=0,
        tolerance_change=0,
        history_size=10,
        line_search_fn="strong_wolfe",
    )
    evaluations = [0]

    def closure():
        evaluations[0] += 1
        J = call()[0]
        if J <= target:
            raise _Reached
        return J

    start = time.perf_counter()
    try:
        optimizer.step(closure)
        reached = False
    except _Reached:
        reached = True
    seconds = time.perf_counter() - start
    thetas = [p.detach().numpy() for p in params]
    return {"seconds": seconds, "reached": reached, "evaluations": evaluations[0], "accuracy": _accuracy(thetas, X, y)}


def sklearn_lbfgs(target_accuracy):
    """MLPClassifier(solver="lbfgs"), refitted along a max_iter schedule until its
    training accuracy reaches ``target_accuracy``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X, y, _ = common.digits("float64")
    fits = []
    for max_iter in SKLEARN_SCHEDULE:
        model = MLPClassifier(
            hidden_layer_sizes=LAYERS[1:-1],
            activation="logistic",
            solver="lbfgs",
            alpha=LAM,
            max_iter=max_iter,
            tol=1e-12,
            random_state=0,
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        fits.append(
            {
                "max_iter": max_iter,
                "seconds": time.perf_counter() - start,
                "accuracy": float(model.score(X, y)),
                "loss": float(model.loss_),
            }
        )
        if fits[-1]["accuracy"] >= target_accuracy:
            break
    reached = fits[-1]["accuracy"] >= target_accuracy
    return {
        "seconds": fits[-1]["seconds"],
        "reached": reached,
        "fits": fits,
        "accuracy": fits[-1]["accuracy"],
        "iterations": fits[-1]["max_iter"],
    }


TASKS = {
    "notebook_cg": notebook_cg,
    "nnlearn_train": nnlearn_train,
    "torch_lbfgs": torch_lbfgs,
    "sklearn_lbfgs": sklearn_lbfgs,
}


def _task(name, **args):
    return common.run_task({"module": "bench_b", "name": name, "args": args})


def one_round(target, target_accuracy, optimizers):
    """Every peer once, each in a fresh process, one after another."""
    results = {}
    for dtype in ("float64", "float32"):
        for optimizer in optimizers:
            results[f"nnlearn {optimizer}, {dtype}"] = _task(
                "nnlearn_train", optimizer=optimizer, dtype=dtype, target=target
            )
        results[f"torch L-BFGS, {dtype}"] = _task("torch_lbfgs", dtype=dtype, target=target)
    results["sklearn MLPClassifier lbfgs, float64"] = _task("sklearn_lbfgs", target_accuracy=target_accuracy)
    return results


def run(quick=False):
    rounds = 1 if quick else 2
    optimizers = ("lbfgs",) if quick else NNLEARN_OPTIMIZERS[:2]
    notebook_runs, peer_runs = [], []
    for _ in range(rounds):
        notebook_runs.append(_task("notebook_cg"))
        target, accuracy = notebook_runs[0]["cost"], notebook_runs[0]["accuracy"]
        peer_runs.append(one_round(target, accuracy, optimizers))
    return summarise(notebook_runs, peer_runs)


def summarise(notebook_runs, peer_runs):
    notebook_s = [r["seconds"] for r in notebook_runs]
    rows = {
        "notebook CG, 400 iterations, float64": {
            "seconds": common.median(notebook_s),
            "reached": True,
            "ratio": 1.0,
            "detail": f"{notebook_runs[0]['evaluations']} evaluations, accuracy {notebook_runs[0]['accuracy']:.4f}",
        }
    }
    for name in peer_runs[0]:
        runs = [r[name] for r in peer_runs]
        ratio = common.median([r["seconds"] / n for r, n in zip(runs, notebook_s)])
        rows[name] = {
            "seconds": common.median([r["seconds"] for r in runs]),
            "ratio": ratio,
            "reached": all(r["reached"] for r in runs),
            "detail": _detail(runs[0]),
        }
    return {
        "target_cost": notebook_runs[0]["cost"],
        "target_accuracy": notebook_runs[0]["accuracy"],
        "rounds": len(notebook_runs),
        "rows": rows,
    }


def _detail(run):
    parts = []
    if run.get("iterations") is not None:
        parts.append(f"{run['iterations']} iterations")
    if run.get("evaluations") is not None:
        parts.append(f"{run['evaluations']} evaluations")
    parts.append(f"accuracy {run['accuracy']:.4f}")
    return ", ".join(parts)


def report(result):
    lines = [
        "## B. Time to reach the notebook's final cost",
        "",
        f"Target: J = {result['target_cost']:.6f} (notebook's CG after 400 iterations, lambda 1); "
        f"scikit-learn: training accuracy {result['target_accuracy']:.4f}. "
        f"Medians of {result['rounds']} round(s); ratios are per round.",
        "",
        "| run | median s | time / notebook's | reached | detail |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for name, row in result["rows"].items():
        lines.append(
            f"| {name} | {row['seconds']:.2f} | {row['ratio']:.3f} | "
            f"{'yes' if row['reached'] else 'no'} | {row['detail']} |"
        )
    lines += [""] + targets(result) + [""]
    return lines


def targets(result):
    rows = result["rows"]
    nn = {k: v for k, v in rows.items() if k.startswith("nnlearn") and v["reached"]}
    if not nn:
        return ["No nnlearn run reached the target."]
    best = min(nn, key=lambda k: nn[k]["ratio"])
    best32 = min((k for k in nn if k.endswith("float32")), key=lambda k: nn[k]["seconds"], default=None)
    torch32 = rows.get("torch L-BFGS, float32")
    lines = [
        f"- Best nnlearn run: {best}, {nn[best]['ratio']:.3f}x the notebook's time "
        f"(target <= 0.1: {'met' if nn[best]['ratio'] <= 0.1 else 'not met'})."
    ]
    if best32 and torch32:
        ratio = nn[best32]["seconds"] / torch32["seconds"]
        lines.append(
            f"- {best32} against PyTorch's L-BFGS in float32: {ratio:.2f}x its time "
            f"(target < 1: {'met' if ratio < 1 else 'not met'})."
        )
    return lines
