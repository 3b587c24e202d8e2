"""Summaries of parts 3 and 4 on the parent run, and the MLP vs CNN comparison read from MLflow."""

from __future__ import annotations

import pandas as pd
from mlflow import MlflowClient

from studyflow import tracking
from studyflow.config import TrainSettings
from studyflow.tracking import RunRecorder, Tag
from tasks.architectures import figures as architecture_figures
from tasks.architectures.compute import BUILDERS, ArchitectureOutcome
from tasks.training import TrainingData

SUMMARY_COLUMNS = ["train_accuracy", "val_accuracy", "test_accuracy", "param_count", "train_time_s",
                   "epoch_time_s", "epoch_time_per_mparam_s"]
COMPARISON_COLUMNS = ["test_accuracy", "param_count", "train_time_s", "epoch_time_s", "epoch_time_per_mparam_s"]
UNITS = "Accuracy as a fraction; times in seconds of wall time on this machine; per-Mparam time in s / 10^6 params."


def architecture_params(kind: str, name: str, widths: list[int], settings: TrainSettings, param_count: int,
                        data: TrainingData) -> dict:
    """An architecture's child-run params: what it is, how it was trained, on how much data."""
    return {BUILDERS[kind][1]: widths, "depth": len(widths), "architecture": name, **settings.as_params(),
            "param_count": param_count, "train_samples": len(data.train_inputs),
            "val_samples": len(data.val_inputs), "test_samples": len(data.test_inputs)}


def summary_table(outcomes: list[ArchitectureOutcome]) -> pd.DataFrame:
    rows = []
    for outcome in outcomes:
        row = {"name": outcome.name, BUILDERS[outcome.kind][1]: "x".join(map(str, outcome.widths))}
        row.update({column: outcome.final_metrics[column] for column in SUMMARY_COLUMNS})
        row["param_count"] = int(row["param_count"])
        rows.append(row)
    return pd.DataFrame(rows)


def log_architecture_summary(parent: RunRecorder, kind: str, outcomes: list[ArchitectureOutcome]) -> pd.DataFrame:
    table = summary_table(outcomes)
    parent.log_table(table.round(4), f"tables/{kind}_architectures", UNITS)
    best = max(outcomes, key=lambda outcome: outcome.final_metrics["val_accuracy"])
    parent.log_metrics({"best_val_accuracy": best.final_metrics["val_accuracy"],
                        "best_test_accuracy": best.final_metrics["test_accuracy"]})
    parent.set_tags({Tag.BEST_ARCHITECTURE: best.name, Tag.BEST_RUN_ID: best.run_id})
    parent.log_figure(architecture_figures.learning_curves_figure(
        {outcome.name: outcome.history for outcome in outcomes}, kind), f"figures/{kind}_learning_curves.png")
    parent.log_figure(architecture_figures.accuracy_vs_time_figure(
        table, f"{kind.upper()} architectures: test accuracy against training time"),
        f"figures/{kind}_accuracy_vs_time.png")
    return table


def architecture_runs(client: MlflowClient, kind: str, parent_run_id: str | None = None) -> pd.DataFrame:
    """The finished child runs of a `kind` parent run: the one given, else the latest finished (empty
    if none). A child that FAILED (its loss diverged) has no final metrics to compare."""
    parent = tracking.latest_parent(client, kind, parent_run_id)
    if parent is None:
        return pd.DataFrame()
    children = [run for run in tracking.member_runs(client, kind, parent.info.run_id)
                if run.info.status == "FINISHED" and Tag.ARCHITECTURE in run.data.tags]
    rows = [{"name": run.data.tags[Tag.ARCHITECTURE], "kind": kind.upper(), "profile": run.data.tags.get(Tag.PROFILE),
             "run_id": run.info.run_id, **{column: run.data.metrics.get(column) for column in COMPARISON_COLUMNS}}
            for run in sorted(children, key=lambda run: run.data.tags[Tag.ARCHITECTURE])]
    return pd.DataFrame(rows)


def log_mlp_vs_cnn(parent: RunRecorder, kind: str) -> pd.DataFrame:
    """The MLP vs CNN table and scatter of the original's part 4, read back from MLflow: this run's
    architectures of `kind`, and the other kind's latest finished run, if the store holds one."""
    table = pd.concat(
        [architecture_runs(parent.client, other, parent.run_id if other == kind else None) for other in ("mlp", "cnn")],
        ignore_index=True)
    if table.empty:
        return table
    table["param_count"] = table["param_count"].astype(int)
    parent.log_table(table.round(4), "tables/mlp_vs_cnn", UNITS + " Read back from the latest MLP and CNN runs.")
    parent.log_figure(architecture_figures.accuracy_vs_time_figure(
        table, "MLP vs CNN: test accuracy against training time"), "figures/mlp_vs_cnn.png")
    return table
