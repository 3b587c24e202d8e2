"""Parts 2, 3, 4 and 6: one row per model, each figure of ours beside the original's, judged both
ways; and the differences between models when there are replicates."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities import Run

from studyflow.tracking.names import MTL_TASK_NUMBERS, Tag
from tasks.report.originals import epoch_times_table, mtl_best_table, second_mlp_run_table
from tasks.report.replicates import (
    INTERVAL_NOTE,
    ONE_SEED_NOTE,
    differences_table,
    most_seeds,
    replicate_accuracy_cells,
    summary_rows,
)
from tasks.report.sections import child_runs, children_by, mtl_variant_of, original_results, pair_of, run_link, tag_of
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


@dataclass(frozen=True)
class Compared:
    """One figure of a comparison table: its column title, the original's key, our metric, and for
    an accuracy the child-run param counting the images it was measured on (the noise rule's n)."""

    title: str
    original_key: str
    metric: str
    cells: Callable = accuracy_cells
    images_param: str | None = None


def _iterations(original, ours, link):
    return ratio_cells(original, ours, link, "{:.0f}")


PERCEPTRON_FIGURES = [
    Compared("train accuracy", "train_accuracy", "train_accuracy", images_param="train_samples"),
    Compared("test accuracy", "test_accuracy", "test_accuracy", images_param="test_samples"),
    # the original's word; ours: full-batch updates, each one pass over the pair's images
    Compared("iterations", "epochs_run", "epochs_run", _iterations),
]
ARCHITECTURE_FIGURES = [
    Compared("parameters", "param_count", "param_count", count_cells),
    Compared("train accuracy", "train_accuracy", "train_accuracy", images_param="train_samples"),
    Compared("test accuracy", "test_accuracy", "test_accuracy", images_param="test_samples"),
]
MTL_FIGURES = [
    Compared("parameters", "param_count", "param_count", count_cells),
    Compared("task 1 accuracy", "task1_test_accuracy", "task1_test_accuracy", images_param="test_samples"),
    Compared("task 2 accuracy", "task2_test_accuracy", "task2_test_accuracy", images_param="test_samples"),
    Compared("time (s)", "train_time_s", "train_time_s", ratio_cells),
]


def _images(child: Run | None, param: str | None) -> int | None:
    value = child.data.params.get(param) if child is not None and param else None
    return int(value) if value is not None else None


def comparison_table(
    caption: str,
    row_title: str,
    originals: dict[str, dict],
    children: dict[str, Run],
    figures: list[Compared],
    summary: dict[str, dict] | None = None,
    parent: Run | None = None,
) -> Table:
    """One row per model (the original's, then any extra of ours), each figure original vs ours.

    With a summary over seeds (`summary`: model -> its row), ours are the means over seeds, linked to
    the parent run that holds the summary; accuracies are judged against our 95 % interval."""
    summary = summary or {}
    table = Table(caption, [row_title] + comparison_columns([figure.title for figure in figures]))
    for name in list(originals) + sorted((set(children) | set(summary)) - set(originals)):
        entry, child, replicate = originals.get(name, {}), children.get(name), summary.get(name)
        metrics = child.data.metrics if child else {}
        link = run_link(parent) if replicate and parent else run_link(child) if child else None
        row = [Cell(name)]
        for figure in figures:
            original, images = entry.get(figure.original_key), _images(child, figure.images_param)
            if figure.cells is accuracy_cells:
                row += (
                    replicate_accuracy_cells(original, replicate, figure.metric, link, images)
                    if replicate
                    else accuracy_cells(original, metrics.get(figure.metric), link, images)
                )
            else:
                mean = replicate.get(f"{figure.metric}_mean") if replicate else None
                row += figure.cells(original, mean if isinstance(mean, float) else metrics.get(figure.metric), link)
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
    original = original_results()["perceptron"]
    originals = {entry["pair"]: entry for entry in original["pairs"]}
    caption = (
        f"Perceptron per digit pair (first digit +1); {original['count_word']}: the original's word, "
        "ours counts full-batch updates, each one pass over the pair's training images"
    )
    return [
        comparison_table(caption, "pair", originals, children, PERCEPTRON_FIGURES, summary, run),
        *replicate_tables(client, run, "perceptron", summary),
    ]


def architecture_tables(client: MlflowClient, run: Run, kind: str) -> list[Table]:
    originals = {entry["name"]: entry for entry in original_results()[kind]["architectures"]}
    summary = summary_rows(client, run, kind)
    children = child_runs(client, kind, run, tag_of(Tag.ARCHITECTURE))
    members = children_by(client, kind, run, tag_of(Tag.ARCHITECTURE))
    tables = [
        comparison_table(
            f"{kind.upper()} architectures: parameters and accuracies",
            "name",
            originals,
            children,
            ARCHITECTURE_FIGURES,
            summary,
            run,
        ),
        epoch_times_table(kind, originals, members, run),
    ]
    if kind == "mlp":
        tables.append(second_mlp_run_table(originals, members, run))
    return tables + replicate_tables(client, run, kind, summary)


def mtl_tables(client: MlflowClient, run: Run) -> list[Table]:
    original = original_results()["mtl"]
    children = child_runs(client, "mtl", run, mtl_variant_of)
    summary = summary_rows(client, run, "mtl")
    originals = {entry["name"]: entry for entry in original["models"]}
    table = comparison_table(
        'Multi-task learning on Fashion-MNIST ("-": the model has no head for that task)',
        "model",
        originals,
        children,
        MTL_FIGURES,
        summary,
        run,
    )
    mark_untrained_heads(table, children)
    saving = Table(
        "Parameters saved by one MTL model over the two single-task models",
        comparison_columns(["parameters saved", "percent saved"]),
    )
    metrics, link = run.data.metrics, run_link(run)
    saving.rows.append(
        count_cells(original["parameter_saving"], metrics.get("param_saving"), link)
        + difference_cells(original["parameter_saving_percent"], metrics.get("param_saving_percent"), link)
    )
    return [table, mtl_best_table(original, run), saving, *replicate_tables(client, run, "mtl", summary)]


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
                row[difference] = Cell(f"{row[difference].text.split(' ')[0]}: untrained head (loss weight 0), chance")


def inspect_tables(client: MlflowClient, run: Run) -> list[Table]:
    metrics, link = run.data.metrics, run_link(run)
    table = Table(
        "Deep dream: the target class's pre-softmax score before and after gradient ascent",
        ["dream", "score before", "score after", "probability before", "probability after"],
    )
    for name in sorted(key for key in metrics if key.startswith("dream_") and key.endswith("_score_before")):
        stem = name.removesuffix("_score_before")
        table.rows.append(
            [Cell(stem.removeprefix("dream_").replace("_", " from "))]
            + [
                Cell.of(metrics.get(f"{stem}_{suffix}"), link, "{:.3f}")
                for suffix in ("score_before", "score_after", "probability_before", "probability_after")
            ]
        )
    return [table] if table.rows else []
