"""Reading each study part's latest finished runs from MLflow into report sections."""

from __future__ import annotations

import csv
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mlflow import MlflowClient
from mlflow.entities import Run

from studyflow import reference, tracking
from studyflow.config.base import PROFILES
from studyflow.config.parts import PART_CONFIGS
from studyflow.tracking.runs import param_text
from studyflow.tracking.names import MTL_TASK_NUMBERS, Tag, mtl_label, pair_label
from tasks.report.replicates import (
    INTERVAL_NOTE,
    ONE_SEED_NOTE,
    differences_table,
    most_seeds,
    replicate_accuracy_cells,
    summary_rows,
)
from tasks.report.tables import (
    MISSING,
    Cell,
    Table,
    accuracy_cells,
    comparison_columns,
    count_cells,
    difference_cells,
    ratio_cells,
)

PART_TITLES = {
    "pca": "1. PCA map and linear separability (MNIST)",
    "perceptron": "2. Perceptrons on digit pairs (MNIST)",
    "mlp": "3. MLP architectures (MNIST)",
    "cnn": "4. CNN architectures (MNIST)",
    "inspect": "5. Looking inside the CNN (MNIST)",
    "mtl": "6. Multi-task learning (Fashion-MNIST)",
}


@dataclass
class Figure:
    run_id: str
    artifact_path: str
    caption: str


@dataclass
class Section:
    part: str
    title: str
    command: str
    run: Run | None = None
    link: str | None = None
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def has_run(self) -> bool:
        return self.run is not None

    @property
    def profile(self) -> str | None:
        return self.run.data.tags.get(Tag.PROFILE) if self.run else None

    @property
    def precision(self) -> str | None:
        """The Keras dtype policy its networks trained in (parts without networks have none)."""
        return self.run.data.params.get("precision") if self.run else None


def original_results() -> dict:
    return reference.original_study()


# Settings that change how a part runs, not what it computes: a reproducing command leaves them out.
EXECUTION_SETTINGS = {"profile", "force", "workers", "dask_address", "system_metrics"}


def reproducing_command(part: str, run: Run) -> str:
    """The command that reruns a part as this run ran it: its profile, and every scientific setting
    whose logged value differs from that profile's default (`--set NAME=VALUE`)."""
    profile = run.data.tags.get(Tag.PROFILE, "paper")
    command = f"studyflow run {part} --profile {profile}"
    config = PART_CONFIGS.get(part)
    if config is None or profile not in PROFILES:
        return command
    defaults = config.for_profile(profile).model_dump()
    for name, default in defaults.items():
        logged = run.data.params.get(name)
        if name not in EXECUTION_SETTINGS and logged is not None and logged != param_text(default):
            command += f" --set {shlex.quote(f'{name}={logged}')}"
    return command


def run_link(run: Run) -> str:
    return tracking.run_url(run.info.experiment_id, run.info.run_id)


def child_runs(client: MlflowClient, part: str, parent: Run, key: Callable[[Run], str | None]) -> dict[str, Run]:
    """The parent's member runs by what `key` reads from their tags (runs it gives None are left out)."""
    runs = {}
    for run in tracking.member_runs(client, part, parent.info.run_id):
        name = key(run)
        if name is not None:
            runs[name] = run
    return runs


def tag_of(tag: str) -> Callable[[Run], str | None]:
    return lambda run: run.data.tags.get(tag)


def pair_of(run: Run) -> str | None:
    value = run.data.tags.get(Tag.PAIR)
    return pair_label(value) if value else None


def mtl_variant_of(run: Run) -> str | None:
    """The original table's row label of an MTL child run, from its tags ("MTL lambda 0.25")."""
    tasks, mtl_lambda = run.data.tags.get(Tag.TASKS), run.data.tags.get(Tag.MTL_LAMBDA)
    if not tasks:
        return None
    return mtl_label(tuple(tasks.split(",")), float(mtl_lambda) if mtl_lambda is not None else None)


def trial_of(run: Run) -> str | None:
    number = run.data.tags.get(Tag.TRIAL_NUMBER)
    return f"trial {number}" if number is not None else None


