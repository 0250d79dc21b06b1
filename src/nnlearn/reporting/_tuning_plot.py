"""The figure of a search for settings: its validation curve over lambda, one line per network."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ._curves import figure
from ._tuning import Candidate, SearchResult, architecture_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_search"]


def plot_search(result: SearchResult) -> Figure:
    """The validation curve of a search: mean CV accuracy against lambda, one line per
    network (hidden layers, activation, output), with a band of one standard deviation
    over the folds and the best candidate ringed."""
    fig = figure(9.0, 4.6)
    ax = fig.add_subplot()
    lines: dict[str, list[Candidate]] = {}
    for candidate in result.candidates:
        lines.setdefault(architecture_of(candidate.params), []).append(candidate)
    for name, members in lines.items():
        members.sort(key=lambda c: c.params["lam"])
        lam = np.array([c.params["lam"] for c in members])
        mean = np.array([c.mean for c in members])
        std = np.array([c.std for c in members])
        (line,) = ax.plot(lam, 100 * mean, marker="o", label=name)
        # Bands of many lines hide each other: fainter the more there are.
        alpha = 0.15 if len(lines) <= 3 else 0.05
        ax.fill_between(lam, 100 * (mean - std), 100 * (mean + std), color=line.get_color(), alpha=alpha)
    best = result.best
    ax.plot([best.params["lam"]], [100 * best.mean], "o", ms=14, mfc="none", mec="black", label="chosen")
    _lambda_axis(ax, sorted({c.params["lam"] for c in result.candidates}))
    ax.set(
        xlabel="lambda",
        ylabel=f"accuracy (%), mean of {result.folds} folds",
        title=f"Cross-validated accuracy: chosen {best.describe()}, {100 * best.mean:.2f}%",
    )
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return fig


def _lambda_axis(ax, lambdas):
    """A log axis for lambda; symmetric-log when 0 is among the values, linear near 0."""
    positive = [lam for lam in lambdas if lam > 0]
    if not positive:
        return
    if len(positive) < len(lambdas):
        ax.set_xscale("symlog", linthresh=min(positive))
    else:
        ax.set_xscale("log")
    ax.set_xticks(lambdas, [f"{lam:g}" for lam in lambdas])
    ax.minorticks_off()
    if math.isclose(min(lambdas), max(lambdas)):
        ax.set_xlim(min(lambdas) / 2 if lambdas[0] > 0 else -1, max(lambdas) * 2 or 1)
