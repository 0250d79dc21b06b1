"""Test accuracy with and without early stopping, for each optimiser, on three datasets.

The table in docs/training.md ("Early stopping") comes from this script: for each optimiser and
dataset, the mean test accuracy of three seeds of ``NeuralNetClassifier`` with its defaults,
with ``early_stopping=True`` and without, a stratified quarter of the examples held out as the
test set (the same quarter for every run). Early stopping holds out a tenth of the rest.

    python benchmarks/early_stopping.py            # the table, as markdown
    python benchmarks/early_stopping.py --seeds 1  # quicker
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.model_selection import train_test_split

from nnlearn import NeuralNetClassifier
from nnlearn.datasets import load_digits8, load_digits20
from nnlearn.optim import OPTIMIZERS


def datasets():
    X8, y8 = load_digits8()
    X20, y20 = load_digits20()
    return {"digits8": (X8, y8), "digits8 / 16": (X8 / 16, y8), "digits20": (X20, y20)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cell (default 3)")
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=OPTIMIZERS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter: the runs without early stopping
    print("| dataset | optimizer | without | with early stopping | difference | iterations with |")
    print("|---|---|---|---|---|---|")
    for name, (X, y) in datasets().items():
        X_fit, X_test, y_fit, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
        for optimizer in args.optimizers:
            scores, iterations = {False: [], True: []}, []
            start = time.perf_counter()
            for seed in range(args.seeds):
                for early in (False, True):
                    model = NeuralNetClassifier(optimizer=optimizer, early_stopping=early, random_state=seed)
                    model.fit(X_fit, y_fit)
                    scores[early].append(model.score(X_test, y_test))
                    if early:
                        iterations.append(model.n_iter_)
            without, with_ = 100 * np.mean(scores[False]), 100 * np.mean(scores[True])
            print(
                f"| {name} | {optimizer} | {without:.1f}% | {with_:.1f}% | {with_ - without:+.1f} | "
                f"{min(iterations)}-{max(iterations)} |",
                flush=True,
            )
            print(f"<!-- {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
