"""Part 1's tables: the mean pair accuracy by dimension, the per-digit table beside the original's
(all ten digits, in two tables narrow enough for a page), and the easiest and hardest pairs."""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import Run

from studyflow.tracking.names import Tag
from tasks.report.sections import csv_rows, original_results, run_link
from tasks.report.tables import Cell, Table, accuracy_cells, comparison_columns, difference_cells

COMPONENTS = (1, 2)


def component_signs(ours: dict[int, dict], original: dict[int, dict]) -> dict[int, float]:
    """A principal component's sign is arbitrary: per component, the sign that puts our centroids
    nearest the original's over every digit both give."""
    signs = {}
    for k in COMPONENTS:
        pairs = [
            (float(ours[digit][f"centroid_pc{k}"]), entry[f"centroid_pc{k}"])
            for digit, entry in original.items()
            if digit in ours
        ]
        kept = sum((mine - theirs) ** 2 for mine, theirs in pairs)
        flipped = sum((-mine - theirs) ** 2 for mine, theirs in pairs)
        signs[k] = 1.0 if kept <= flipped else -1.0
    return signs


def pca_tables(client: MlflowClient, run: Run) -> list[Table]:
    original = original_results()["pca"]
    metrics, link = run.data.metrics, run_link(run)
    accuracy = Table(
        "Mean LinearSVC accuracy over the 45 digit pairs, by PCA dimension (a mean over pairs: "
        "no noise rule, the difference gives its direction only)",
        ["PCA dimensions"] + comparison_columns(["mean pair accuracy"]),
    )
    accuracy.rows.append(
        [Cell("2")] + accuracy_cells(original["mean_pair_accuracy"], metrics.get("mean_pair_accuracy"), link)
    )
    for name in sorted(key for key in metrics if key.startswith("mean_pair_accuracy_")):
        dimensions = name.removeprefix("mean_pair_accuracy_").removesuffix("d")
        accuracy.rows.append([Cell(dimensions)] + accuracy_cells(None, metrics[name], link))
    ours = {int(row["digit"]): row for row in csv_rows(client, run, "tables/digit_statistics.csv")}
    reference = {entry["digit"]: entry for entry in original["centroids"]}
    signs = component_signs(ours, reference)
    oriented = "; our components oriented like the original's" if reference else ""
    centroids = Table(
        f"Per digit: centroid along each principal component (PCA units{oriented})",
        ["digit"] + comparison_columns(["centroid PC1", "centroid PC2"]),
    )
    variances = Table(
        "Per digit: variance along each principal component (PCA units squared; the difference "
        "also as a percentage of the original's)",
        ["digit"] + comparison_columns(["variance PC1", "variance PC2"]) + ["images (ours)"],
    )

    def by_component(entry: dict, row: dict, statistic: str, orient: bool, relative: bool) -> list[Cell]:
        """Original, ours and their difference, for PC1 then PC2 (a centroid signed as oriented)."""
        return [
            cell
            for k in COMPONENTS
            for cell in difference_cells(
                entry.get(f"{statistic}_pc{k}"),
                (signs[k] if orient else 1) * float(row[f"{statistic}_pc{k}"]),
                link,
                relative=relative,
            )
        ]

    for digit, row in sorted(ours.items()):
        entry = reference.get(digit, {})
        centroids.rows.append([Cell(str(digit))] + by_component(entry, row, "centroid", orient=True, relative=False))
        variances.rows.append(
            [Cell(str(digit))]
            + by_component(entry, row, "variance", orient=False, relative=True)
            + [Cell(row["count"], link)]
        )
    pairs = Table("Easiest and hardest digit pairs in 2-D", ["", "original", "ours"])
    pairs.rows.append(
        [
            Cell("easiest"),
            Cell(", ".join(original["easiest_pairs"])),
            Cell(run.data.tags.get(Tag.EASIEST_PAIRS, "-"), link),
        ]
    )
    pairs.rows.append(
        [
            Cell("hardest"),
            Cell(", ".join(original["hardest_pairs"])),
            Cell(run.data.tags.get(Tag.HARDEST_PAIRS, "-"), link),
        ]
    )
    return [accuracy, centroids, variances, pairs]