def figures_of(client: MlflowClient, run: Run, caption_prefix: str = "", folder: str = "figures") -> list[Figure]:
    """Every PNG under the run's `figures/`, sub-folders included (part 5 keeps its filters,
    activation maps and dreams in figures/filters, figures/activations and figures/dreams)."""
    found = []
    for item in client.list_artifacts(run.info.run_id, folder):
        if item.is_dir:
            found += figures_of(client, run, caption_prefix, item.path)
        elif item.path.endswith(".png"):
            where = Path(item.path).relative_to("figures")
            caption = " ".join([*where.parent.parts, where.stem]).replace("_", " ")
            found.append(Figure(run.info.run_id, item.path, caption_prefix + caption))
    return found


def _csv_rows(client: MlflowClient, run: Run, artifact: str) -> list[dict]:
    path = client.download_artifacts(run.info.run_id, artifact)
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def pca_tables(client: MlflowClient, run: Run) -> list[Table]:
    original = original_results()["pca"]
    metrics, link = run.data.metrics, run_link(run)
    accuracy = Table("Mean LinearSVC accuracy over the 45 digit pairs, by PCA dimension",
                     ["PCA dimensions"] + comparison_columns(["mean pair accuracy"]))
    accuracy.rows.append([Cell("2")] + accuracy_cells(original["mean_pair_accuracy"], metrics.get("mean_pair_accuracy"), link))
    for name in sorted(key for key in metrics if key.startswith("mean_pair_accuracy_")):
        dimensions = name.removeprefix("mean_pair_accuracy_").removesuffix("d")
        accuracy.rows.append([Cell(dimensions)] + accuracy_cells(None, metrics[name], link))
    ours = {int(row["digit"]): row for row in _csv_rows(client, run, "tables/digit_statistics.csv")}
    reference = {entry["digit"]: entry for entry in original["centroids"]}
    # A principal component's sign is arbitrary: orient ours like the original's on its first digit.
    first = original["centroids"][0]
    signs = [1.0 if (float(ours[first["digit"]][f"centroid_pc{k}"]) >= 0) == (first[f"centroid_pc{k}"] >= 0)
             else -1.0 for k in (1, 2)]
    centroids = Table("Per digit: centroid and variance along each principal component (PCA units; our components "
                      "oriented like the original's; the original gives digits 0 and 1 only)",
                      ["digit"] + comparison_columns(["centroid PC1", "centroid PC2", "variance PC1", "variance PC2"])
                      + ["images (ours)"])
    for digit, row in sorted(ours.items()):
        entry = reference.get(digit, {})
        centroids.rows.append(
            [Cell(str(digit))]
            + difference_cells(entry.get("centroid_pc1"), signs[0] * float(row["centroid_pc1"]), link)
            + difference_cells(entry.get("centroid_pc2"), signs[1] * float(row["centroid_pc2"]), link)
            + difference_cells(entry.get("variance_pc1"), float(row["variance_pc1"]), link)
            + difference_cells(entry.get("variance_pc2"), float(row["variance_pc2"]), link)
            + [Cell(row["count"], link)])
    pairs = Table("Easiest and hardest digit pairs in 2-D", ["", "original", "ours"])
    pairs.rows.append([Cell("easiest"), Cell(", ".join(original["easiest_pairs"])),
                       Cell(run.data.tags.get(Tag.EASIEST_PAIRS, "-"), link)])
    pairs.rows.append([Cell("hardest"), Cell(", ".join(original["hardest_pairs"])),
                       Cell(run.data.tags.get(Tag.HARDEST_PAIRS, "-"), link)])
    return [accuracy, centroids, pairs]


# How each compared figure is shown: (column title, original's key, our metric, cells builder).
PERCEPTRON_FIGURES = [("train accuracy", "train_accuracy", "train_accuracy", accuracy_cells),
                      ("test accuracy", "test_accuracy", "test_accuracy", accuracy_cells),
                      ("epochs", "epochs_run", "epochs_run", lambda o, x, link: ratio_cells(o, x, link, "{:.0f}"))]
