"""Replicates on a part's parent run: the per-seed runs, each model's summary over its seeds, the
differences between models, and the figure of means with their intervals."""

from __future__ import annotations

import pandas as pd

from studyflow.tracking import RunRecorder, Tag
from tasks.replicates import figures as replicate_figures
from tasks.replicates.compute import CONFIDENCE, MODEL, SEED, differences_table, summary_table

SUMMARY_CAPTION = (
    "One row per model over its seeds (`seeds`: how many finished; a seed whose training diverged is "
    "not counted). For each metric: mean, sample standard deviation and the {level:.0%} Student's t interval "
    "of the mean (mean +- t(0.975, n-1) * std / sqrt(n)); with one seed the spread cannot be estimated and "
    "those cells are empty. Accuracies as fractions correct; times in seconds on this machine."
)
DIFFERENCES_CAPTION = (
    "Every pair of models: mean of model_a minus mean of model_b, with the {level:.0%} interval of that "
    "difference. Paired t-test when both have the same seeds (the same seed gives both models the same "
    "data in the same order, so its effect on both cancels out); Welch's t-test otherwise. `within noise`: "
    "the interval contains 0. Intervals are per comparison, not corrected for the number of comparisons."
)


def log_replicates(
    parent: RunRecorder, part: str, runs: pd.DataFrame, metrics: dict[str, str], compared: list[str]
) -> pd.DataFrame:
    """Log the replicate tables and figure of `part` on its parent run; return the summary.

    `runs`: one row per finished (model, seed) with its run id and metrics; `metrics`: the metrics
    summarised, with their labels (the figure shows the accuracies); `compared`: the metrics whose
    differences between models are tested."""
    summary = summary_table(runs, list(metrics))
    parent.log_table(
        runs.round(6), f"tables/{part}_runs", "One row per model and seed: its MLflow run and final metrics."
    )
    parent.log_table(summary.round(6), f"tables/{part}_summary", SUMMARY_CAPTION.format(level=CONFIDENCE))
    differences = pd.concat([differences_table(runs, metric) for metric in compared], ignore_index=True)
    if not differences.empty:
        parent.log_table(
            differences.round(6), f"tables/{part}_differences", DIFFERENCES_CAPTION.format(level=CONFIDENCE)
        )
    accuracies = {metric: label for metric, label in metrics.items() if metric.endswith("accuracy")}
    parent.log_figure(
        replicate_figures.means_figure(summary, accuracies, f"{part.upper()}: accuracy over seeds"),
        f"figures/{part}_replicates.png",
    )
    parent.set_tags({Tag.REPLICATE_SEEDS: ",".join(str(seed) for seed in sorted(runs[SEED].unique()))})
    print("\n".join(brief(summary, list(accuracies))))
    return summary


def brief(summary: pd.DataFrame, metrics: list[str]) -> list[str]:
    """One line per model: each metric as mean ± half-width of its interval (n seeds)."""
    lines = []
    for row in summary.to_dict(orient="records"):
        figures = []
        for metric in metrics:
            mean, low, high = (row[f"{metric}_{end}"] for end in ("mean", "ci95_low", "ci95_high"))
            if pd.isna(mean):
                continue
            figures.append(f"{metric} {mean:.4f}" + ("" if pd.isna(low) else f" ± {(high - low) / 2:.4f}"))
        lines.append(f"{row[MODEL]} ({row['seeds']} seed{'s' if row['seeds'] != 1 else ''}): " + ", ".join(figures))
    return lines
