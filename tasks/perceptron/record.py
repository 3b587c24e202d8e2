"""Prefect tasks of study part 2 with their MLflow logging: a child run per pair, a summary."""

from __future__ import annotations

import dataclasses

import pandas as pd

from studyflow.tracking import RunRecorder
from tasks.perceptron import figures as perceptron_figures
from tasks.perceptron.compute import PairData, PerceptronResult, train_perceptron
from tasks.prefect_task import step_task, studyflow_task


def pair_run_name(pair: tuple[int, int]) -> str:
    return f"perceptron-{pair[0]}-vs-{pair[1]}"


def train_pair(parent: RunRecorder, data: PairData, learning_rate: float,
               max_epochs: int, tolerance: float, patience: int, seed: int) -> PerceptronResult:
    """One pair in its own child run: train, then log metrics, the error curve and the weights.

    Takes the pair's images, not the whole dataset: the step's cache key hashes only what it uses."""
    pair = data.pair
    with parent.child(pair_run_name(pair), tags={"studyflow.pair": f"{pair[0]}-{pair[1]}"}) as run:
        run.log_params({"positive_digit": pair[0], "negative_digit": pair[1], "learning_rate": learning_rate,
                        "max_epochs": max_epochs, "tolerance": tolerance, "patience": patience,
                        "train_samples": len(data.train_targets), "test_samples": len(data.test_targets)})
        result = train_perceptron(data, learning_rate, max_epochs, tolerance, patience, seed)
        run.log_metric_history("train_error", result.train_errors, first_step=1)
        run.log_metrics({"train_accuracy": result.train_accuracy, "test_accuracy": result.test_accuracy,
                         "epochs_run": result.epochs_run,
                         "train_test_gap": result.train_accuracy - result.test_accuracy})
        run.log_figure(perceptron_figures.weight_heatmap_figure(result), "figures/weights.png")
        print(f"{pair_run_name(pair)}: train {result.train_accuracy:.4f}, test {result.test_accuracy:.4f}, "
              f"{result.epochs_run} epochs")
    return dataclasses.replace(result, run_id=run.run_id)


def summary_table(results: list[PerceptronResult]) -> pd.DataFrame:
    return pd.DataFrame([
        {"pair": f"{r.pair[0]} vs {r.pair[1]}", "train_accuracy": r.train_accuracy, "test_accuracy": r.test_accuracy,
         "train_test_gap": r.train_accuracy - r.test_accuracy, "epochs_run": r.epochs_run}
        for r in results
    ])


def log_perceptron_summary(parent: RunRecorder, results: list[PerceptronResult]) -> pd.DataFrame:
    summary = summary_table(results)
    parent.log_table(summary.round(4), "tables/perceptron_summary",
                     "Accuracy as a fraction of correct predictions; gap = train - test; epochs run.")
    parent.log_metrics({"mean_test_accuracy": float(summary["test_accuracy"].mean()),
                        "mean_train_test_gap": float(summary["train_test_gap"].mean()),
                        "max_train_test_gap": float(summary["train_test_gap"].max())})
    parent.log_figure(perceptron_figures.train_test_gap_figure(summary), "figures/train_test_gap.png")
    parent.log_figure(perceptron_figures.training_error_figure(results), "figures/training_error.png")
    return summary


# A step: rerun with the same inputs, code and data, it reuses this pair's run instead of training again.
train_pair_task = step_task(train_pair, name="perceptron-pair",
                                 task_run_name="perceptron-{data.pair[0]}-vs-{data.pair[1]}")
log_perceptron_summary_task = studyflow_task(log_perceptron_summary, name="log-perceptron-summary")