ARCHITECTURE_FIGURES = [("parameters", "param_count", "param_count", count_cells),
                        ("train accuracy", "train_accuracy", "train_accuracy", accuracy_cells),
                        ("test accuracy", "test_accuracy", "test_accuracy", accuracy_cells),
                        ("time (s)", "train_time_s", "train_time_s", ratio_cells)]
MTL_FIGURES = [("parameters", "param_count", "param_count", count_cells),
               ("task 1 accuracy", "task1_test_accuracy", "task1_test_accuracy", accuracy_cells),
               ("task 2 accuracy", "task2_test_accuracy", "task2_test_accuracy", accuracy_cells),
               ("time (s)", "train_time_s", "train_time_s", ratio_cells)]


def comparison_table(caption: str, row_title: str, originals: dict[str, dict], children: dict[str, Run],
                     figures: list, summary: dict[str, dict] | None = None, parent: Run | None = None) -> Table:
    """One row per model (the original's, then any extra of ours), each figure original vs ours.

    With a summary over seeds (`summary`: model -> its row), ours are the means over seeds, linked to
    the parent run that holds the summary; accuracies are judged against our 95 % interval."""
    summary = summary or {}
    table = Table(caption, [row_title] + comparison_columns([figure[0] for figure in figures]))
    for name in list(originals) + sorted((set(children) | set(summary)) - set(originals)):
        entry, child, replicate = originals.get(name, {}), children.get(name), summary.get(name)
        metrics = child.data.metrics if child else {}
        link = run_link(parent) if replicate and parent else run_link(child) if child else None
        row = [Cell(name)]
        for _, original_key, metric, cells in figures:
            if replicate is not None and cells is accuracy_cells:
                row += replicate_accuracy_cells(entry.get(original_key), replicate, metric, link)
            else:
                mean = replicate.get(f"{metric}_mean") if replicate else None
                row += cells(entry.get(original_key), mean if isinstance(mean, float) else metrics.get(metric), link)
        table.rows.append(row)
    return table


def replicate_tables(client: MlflowClient, run: Run, part: str, summary: dict[str, dict]) -> list[Table]:
    """The differences between models, when the part has replicates."""
    if most_seeds(summary) < 2:
        return []
    differences = differences_table(client, run, part, run_link(run))
    return [differences] if differences else []


def replicate_note(summary: dict[str, dict]) -> str:
    seeds = most_seeds(summary)
    return INTERVAL_NOTE.format(seeds=seeds) if seeds >= 2 else ONE_SEED_NOTE


def perceptron_tables(client: MlflowClient, run: Run) -> list[Table]:
    children = child_runs(client, "perceptron", run, pair_of)
    summary = summary_rows(client, run, "perceptron")
    originals = {entry["pair"]: entry for entry in original_results()["perceptron"]["pairs"]}
    return [comparison_table("Perceptron per digit pair (first digit +1)", "pair", originals, children,
                             PERCEPTRON_FIGURES, summary, run), *replicate_tables(client, run, "perceptron", summary)]


def architecture_tables(client: MlflowClient, run: Run, kind: str) -> list[Table]:
    originals = {entry["name"]: entry for entry in original_results()[kind]["architectures"]}
    summary = summary_rows(client, run, kind)
    return [comparison_table(f"{kind.upper()} architectures (time: training wall time on each machine)", "name",
                             originals, child_runs(client, kind, run, tag_of(Tag.ARCHITECTURE)), ARCHITECTURE_FIGURES,
                             summary, run), *replicate_tables(client, run, kind, summary)]


