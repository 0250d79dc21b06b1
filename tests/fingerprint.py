"""The numbers a refactoring must keep bit for bit: ``python -m tests.fingerprint [--check FILE]``.

Prints (or checks against a JSON file written before) the course's costs at lambda 0 and 1
with the pretrained weights, the gradient check, and a SHA-256 of the weights after a short
run of each optimiser in float64 and float32 on the embedded digits. The hashes depend on
the BLAS kernel and the thread count, so a file is only compared on the machine that wrote
it (its ``machine`` entry says which); this is a tool for a change's author, not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys

import numpy as np

os.environ.setdefault("NNLEARN_PLAN", "off")

OPTIMIZERS = ("cg", "lbfgs", "fmincg", "sgd", "adam")


def _digest(model) -> str:
    h = hashlib.sha256()
    for theta in model.thetas:
        h.update(np.ascontiguousarray(theta).tobytes())
    return h.hexdigest()


def fingerprint() -> dict:
    import nnlearn
    from nnlearn import check_gradients, load_digits20, load_pretrained, one_hot, train

    X, y = load_digits20()
    pretrained = load_pretrained()
    _, Y = one_hot(y, pretrained.classes)
    costs = {str(lam): float(nnlearn.cost(pretrained.thetas, X, Y, lam)).hex() for lam in (0.0, 1.0)}
    weights = {}
    for dtype in ("float64", "float32"):
        for optimizer in OPTIMIZERS:
            max_iter = 3 if optimizer in ("sgd", "adam") else 15
            model = train(X, y, optimizer=optimizer, max_iter=max_iter, dtype=dtype, seed=0)
            weights[f"{optimizer}/{dtype}"] = _digest(model)
    extras = {
        "relu-softmax-2layers": dict(hidden_layer_sizes=(30, 20), activation="relu", output="softmax"),
        "tanh-early-stopping": dict(activation="tanh", early_stopping=True, n_iter_no_change=3),
        "augment": dict(augment=1, max_iter=5),
        "adam-augment-early": dict(optimizer="adam", augment=1, early_stopping=True, max_iter=3),
        "preset-best": dict(preset="best", max_iter=1),
    }
    for name, settings in extras.items():
        settings = {"max_iter": 15, **settings}
        weights[name] = _digest(train(X, y, **settings))
    return {
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus".strip(),
        "costs": costs,
        "gradcheck": float(check_gradients(lam=0.0)).hex(),
        "gradcheck_lambda3": float(check_gradients(lam=3.0)).hex(),
        "weights": weights,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", metavar="FILE", help="compare with a fingerprint written before")
    args = parser.parse_args(argv)
    now = fingerprint()
    if args.check is None:
        print(json.dumps(now, indent=2))
        return 0
    with open(args.check) as file:
        before = json.load(file)
    differ = [key for key in ("costs", "gradcheck", "gradcheck_lambda3") if before[key] != now[key]]
    differ += [name for name, digest in before["weights"].items() if now["weights"].get(name) != digest]
    print("fingerprint matches bit for bit" if not differ else f"fingerprint differs: {', '.join(differ)}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
