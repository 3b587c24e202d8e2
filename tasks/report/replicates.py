"""The report's view of replicates: a part's summary over seeds (read back from its parent run),
ours-against-the-original cells judged by our interval, and the differences between models with the
seeds that would resolve each."""

from __future__ import annotations

import csv
import math

from mlflow import MlflowClient
from mlflow.entities import Run

from tasks.replicates.compute import SEEDS_FOR_POWER
from tasks.replicates.power import ALPHA, POWER, seeds_to_resolve, spread_from_interval
from tasks.report.judging import INTERVAL_RULE, ONE_SEED_RULE, judge_interval, signed
from tasks.report.tables import MISSING, Cell, Table, accuracy_cells

INTERVAL_NOTE = (
    "Ours: mean over {seeds} seeds ± the half-width of its 95 % interval. Each difference says "
    "whether ours is above, below or within noise of the original; " + INTERVAL_RULE + ". ⚑: beyond "
    "noise, either way. The differences between models say how many seeds per model would resolve "
    f"each ({POWER * 100:.0f} % power, alpha {ALPHA}, from the spread these seeds showed)."
)
ONE_SEED_NOTE = (
    "One seed per model. Each difference says whether ours is above, below or within noise of the "
    "original, by this rule: " + ONE_SEED_RULE + ". ⚑: beyond noise, either way. With one seed no "
    "spread is observed, so no power calculation says how many seeds would resolve a difference "
    "between models: train with `--set seeds='[0,1,2]'` for intervals and seed counts."
)


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


def replicate_accuracy_cells(
    original: float | None, row: dict, metric: str, href: str | None, images: int | None = None
) -> list[Cell]:
    """Original, ours as mean +- half-width (n seeds), and where ours lies against the original
    judged by our interval and binomial noise on `images`. With one seed: by binomial noise alone."""
    mean, low, high = (row.get(f"{metric}_{end}", math.nan) for end in ("mean", "ci95_low", "ci95_high"))
    if not isinstance(mean, float) or math.isnan(mean):
        return accuracy_cells(original, None, href)
    if int(row["seeds"]) < 2 or math.isnan(low):
        return accuracy_cells(original, mean, href, images)
    ours = Cell(f"{mean:.4f} ± {(high - low) / 2:.4f} ({int(row['seeds'])} seeds)", href)
    if original is None:
        return [Cell(MISSING), ours, Cell(MISSING)]
    judgement = judge_interval(original, low, high, mean, images)
    return [
        Cell(f"{original:.4f}"),
        ours,
        Cell(f"{signed(mean - original, 4)} {judgement.words}", flag=judgement.beyond_noise),
    ]


def seeds_needed(row: dict) -> int | None:
    """Seeds per model that would resolve a logged difference: the table's own column where it has
    one, else from its interval (tables logged before the column existed)."""
    logged = row.get(SEEDS_FOR_POWER)
    if isinstance(logged, float):
        return None if math.isnan(logged) else int(logged)
    paired = str(row["test"]).startswith("paired")
    spread = spread_from_interval(row["ci95_low"], row["ci95_high"], int(row["seeds_a"]), int(row["seeds_b"]), paired)
    return seeds_to_resolve(row["difference"], spread, paired)


def differences_table(client: MlflowClient, run: Run, part: str, href: str) -> Table | None:
    """The part's differences between models, if it has replicates (a difference needs an interval)."""
    rows = read_table(client, run, f"tables/{part}_differences.csv")
    if not rows or all(isinstance(row["ci95_low"], float) and math.isnan(row["ci95_low"]) for row in rows):
        return None
    table = Table(
        "Differences between models (A minus B, mean over seeds) with their 95 % interval; the test "
        "used; the verdict (`within noise` when the interval contains 0); and the seeds per model at "
        f"which that test would resolve the difference seen ({POWER * 100:.0f} % power, alpha {ALPHA}, from the "
        "spread observed)",
        ["metric", "A", "B", "difference", "95 % interval", "test", "verdict", "seeds to resolve"],
    )
    for row in rows:
        needed = seeds_needed(row)
        table.rows.append(
            [
                Cell(str(row["metric"])),
                Cell(str(row["model_a"])),
                Cell(str(row["model_b"])),
                Cell(signed(row["difference"], 4), href),
                Cell(f"[{signed(row['ci95_low'], 4)}, {signed(row['ci95_high'], 4)}]"),
                Cell(str(row["test"])),
                Cell(str(row["verdict"])),
                Cell(f"{needed}" if needed is not None else "none practical"),
            ]
        )
    return table
