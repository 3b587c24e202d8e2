"""Summaries of parts 3 and 4 on the parent run, and the MLP vs CNN comparison read from MLflow."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from mlflow import MlflowClient

from studyflow import tracking
from studyflow.config import TrainSettings
from studyflow.tracking import RunRecorder, Tag
from tasks.architectures import figures as architecture_figures
from tasks.architectures.compute import BUILDERS, ArchitectureOutcome
from tasks.replicates.compute import MODEL, SEED, best_model
from tasks.replicates.record import log_replicates
from tasks.training import TrainingData

SUMMARY_COLUMNS = [
    "train_accuracy",
    "val_accuracy",
    "test_accuracy",
    "param_count",
    "train_time_s",
    "epoch_time_s",
    "epoch_time_per_mparam_s",
]
COMPARISON_COLUMNS = ["test_accuracy", "param_count", "train_time_s", "epoch_time_s", "epoch_time_per_mparam_s"]
REPLICATE_METRICS = {
    "test_accuracy": "test",
    "val_accuracy": "validation",
    "train_accuracy": "train",
    "train_time_s": "training time (s)",
}
UNITS = "Accuracy as a fraction; times in seconds of wall time on this machine; per-Mparam time in s / 10^6 params."


def architecture_params(
    kind: str, name: str, widths: list[int], settings: TrainSettings, param_count: int, data: TrainingData
) -> dict:
    """An architecture's child-run params: what it is, how it was trained, on how much data."""
    return {
        BUILDERS[kind][1]: widths,
        "depth": len(widths),
        "architecture": name,
        **settings.as_params(),
        "param_count": param_count,
        "train_samples": len(data.train_inputs),
        "val_samples": len(data.val_inputs),
        "test_samples": len(data.test_inputs),
    }


def runs_table(outcomes: list[ArchitectureOutcome]) -> pd.DataFrame:
    """One row per trained (architecture, seed): its run and final metrics."""
    rows = []
    for outcome in outcomes:
        row = {MODEL: outcome.name, SEED: outcome.seed, BUILDERS[outcome.kind][1]: "x".join(map(str, outcome.widths))}
        row.update({column: outcome.final_metrics[column] for column in SUMMARY_COLUMNS})
        row["param_count"] = int(row["param_count"])
        row["run_id"] = outcome.run_id
        rows.append(row)
    return pd.DataFrame(rows)


def means_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per architecture, the mean of each metric over its seeds (the figures' points)."""
    means = runs.groupby(MODEL, sort=False)[SUMMARY_COLUMNS].mean().reset_index().rename(columns={MODEL: "name"})
    means["param_count"] = means["param_count"].astype(int)
    return means


@dataclass
class ArchitectureSummary:
    runs: pd.DataFrame  # one row per (architecture, seed)
    summary: pd.DataFrame  # one row per architecture over its seeds
    best: ArchitectureOutcome  # the best architecture's best-validation seed


def best_outcome(outcomes: list[ArchitectureOutcome], summary: pd.DataFrame) -> ArchitectureOutcome:
    """The architecture with the best mean validation accuracy over its seeds, and of its seeds the
    one with the best validation accuracy (the model that goes on, e.g. to the Model Registry)."""
    name = best_model(summary, "val_accuracy")
    return max(
        (outcome for outcome in outcomes if outcome.name == name),
        key=lambda outcome: outcome.final_metrics["val_accuracy"],
    )


def log_architecture_summary(
    parent: RunRecorder, kind: str, outcomes: list[ArchitectureOutcome]
) -> ArchitectureSummary:
    runs = runs_table(outcomes)
    parent.log_table(runs.round(4), f"tables/{kind}_architectures", UNITS + " One row per architecture and seed.")
    summary = log_replicates(parent, kind, runs, REPLICATE_METRICS, compared=["test_accuracy"])
    best = best_outcome(outcomes, summary)
    best_row = summary.set_index(MODEL).loc[best.name]
    parent.log_metrics(
        {"best_val_accuracy": best_row["val_accuracy_mean"], "best_test_accuracy": best_row["test_accuracy_mean"]}
    )
    parent.set_tags({Tag.BEST_ARCHITECTURE: best.name, Tag.BEST_RUN_ID: best.run_id})
    histories: dict[str, list[dict[str, list[float]]]] = {}
    for outcome in outcomes:
        histories.setdefault(outcome.name, []).append(outcome.history)
    parent.log_figure(
        architecture_figures.learning_curves_figure(histories, kind), f"figures/{kind}_learning_curves.png"
    )
    parent.log_figure(
        architecture_figures.accuracy_vs_time_figure(
            means_table(runs), f"{kind.upper()} architectures: test accuracy against training time"
        ),
        f"figures/{kind}_accuracy_vs_time.png",
    )
    return ArchitectureSummary(runs, summary, best)


def architecture_runs(client: MlflowClient, kind: str, parent_run_id: str | None = None) -> pd.DataFrame:
    """The finished child runs of a `kind` parent run (the one given, else the latest finished; empty
    if none), one row per architecture: its metrics' means over its seeds. A child that FAILED (its
    loss diverged) has no final metrics to compare."""
    parent = tracking.latest_parent(client, kind, parent_run_id)
    if parent is None:
        return pd.DataFrame()
    children = [
        run
        for run in tracking.member_runs(client, kind, parent.info.run_id)
        if run.info.status == "FINISHED" and Tag.ARCHITECTURE in run.data.tags
    ]
    rows = [
        {
            "name": run.data.tags[Tag.ARCHITECTURE],
            "kind": kind.upper(),
            "profile": run.data.tags.get(Tag.PROFILE),
            **{column: run.data.metrics.get(column) for column in COMPARISON_COLUMNS},
        }
        for run in sorted(children, key=lambda run: run.data.tags[Tag.ARCHITECTURE])
    ]
    if not rows:
        return pd.DataFrame()
    # replicates: an architecture's mean over its seeds
    table = pd.DataFrame(rows)
    seeds = table.groupby("name").size().rename("seeds")
    means = table.groupby(["name", "kind", "profile"], dropna=False)[COMPARISON_COLUMNS].mean().reset_index()
    return means.join(seeds, on="name")


def log_mlp_vs_cnn(parent: RunRecorder, kind: str) -> pd.DataFrame:
    """The MLP vs CNN table and scatter of the original's part 4, read back from MLflow: this run's
    architectures of `kind`, and the other kind's latest finished run, if the store holds one."""
    table = pd.concat(
        [architecture_runs(parent.client, other, parent.run_id if other == kind else None) for other in ("mlp", "cnn")],
        ignore_index=True,
    )
    if table.empty:
        return table
    table["param_count"] = table["param_count"].astype(int)
    parent.log_table(table.round(4), "tables/mlp_vs_cnn", UNITS + " Read back from the latest MLP and CNN runs.")
    parent.log_figure(
        architecture_figures.accuracy_vs_time_figure(table, "MLP vs CNN: test accuracy against training time"),
        "figures/mlp_vs_cnn.png",
    )
    return table
