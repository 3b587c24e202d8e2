"""Figures of replicates: each model's mean with its 95 % interval, and curves drawn as bands."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.figures import new_figure
from tasks.replicates.compute import MODEL, curve_band


def means_figure(summary: pd.DataFrame, metrics: dict[str, str], title: str):
    """One marker per model and metric at its mean over seeds, with the 95 % interval as error bar
    (no bar for a model with one seed). `metrics`: metric -> legend label."""
    figure, axes = new_figure(max(6.0, 1.1 * len(summary) + 3), 5)
    positions = np.arange(len(summary))
    offsets = np.linspace(-0.15, 0.15, len(metrics)) if len(metrics) > 1 else [0.0]
    for offset, (index, (metric, label)) in zip(offsets, enumerate(metrics.items()), strict=False):
        means = summary[f"{metric}_mean"].to_numpy(dtype=float)
        lows, highs = (summary[f"{metric}_ci95_{end}"].to_numpy(dtype=float) for end in ("low", "high"))
        errors = np.vstack([np.nan_to_num(means - lows), np.nan_to_num(highs - means)])
        axes.errorbar(positions + offset, means, yerr=errors, fmt="o", capsize=4, color=f"C{index}", label=label)
    axes.set_xticks(
        positions,
        [
            f"{model}\n({seeds} seed{'s' if seeds != 1 else ''})"
            for model, seeds in zip(summary[MODEL], summary["seeds"], strict=False)
        ],
        fontsize="small",
    )
    axes.set_title(f"{title}\n(mean over seeds; bars: 95 % Student's t interval)")
    axes.set_ylabel("accuracy (fraction correct)")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize="small")
    return figure


def plot_band(axes, x: np.ndarray, curves: list[list[float]], colour, label: str, style: str = "-o") -> None:
    """The mean curve over seeds, with markers (so a one-epoch curve still shows), and its 95 %
    interval shaded when there is more than one seed."""
    means, lows, highs = curve_band(curves)
    x = np.asarray(x)[: len(means)]
    axes.plot(x, means, style, ms=4, color=colour, label=label + (f" ({len(curves)} seeds)" if len(curves) > 1 else ""))
    if len(curves) > 1:
        axes.fill_between(x, lows, highs, color=colour, alpha=0.2, linewidth=0)
