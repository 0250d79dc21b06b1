"""A model shown in Jupyter: an HTML summary with a small inline SVG of its cost curve.

:func:`model_html` is what :meth:`nnlearn.model.Model._repr_html_` shows (and, below
scikit-learn's parameter box, a fitted :class:`nnlearn.NeuralNetClassifier`): the network,
its settings, what its training recorded (iterations, final cost, why it stopped, the
held-out accuracy where early stopping kept one) and the cost per iteration. Plain HTML
and SVG, no script and nothing fetched, so that it shows in any notebook front end and in
a notebook saved to HTML.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["model_html", "cost_svg"]

#: Why a run stopped (history["stop_reason"]), in words.
_REASONS = {
    "converged": "converged (its tolerance met, or early stopping)",
    "max_iter": "max_iter reached",
    "interrupted": "interrupted",
    "not_finite": "the cost stopped being finite",
}


def cost_svg(costs: Sequence[float], width: int = 240, height: int = 80) -> str:
    """The cost per iteration as a small SVG line (log scale when every cost is positive)."""
    values = [float(c) for c in costs if math.isfinite(float(c))]
    if len(values) < 2:
        return ""
    log = min(values) > 0
    scaled = [math.log(v) for v in values] if log else values
    low, high = min(scaled), max(scaled)
    span = (high - low) or 1.0
    step = (width - 8) / (len(scaled) - 1)
    points = " ".join(
        f"{4 + i * step:.1f},{4 + (height - 8) * (1 - (v - low) / span):.1f}" for i, v in enumerate(scaled)
    )
    scale = "log scale" if log else "linear scale"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="cost per iteration, {scale}" style="background:#fafbfc;border:1px solid #c9d1db">'
        f'<polyline fill="none" stroke="#2479d6" stroke-width="1.5" points="{points}"/>'
        f"<title>cost per iteration ({scale}): {values[0]:.4g} to {values[-1]:.4g}</title></svg>"
    )


def _rows(rows: Sequence[tuple[str, Any]]) -> str:
    return "".join(
        f'<tr><th style="text-align:left;padding-right:1em">{html.escape(k)}</th>'
        f'<td style="text-align:left">{html.escape(str(v))}</td></tr>'
        for k, v in rows
        if v is not None
    )


def model_html(model, extra: Sequence[tuple[str, Any]] = ()) -> str:
    """An HTML summary of ``model`` (an :class:`nnlearn.model.Model`); ``extra`` rows are
    added under its training (an estimator's own figures)."""
    history: Mapping[str, Any] = model.history
    network = model.network
    sizes = "-".join(str(n) for n in model.layer_sizes)
    weights = sum(theta.size for theta in model.thetas)
    classes = ", ".join(str(c) for c in model.classes.tolist()[:12]) + (" ..." if len(model.classes) > 12 else "")
    rows: list[tuple[str, Any]] = [
        ("layers", f"{sizes} ({weights:,} weights)"),
        ("hidden / output", f"{network.activation} / {network.output}"),
        ("lambda", f"{model.lam:g}"),
        ("dtype", str(model.dtype)),
        ("classes", classes),
    ]
    costs = list(history.get("cost") or [])
    if "optimizer" in history:
        iterations = history.get("n_iter", len(costs))
        limit = history.get("max_iter")
        rows.append(("optimizer", history["optimizer"]))
        rows.append(("iterations", f"{iterations} of {limit}" if limit else iterations))
    if costs:
        rows.append(("final cost", f"{costs[-1]:.6g}"))
    reason = history.get("stop_reason")
    if reason:
        rows.append(("stopped", _REASONS.get(reason, reason)))
    scores = history.get("validation_scores") or []
    if scores:
        rows.append(("best held-out accuracy", f"{max(scores):.2%}"))
    for key in ("data", "seconds"):
        if key in history:
            value = history[key]
            rows.append((key, f"{value:.2f} s" if key == "seconds" else value))
    rows.extend(extra)
    curve = cost_svg(costs)
    picture = f'<div style="margin-top:0.4em">{curve}</div>' if curve else ""
    return (
        '<div class="nnlearn-model" style="font-family:sans-serif;font-size:0.9em">'
        f"<strong>nnlearn model</strong> {html.escape(sizes)} {html.escape(network.activation)}/"
        f"{html.escape(network.output)}"
        f'<table style="margin-top:0.3em;border-collapse:collapse">{_rows(rows)}</table>{picture}</div>'
    )
