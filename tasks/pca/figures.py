"""Figures of study part 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.patches import Ellipse

from tasks.figures import DIGIT_COLOURS, new_figure
from tasks.pca.compute import DIGITS, ELLIPSE_LEVEL, PcaMap, confidence_ellipse


def _scatter(axes, pca_map: PcaMap, alpha: float) -> None:
    for digit in DIGITS:
        points = pca_map.projection[pca_map.sample_labels == digit]
        axes.scatter(points[:, 0], points[:, 1], s=4, alpha=alpha, color=DIGIT_COLOURS(digit), label=str(digit))
    ratio = pca_map.explained_variance_ratio
    axes.set_xlabel(f"PC1 ({ratio[0]:.1%} of variance)")
    axes.set_ylabel(f"PC2 ({ratio[1]:.1%} of variance)")


def scatter_figure(pca_map: PcaMap):
    figure, axes = new_figure(8, 6.5)
    _scatter(axes, pca_map, alpha=0.5)
    axes.set_title(f"MNIST in the first two principal components ({len(pca_map.sample_labels):,} images)")
    axes.legend(title="digit", markerscale=3, loc="best", fontsize="small")
    return figure


def ellipse_figure(pca_map: PcaMap):
    figure, axes = new_figure(8, 6.5)
    _scatter(axes, pca_map, alpha=0.15)
    for digit in DIGITS:
        points = pca_map.projection[pca_map.sample_labels == digit]
        centre = points.mean(axis=0)
        width, height, angle = confidence_ellipse(points)
        colour = DIGIT_COLOURS(digit)
        axes.add_patch(Ellipse(centre, width, height, angle=angle, fill=False, lw=2, color=colour))
        axes.plot(*centre, marker="X", markersize=11, color=colour, markeredgecolor="black")
        axes.annotate(str(digit), centre, xytext=(6, 6), textcoords="offset points", weight="bold")
    axes.set_title(f"Digit centroids (X) and {ELLIPSE_LEVEL:.0%} confidence ellipses (chi-square, 2 dof)")
    axes.legend(title="digit", markerscale=3, loc="best", fontsize="small")
    return figure


def pair_histogram_figure(accuracies: pd.DataFrame, dimensions: int = 2):
    figure, axes = new_figure(8, 5)
    values = accuracies["accuracy"].to_numpy()
    axes.hist(
        values,
        bins=np.linspace(min(0.5, values.min()), 1.0, 26),
        color="steelblue",
        edgecolor="white",
        label=f"{len(values)} digit pairs",
    )
    mean = values.mean()
    axes.axvline(mean, color="crimson", lw=2, ls="--", label=f"mean {mean:.3f}")
    ordered = accuracies.sort_values("accuracy")
    hardest = ", ".join(f"({r.digit_a},{r.digit_b}) {r.accuracy:.2f}" for r in ordered.head(3).itertuples())
    easiest = ", ".join(f"({r.digit_a},{r.digit_b}) {r.accuracy:.3f}" for r in ordered.tail(3).itertuples())
    axes.set_title(
        f"LinearSVC accuracy per digit pair in {dimensions}-D PCA space\nhardest: {hardest}; easiest: {easiest}",
        fontsize="medium",
    )
    axes.set_xlabel("held-out accuracy")
    axes.set_ylabel("number of digit pairs")
    axes.legend()
    return figure


def dimension_comparison_figure(by_dimension: dict[int, pd.DataFrame]):
    figure, axes = new_figure(8, 5)
    dimensions = sorted(by_dimension)
    data = [by_dimension[d]["accuracy"].to_numpy() for d in dimensions]
    axes.boxplot(data, tick_labels=[f"{d}-D" for d in dimensions])
    means = [values.mean() for values in data]
    axes.plot(range(1, len(dimensions) + 1), means, "o-", color="crimson", label="mean over 45 pairs")
    axes.set_title("Linear separability of digit pairs grows with PCA dimension")
    axes.set_xlabel("PCA dimensions")
    axes.set_ylabel("held-out accuracy (LinearSVC)")
    axes.legend()
    return figure
