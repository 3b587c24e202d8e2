"""The sweeps' section: each sweep's best trial against the named architectures."""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import Run

from studyflow import tracking
from studyflow.tracking.names import Tag
from tasks.report.sections import child_runs, run_link, tag_of, trial_of
from tasks.report.tables import Cell, Table


def sweep_table(client: MlflowClient, kind: str, named: Run | None) -> Table | None:
    """The sweep's best trial against the named architectures, by validation accuracy."""
    sweep = tracking.latest_parent(client, f"sweep-{kind}")
    if sweep is None:
        return None
    trials = [
        run
        for name, run in child_runs(client, f"sweep-{kind}", sweep, trial_of).items()
        if "val_accuracy" in run.data.metrics
    ]
    table = Table(
        f"{kind.upper()} sweep's best trial against the named architectures",
        ["model", "validation accuracy", "test accuracy", "parameters", "settings"],
    )
    if trials:
        best = max(trials, key=lambda run: run.data.metrics["val_accuracy"])
        settings = ", ".join(f"{key}={value}" for key, value in sorted(best.data.params.items()))
        table.rows.append(
            [
                Cell(f"sweep best ({trial_of(best)})", run_link(best)),
                *(
                    Cell.of(best.data.metrics.get(key), run_link(best), fmt)
                    for key, fmt in (
                        ("val_accuracy", "{:.4f}"),
                        ("test_accuracy", "{:.4f}"),
                        ("param_count", "{:,.0f}"),
                    )
                ),
                Cell(settings[:300]),
            ]
        )
    for name, child in sorted(child_runs(client, kind, named, tag_of(Tag.ARCHITECTURE)).items()) if named else []:
        table.rows.append(
            [
                Cell(name, run_link(child)),
                *(
                    Cell.of(child.data.metrics.get(key), run_link(child), fmt)
                    for key, fmt in (
                        ("val_accuracy", "{:.4f}"),
                        ("test_accuracy", "{:.4f}"),
                        ("param_count", "{:,.0f}"),
                    )
                ),
                Cell(child.data.params.get("hidden_widths") or child.data.params.get("filters", "")),
            ]
        )
    return table
