"""Part 2 in MLflow: what a pair's child run records, and the summary on the parent run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from studyflow.config.parts import PerceptronSettings
from studyflow.tracking import RunRecorder
from tasks.perceptron import figures as perceptron_figures
from tasks.perceptron.compute import PairData, PerceptronResult
from tasks.replicates.compute import MODEL, SEED
from tasks.replicates.record import log_replicates

REPLICATE_METRICS = {"test_accuracy": "test", "train_accuracy": "train", "epochs_run": "epochs run"}


# A curve longer than this is logged at evenly spaced iterations (always with the last one): a
# thousand points draw the curve, and a 100,000-iteration run would be slow to log and to plot.
MAX_CURVE_POINTS = 1000


def curve_points(values: list[float], limit: int = MAX_CURVE_POINTS) -> tuple[list[int], list[float]]:
    """Steps (1-based iterations) and values of the curve, at most `limit` of them, the last included."""
    if len(values) <= limit:
        return list(range(1, len(values) + 1)), list(values)
    steps = np.unique(np.linspace(1, len(values), limit).round().astype(int)).tolist()
    return steps, [values[step - 1] for step in steps]


def log_pair(run: RunRecorder, data: PairData, result: PerceptronResult, settings: PerceptronSettings) -> None:
    """A pair's child run: its settings, metrics, the error curve and the weights."""
    run.log_params(
        {
            "positive_digit": data.pair[0],
            "negative_digit": data.pair[1],
            **settings.model_dump(),
            "train_samples": len(data.train_targets),
            "test_samples": len(data.test_targets),
        }
    )
    steps, errors = curve_points(result.train_errors)
    run.log_metric_history("train_error", errors, steps=steps)
    run.log_metrics(
        {
            "train_accuracy": result.train_accuracy,
            "test_accuracy": result.test_accuracy,
            "epochs_run": result.epochs_run,
            "train_test_gap": result.train_accuracy - result.test_accuracy,
        }
    )
    run.log_figure(perceptron_figures.weight_heatmap_figure(result), "figures/weights.png")


def pairs_table(results: list[PerceptronResult]) -> pd.DataFrame:
    """One row per trained (pair, seed)."""
    return pd.DataFrame(
        [
            {
                MODEL: f"{r.pair[0]} vs {r.pair[1]}",
                SEED: r.seed,
                "train_accuracy": r.train_accuracy,
                "test_accuracy": r.test_accuracy,
                "train_test_gap": r.train_accuracy - r.test_accuracy,
                "epochs_run": r.epochs_run,
                "run_id": r.run_id,
            }
            for r in results
        ]
    )


def log_perceptron_summary(parent: RunRecorder, results: list[PerceptronResult]) -> pd.DataFrame:
    """The pairs' table (per seed), their summary over seeds, and the figures (means over seeds;
    the error curves of the first seed, each seed's own being on its run)."""
    pairs = pairs_table(results)
    parent.log_table(
        pairs.round(4),
        "tables/perceptron_pairs",
        "One row per pair and seed. Accuracy as a fraction of correct predictions; gap = train - test; "
        "epochs run: iterations (batch updates, one pass over the pair's training images each).",
    )
    summary = log_replicates(parent, "perceptron", pairs, REPLICATE_METRICS, compared=["test_accuracy"])
    means = pairs.groupby(MODEL, sort=False)[["train_accuracy", "test_accuracy", "train_test_gap"]].mean()
    parent.log_metrics(
        {
            "mean_test_accuracy": float(means["test_accuracy"].mean()),
            "mean_train_test_gap": float(means["train_test_gap"].mean()),
            "max_train_test_gap": float(means["train_test_gap"].max()),
        }
    )
    parent.log_figure(
        perceptron_figures.train_test_gap_figure(means.reset_index().rename(columns={MODEL: "pair"})),
        "figures/train_test_gap.png",
    )
    first_seed = results[0].seed
    parent.log_figure(
        perceptron_figures.training_error_figure([r for r in results if r.seed == first_seed]),
        "figures/training_error.png",
    )
    return summary
