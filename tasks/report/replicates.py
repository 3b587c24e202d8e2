"""The report's view of replicates: a part's summary over seeds (read back from its parent run),
ours-against-the-original cells judged by our interval, and the differences between models."""

from __future__ import annotations

import csv
import math

from mlflow import MlflowClient
from mlflow.entities import Run

from tasks.report.tables import MISSING, Cell, Table, accuracy_cells

INTERVAL_NOTE = ("Ours: mean over {seeds} seeds ± the half-width of its 95 % interval. ⚑ marks ours worse than "
                 "the original only when the original's figure lies above our interval; inside it, the difference "
                 "is within seed noise.")
ONE_SEED_NOTE = ("One seed per model: no interval to tell a difference from seed noise, so ⚑ marks ours worse than "
                 "the original by more than one percentage point (train with `--set seeds='[0,1,2]'` for intervals).")


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text if text else math.nan


def read_table(client: MlflowClient, run: Run, artifact: str) -> list[dict] | None:
    """A CSV table artifact of the run as rows (numbers parsed), or None if the run has none."""
    folder = artifact.rpartition("/")[0]
    if artifact not in {item.path for item in client.list_artifacts(run.info.run_id, folder)}:
        return None
    with open(client.download_artifacts(run.info.run_id, artifact), newline="") as handle:
        return [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def summary_rows(client: MlflowClient, run: Run, part: str) -> dict[str, dict]:
    """Model -> its row of `tables/<part>_summary.csv` (empty for a run from before replicates)."""
    rows = read_table(client, run, f"tables/{part}_summary.csv") or []
    return {str(row["model"]): row for row in rows if "model" in row and "seeds" in row}


def most_seeds(summary: dict[str, dict]) -> int:
    return int(max((row["seeds"] for row in summary.values()), default=0))


def replicate_accuracy_cells(original: float | None, row: dict, metric: str, href: str | None) -> list[Cell]:
    """Original, ours as mean +- half-width (n seeds), and where the original falls against our
    interval. With one seed: today's cells (difference, flagged beyond one point)."""
    mean, low, high = (row.get(f"{metric}_{end}", math.nan) for end in ("mean", "ci95_low", "ci95_high"))
    if not isinstance(mean, float) or math.isnan(mean):
        return accuracy_cells(original, None, href)
    if int(row["seeds"]) < 2 or math.isnan(low):
        return accuracy_cells(original, mean, href)
    ours = Cell(f"{mean:.4f} ± {(high - low) / 2:.4f} ({int(row['seeds'])} seeds)", href)
    if original is None:
        return [Cell(MISSING), ours, Cell(MISSING)]
    if original > high:
        verdict = Cell(f"{mean - original:+.4f}: worse (original above our interval)", flag=True)
    elif original < low:
        verdict = Cell(f"{mean - original:+.4f}: better (original below our interval)")
    else:
        verdict = Cell(f"{mean - original:+.4f}: within noise")
    return [Cell(f"{original:.4f}"), ours, verdict]


def differences_table(client: MlflowClient, run: Run, part: str, href: str) -> Table | None:
    """The part's differences between models, if it has replicates (a difference needs an interval)."""
    rows = read_table(client, run, f"tables/{part}_differences.csv")
    if not rows or all(isinstance(row["ci95_low"], float) and math.isnan(row["ci95_low"]) for row in rows):
        return None
    table = Table("Differences between models (A minus B, mean over seeds) with their 95 % interval; the test "
                  "used and the verdict: `within noise` when the interval contains 0",
                  ["metric", "A", "B", "difference", "95 % interval", "test", "verdict"])
    for row in rows:
        table.rows.append([Cell(str(row["metric"])), Cell(str(row["model_a"])), Cell(str(row["model_b"])),
                           Cell(f"{row['difference']:+.4f}", href),
                           Cell(f"[{row['ci95_low']:+.4f}, {row['ci95_high']:+.4f}]"), Cell(str(row["test"])),
                           Cell(str(row["verdict"]))])
    return table
