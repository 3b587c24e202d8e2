"""The MLP vs CNN comparison, drawn by the report from the MLP and CNN runs it reports: a part draws
it from the runs that exist when it runs, so part 3 run before part 4 shows no CNN at all."""

from __future__ import annotations

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run

from studyflow.tracking.names import Tag
from tasks.architectures.figures import accuracy_vs_time_figure
from tasks.report.originals import ours_value
from tasks.report.sections import REPORT_RUN, Figure, children_by, tag_of
from tasks.report.tables import Cell, Table

KINDS = ("mlp", "cnn")
COLUMNS = [
    ("test accuracy", "test_accuracy", "{:.4f}"),
    ("parameters", "param_count", "{:,.0f}"),
    ("time (s)", "train_time_s", "{:.1f}"),
    ("time per epoch (s)", "epoch_time_s", "{:.2f}"),
    ("time per epoch per million parameters (s)", "epoch_time_per_mparam_s", "{:.2f}"),
]


def comparison_rows(client: MlflowClient, runs: dict[str, Run]) -> list[dict]:
    """One row per architecture of the reported MLP and CNN runs: its values and the run they link to
    (means over seeds where the part has replicates)."""
    rows = []
    for kind in KINDS:
        run = runs.get(kind)
        if run is None:
            continue
        members = children_by(client, kind, run, tag_of(Tag.ARCHITECTURE))
        for name in sorted(members):
            values = {metric: ours_value(name, metric, members, run) for _, metric, _ in COLUMNS}
            if values["test_accuracy"][0] is not None:
                rows.append({"name": name, "kind": kind.upper(), **values})
    return rows


def mlp_vs_cnn(client: MlflowClient, runs: dict[str, Run]) -> tuple[Table | None, Figure | None, str]:
    """The table and scatter of every reported MLP and CNN, and a note saying what they hold."""
    rows = comparison_rows(client, runs)
    kinds = sorted({row["kind"] for row in rows})
    if not rows:
        return None, None, "MLP vs CNN: neither part has a run to compare."
    table = Table(
        "MLP vs CNN, drawn from the runs this report shows (ours: the mean over a model's seeds; times: "
        "wall time on this machine)",
        ["name", "kind"] + [title for title, _, _ in COLUMNS],
    )
    for row in rows:
        table.rows.append(
            [Cell(row["name"]), Cell(row["kind"])]
            + [Cell.of(row[metric][0], row[metric][1], fmt) for _, metric, fmt in COLUMNS]
        )
    frame = pd.DataFrame(
        [{"name": row["name"], **{metric: row[metric][0] for _, metric, _ in COLUMNS}} for row in rows]
    )
    drawn = accuracy_vs_time_figure(frame, f"{' vs '.join(kinds)}: test accuracy against training time")
    note = (
        ""
        if len(kinds) == 2
        else f"MLP vs CNN: only the {kinds[0]} part has a run, so the comparison shows {kinds[0]}s alone."
    )
    return (table, Figure(REPORT_RUN, "figures/mlp_vs_cnn.png", "MLP vs CNN (drawn by the report)", drawn), note)
