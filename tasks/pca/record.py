"""Logging of study part 1 into its MLflow run: metrics, tables and figures."""

from __future__ import annotations

import pandas as pd

from studyflow.tracking import RunRecorder, Tag
from tasks.pca import figures as pca_figures
from tasks.pca.compute import PcaMap


def pair_table(by_dimension: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """One row per pair, one accuracy column per PCA dimension."""
    table = None
    for dimensions in sorted(by_dimension):
        column = by_dimension[dimensions].rename(columns={"accuracy": f"accuracy_{dimensions}d"})
        table = column if table is None else table.merge(column, on=["digit_a", "digit_b"])
    return table


def summary_metrics(pca_map: PcaMap, by_dimension: dict[int, pd.DataFrame]) -> dict[str, float]:
    metrics = {
        "explained_variance_ratio_pc1": pca_map.explained_variance_ratio[0],
        "explained_variance_ratio_pc2": pca_map.explained_variance_ratio[1],
        "mean_pair_accuracy": float(by_dimension[2]["accuracy"].mean()),
    }
    for dimensions, accuracies in by_dimension.items():
        if dimensions != 2:
            metrics[f"mean_pair_accuracy_{dimensions}d"] = float(accuracies["accuracy"].mean())
    for row in by_dimension[2].itertuples():
        metrics[f"pair_accuracy_{row.digit_a}_{row.digit_b}"] = float(row.accuracy)
    return metrics


def log_pca_results(recorder: RunRecorder, pca_map: PcaMap, by_dimension: dict[int, pd.DataFrame]) -> dict[str, float]:
    metrics = summary_metrics(pca_map, by_dimension)
    recorder.log_metrics(metrics)
    digits = pca_map.digit_table.round(4)
    low, high = pca_map.pixel_range
    caption = (
        f"Per digit, in PCA units (pixels scaled to [{low:g}, {high:g}]): centroid and variance along "
        "each principal component, number of sampled images."
    )
    recorder.log_table(digits, "tables/digit_statistics", caption)
    print(f"[studyflow] pca: {caption}\n{digits.to_string(index=False)}")
    pairs = pair_table(by_dimension).round(4)
    recorder.log_table(
        pairs,
        "tables/pair_accuracies",
        "LinearSVC held-out accuracy (fraction correct) per digit pair and PCA dimension.",
    )
    ordered = by_dimension[2].sort_values("accuracy")
    recorder.set_tags(
        {
            Tag.HARDEST_PAIRS: " ".join(f"({r.digit_a},{r.digit_b})" for r in ordered.head(3).itertuples()),
            Tag.EASIEST_PAIRS: " ".join(f"({r.digit_a},{r.digit_b})" for r in ordered.tail(3).itertuples()),
        }
    )
    recorder.log_figure(pca_figures.scatter_figure(pca_map), "figures/pca_scatter.png")
    recorder.log_figure(pca_figures.ellipse_figure(pca_map), "figures/pca_centroids_ellipses.png")
    recorder.log_figure(pca_figures.pair_histogram_figure(by_dimension[2]), "figures/pair_accuracy_histogram.png")
    if len(by_dimension) > 1:
        recorder.log_figure(
            pca_figures.dimension_comparison_figure(by_dimension), "figures/pair_accuracy_by_dimension.png"
        )
    return metrics
