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
    network (hidden layers, activation, output), with one standard deviation over the folds
    (a band each for up to 3 networks, error bars for more) and the best candidate ringed."""
    fig = figure(9.0, 4.6)
    ax = fig.add_subplot()
    lines: dict[str, list[Candidate]] = {}
    for candidate in result.candidates:
        lines.setdefault(architecture_of(candidate.params), []).append(candidate)
    # A few lines get a band of one standard deviation each. Many bands hide each other (8
    # networks made one grey cloud), so many lines get error bars instead, each line nudged
    # sideways by a fraction of a decade so that their bars stand apart.
    many = len(lines) > 3
    shifts = {name: 10 ** (0.03 * (k - (len(lines) - 1) / 2)) if many else 1.0 for k, name in enumerate(lines)}
    for name, members in lines.items():
        members.sort(key=lambda c: c.params["lam"])
        lam = np.array([c.params["lam"] for c in members]) * shifts[name]
        mean = 100 * np.array([c.mean for c in members])
        std = 100 * np.array([c.std for c in members])
        (line,) = ax.plot(lam, mean, marker="o", label=name)
        if many:
            ax.errorbar(lam, mean, yerr=std, fmt="none", ecolor=line.get_color(), elinewidth=1, capsize=2, alpha=0.7)
        else:
            ax.fill_between(lam, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    best = result.best
    best_lam = best.params["lam"] * shifts[architecture_of(best.params)]
    ax.plot([best_lam], [100 * best.mean], "o", ms=14, mfc="none", mec="black", label="chosen")
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
