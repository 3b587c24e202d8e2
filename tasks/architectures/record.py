"""Summaries of parts 3 and 4 on the parent run, and the MLP vs CNN comparison read from MLflow."""

from __future__ import annotations

import pandas as pd
from mlflow import MlflowClient

from studyflow import tracking
from studyflow.tracking import RunRecorder
from tasks.architectures import figures as architecture_figures
from tasks.architectures.train import BUILDERS, ArchitectureOutcome
from tasks.prefect_task import studyflow_task

SUMMARY_COLUMNS = ["train_accuracy", "val_accuracy", "test_accuracy", "param_count", "train_time_s",
                   "epoch_time_s", "epoch_time_per_mparam_s"]
COMPARISON_COLUMNS = ["test_accuracy", "param_count", "train_time_s", "epoch_time_s", "epoch_time_per_mparam_s"]
UNITS = "Accuracy as a fraction; times in seconds of wall time on this machine; per-Mparam time in s / 10^6 params."


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
    parent.set_tags({"studyflow.best_architecture": best.name, "studyflow.best_run_id": best.run_id})
    parent.log_figure(architecture_figures.learning_curves_figure(
        {outcome.name: outcome.history for outcome in outcomes}, kind), f"figures/{kind}_learning_curves.png")
    parent.log_figure(architecture_figures.accuracy_vs_time_figure(
        table, f"{kind.upper()} architectures: test accuracy against training time"),
        f"figures/{kind}_accuracy_vs_time.png")
    return table


def architecture_runs(client: MlflowClient, kind: str, parent_run_id: str | None = None) -> pd.DataFrame:
    """The finished child runs of a `kind` parent run: the one given, else the latest finished (empty
    if none). A child that FAILED (its loss diverged) has no final metrics to compare."""
    if parent_run_id is None:
        parents = tracking.find_runs(
            client, kind, "tags.`studyflow.run_level` = 'parent' and attributes.status = 'FINISHED'")
        if not parents:
            return pd.DataFrame()
        parent_run_id = max(parents, key=lambda run: run.info.start_time).info.run_id
    children = tracking.member_runs(client, kind, parent_run_id)
    rows = [{"name": run.info.run_name, "kind": kind.upper(), "profile": run.data.tags.get("studyflow.profile"),
             "run_id": run.info.run_id, **{column: run.data.metrics.get(column) for column in COMPARISON_COLUMNS}}
            for run in sorted(children, key=lambda run: run.info.run_name) if run.info.status == "FINISHED"]
    return pd.DataFrame(rows)


def log_mlp_vs_cnn(parent: RunRecorder, kind: str) -> pd.DataFrame:
    """The MLP vs CNN table and scatter of STUDY.md section 4, read back from MLflow: this run's
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


log_architecture_summary_task = studyflow_task(log_architecture_summary, name="log-architecture-summary")
log_mlp_vs_cnn_task = studyflow_task(log_mlp_vs_cnn, name="mlp-vs-cnn")