def mtl_tables(client: MlflowClient, run: Run) -> list[Table]:
    original = original_results()["mtl"]
    children = child_runs(client, "mtl", run, mtl_variant_of)
    summary = summary_rows(client, run, "mtl")
    originals = {entry["name"]: entry for entry in original["models"]}
    table = comparison_table('Multi-task learning on Fashion-MNIST ("-": the model has no head for that task)',
                             "model", originals, children, MTL_FIGURES, summary, run)
    mark_untrained_heads(table, children)
    saving = Table("Parameters saved by one MTL model over the two single-task models",
                   comparison_columns(["parameters saved", "percent saved"]))
    metrics, link = run.data.metrics, run_link(run)
    saving.rows.append(count_cells(original["parameter_saving"], metrics.get("param_saving"), link)
                       + difference_cells(original["parameter_saving_percent"], metrics.get("param_saving_percent"), link))
    return [table, saving, *replicate_tables(client, run, "mtl", summary)]


def untrained_head_figures(child: Run) -> list[str]:
    """The accuracy columns of the heads `child` trained with loss weight 0, from its logged
    `loss_weights` (at lambda 0 the task-1 head, at lambda 1 the task-2 head): they never learned."""
    logged = child.data.params.get("loss_weights")
    weights = json.loads(logged) if logged else {}
    return [f"task {MTL_TASK_NUMBERS[task]} accuracy" for task, weight in weights.items() if float(weight) == 0.0]


def mark_untrained_heads(table: Table, children: dict[str, Run]) -> None:
    """An untrained head's accuracy is chance's (as is the original's), so its difference from the
    original says nothing about the study: it is labelled as such and never flagged."""
    for row in table.rows:
        child = children.get(row[0].text)
        for figure in untrained_head_figures(child) if child else []:
            difference = table.columns.index(f"{figure} (ours)") + 1
            if row[difference].text != MISSING:
                row[difference] = Cell(f"{row[difference].text.split(':')[0]}: untrained head (loss weight 0), chance")


def inspect_tables(client: MlflowClient, run: Run) -> list[Table]:
    metrics, link = run.data.metrics, run_link(run)
    table = Table("Deep dream: the target class's pre-softmax score before and after gradient ascent",
                  ["dream", "score before", "score after", "probability before", "probability after"])
    for name in sorted(key for key in metrics if key.startswith("dream_") and key.endswith("_score_before")):
        stem = name.removesuffix("_score_before")
        table.rows.append([Cell(stem.removeprefix("dream_").replace("_", " from "))]
                          + [Cell.of(metrics.get(f"{stem}_{suffix}"), link, "{:.3f}")
                             for suffix in ("score_before", "score_after", "probability_before", "probability_after")])
    return [table] if table.rows else []


def sweep_table(client: MlflowClient, kind: str, named: Run | None) -> Table | None:
    """The sweep's best trial against the named architectures, by validation accuracy."""
    sweep = tracking.latest_parent(client, f"sweep-{kind}")
    if sweep is None:
        return None
    trials = [run for name, run in child_runs(client, f"sweep-{kind}", sweep, trial_of).items()
              if "val_accuracy" in run.data.metrics]
    table = Table(f"{kind.upper()} sweep's best trial against the named architectures",
                  ["model", "validation accuracy", "test accuracy", "parameters", "settings"])
    if trials:
        best = max(trials, key=lambda run: run.data.metrics["val_accuracy"])
        settings = ", ".join(f"{key}={value}" for key, value in sorted(best.data.params.items()))
        table.rows.append([Cell(f"sweep best ({trial_of(best)})", run_link(best)),
                           *(Cell.of(best.data.metrics.get(key), run_link(best), fmt)
                             for key, fmt in (("val_accuracy", "{:.4f}"), ("test_accuracy", "{:.4f}"), ("param_count", "{:,.0f}"))),
                           Cell(settings[:300])])
    for name, child in sorted(child_runs(client, kind, named, tag_of(Tag.ARCHITECTURE)).items()) if named else []:
        table.rows.append([Cell(name, run_link(child)),
                           *(Cell.of(child.data.metrics.get(key), run_link(child), fmt)
                             for key, fmt in (("val_accuracy", "{:.4f}"), ("test_accuracy", "{:.4f}"), ("param_count", "{:,.0f}"))),
                           Cell(child.data.params.get("hidden_widths") or child.data.params.get("filters", ""))])
    return table
