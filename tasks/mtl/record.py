"""Part 6 in MLflow: a variant's params; on the parent run, the original's table with our figures,
the parameter saving, the best MTL model against the single-task models, and the figures across
lambda."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from models.multitask import build_multitask
from studyflow import reference
from studyflow.config import TrainSettings
from studyflow.tracking import RunRecorder
from tasks.mtl import figures as mtl_figures
from tasks.mtl.compute import MtlData, Variant, VariantOutcome
from tasks.replicates.compute import MODEL, SEED
from tasks.replicates.record import log_replicates
from tasks.training import TrainingData

REPLICATE_METRICS = {
    "task1_test_accuracy": "task 1 (item) test",
    "task2_test_accuracy": "task 2 (group) test",
    "train_time_s": "training time (s)",
}
ABSENT = "-"  # a model without a head for a task: no accuracy, not 0
NOT_IN_ORIGINAL = "n/a"  # a lambda the original study did not train
TABLE_CAPTION = (
    "Accuracy: fraction of test images classified correctly, by the model after its last epoch; "
    f'"{ABSENT}": the model has no head for that task. Parameters: trainable and non-trainable weights '
    "(count). Training time: seconds of wall time for all epochs (training and validation, without the "
    "per-epoch test evaluation) on this machine; original times are the original study's, on its hardware. "
    f'"{NOT_IN_ORIGINAL}": '
    "a lambda the original study did not train."
)


def variant_params(
    variant: Variant, data: MtlData, training: TrainingData, settings: TrainSettings, param_count: int
) -> dict:
    """A variant's child-run params: what the model is, how it was trained, on how much data."""
    return {
        "model": variant.label,
        "tasks": list(variant.tasks),
        **({"mtl_lambda": variant.mtl_lambda} if variant.mtl_lambda is not None else {}),
        "loss_weights": variant.loss_weights or {variant.tasks[0]: 1.0},
        "groups": data.group_names,
        **settings.as_params(),
        "param_count": param_count,
        "train_samples": len(training.train_inputs),
        "val_samples": len(training.val_inputs),
        "test_samples": len(training.test_inputs),
    }


def _accuracy(value: float | None) -> str:
    return ABSENT if value is None else f"{value:.4f}"


def results_table(outcomes: list[VariantOutcome]) -> pd.DataFrame:
    """The original's table with our figures beside its own, one row per model."""
    originals = {model["name"]: model for model in reference.original_study()["mtl"]["models"]}
    rows = []
    for outcome in outcomes:
        metrics = outcome.final_metrics
        original = originals.get(outcome.variant.label)
        lam = outcome.variant.mtl_lambda
        rows.append(
            {
                "model": outcome.variant.label,
                "lambda": ABSENT if lam is None else lam,
                "parameters": outcome.param_count,
                "task 1 test accuracy": _accuracy(metrics.get("task1_test_accuracy")),
                "task 2 test accuracy": _accuracy(metrics.get("task2_test_accuracy")),
                "training time (s)": round(metrics["train_time_s"], 1),
                "original task 1 accuracy": _accuracy(original.get("task1_test_accuracy"))
                if original
                else NOT_IN_ORIGINAL,
                "original task 2 accuracy": _accuracy(original.get("task2_test_accuracy"))
                if original
                else NOT_IN_ORIGINAL,
                "original time (s)": original["train_time_s"] if original else NOT_IN_ORIGINAL,
            }
        )
    return pd.DataFrame(rows)


def parameter_saving(mtl_count: int, single_task_counts: list[int]) -> tuple[int, float]:
    """Parameters saved by one MTL model over the single-task models: count and percent of theirs."""
    total = sum(single_task_counts)
    saving = total - mtl_count
    return saving, 100.0 * saving / total


def model_parameter_counts(group_count: int) -> dict[tuple[str, ...], int]:
    """Counts of the three models, built (not trained) so the saving is known whichever ran."""
    return {
        tasks: build_multitask(tasks, group_count).count_params()
        for tasks in (("item", "group"), ("item",), ("group",))
    }


def mean_accuracy(metrics: dict[str, float], split: str) -> float:
    return (metrics[f"{split}_item_accuracy"] + metrics[f"{split}_group_accuracy"]) / 2


def comparison(outcomes: list[VariantOutcome], counts: dict[tuple[str, ...], int]) -> dict[str, float]:
    """The parameter saving; the best MTL model (chosen by mean validation accuracy, reported on the
    test set) against the mean of the two single-task models' test accuracies, if both ran."""
    saving, percent = parameter_saving(counts[("item", "group")], [counts[("item",)], counts[("group",)]])
    result = {"param_saving": saving, "param_saving_percent": percent}
    mtl = [outcome for outcome in outcomes if outcome.variant.mtl_lambda is not None]
    if mtl:
        best = max(mtl, key=lambda outcome: mean_accuracy(outcome.final_metrics, "val"))
        result.update(
            {
                "best_mtl_lambda": best.variant.mtl_lambda,
                "best_mtl_mean_val_accuracy": mean_accuracy(best.final_metrics, "val"),
                "best_mtl_mean_test_accuracy": mean_accuracy(best.final_metrics, "test"),
            }
        )
    single = {
        outcome.variant.tasks[0]: outcome.final_metrics[f"test_{outcome.variant.tasks[0]}_accuracy"]
        for outcome in outcomes
        if outcome.variant.mtl_lambda is None
    }
    if len(single) == 2:
        result["single_task_mean_test_accuracy"] = (single["item"] + single["group"]) / 2
        if mtl:
            result["best_mtl_minus_single_task_accuracy"] = (
                result["best_mtl_mean_test_accuracy"] - result["single_task_mean_test_accuracy"]
            )
    return result


COMPARISON_UNITS = {
    "param_saving": ("parameters saved by one MTL model over the two single-task models", "count"),
    "param_saving_percent": ("the same, as a share of the two single-task models' parameters", "%"),
    "best_mtl_lambda": ("lambda of the MTL model with the best mean validation accuracy of the two tasks", "-"),
    "best_mtl_mean_val_accuracy": ("its mean validation accuracy of the two tasks", "fraction correct"),
    "best_mtl_mean_test_accuracy": ("its mean test accuracy of the two tasks", "fraction correct"),
    "single_task_mean_test_accuracy": (
        "mean of single task 1's item and single task 2's group test accuracy",
        "fraction correct",
    ),
    "best_mtl_minus_single_task_accuracy": (
        "best MTL mean test accuracy minus the single-task mean",
        "fraction correct",
    ),
}


def _value_text(name: str, value: float) -> str:
    return (
        f"{int(value):,}" if name == "param_saving" else f"{value:.4g}" if name == "best_mtl_lambda" else f"{value:.4f}"
    )


def comparison_table(values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "quantity": name,
                "value": _value_text(name, value),
                "unit": COMPARISON_UNITS[name][1],
                "meaning": COMPARISON_UNITS[name][0],
            }
            for name, value in values.items()
        ]
    )


def runs_table(outcomes: list[VariantOutcome]) -> pd.DataFrame:
    """One row per trained (model, seed): its run and final task accuracies."""
    return pd.DataFrame(
        [
            {
                MODEL: o.variant.label,
                SEED: o.seed,
                "lambda": o.variant.mtl_lambda,
                **{metric: o.final_metrics.get(metric) for metric in REPLICATE_METRICS},
                "run_id": o.run_id,
            }
            for o in outcomes
        ]
    )


def seed_means(outcomes: list[VariantOutcome]) -> list[VariantOutcome]:
    """One outcome per model whose final metrics are the means over its seeds (the original's table
    and the comparison are about models, not seeds); its history is its first seed's."""
    by_label: dict[str, list[VariantOutcome]] = {}
    for outcome in outcomes:
        by_label.setdefault(outcome.variant.label, []).append(outcome)
    means = []
    for group in by_label.values():
        keys = set.intersection(*(set(o.final_metrics) for o in group))
        metrics = {key: float(np.mean([o.final_metrics[key] for o in group])) for key in keys}
        means.append(dataclasses.replace(group[0], final_metrics=metrics))
    return means


def log_mtl_summary(parent: RunRecorder, outcomes: list[VariantOutcome], group_count: int) -> pd.DataFrame:
    log_replicates(
        parent, "mtl", runs_table(outcomes), REPLICATE_METRICS, compared=["task1_test_accuracy", "task2_test_accuracy"]
    )
    models = seed_means(outcomes)
    table = results_table(models)
    seeds = sorted({o.seed for o in outcomes})
    parent.log_table(
        table,
        "tables/mtl_results",
        TABLE_CAPTION
        + (
            f" Our figures are means over {len(seeds)} seeds ({', '.join(map(str, seeds))}); their intervals are in "
            "tables/mtl_summary."
            if len(seeds) > 1
            else ""
        ),
    )
    values = comparison(models, model_parameter_counts(group_count))
    parent.log_metrics(values)
    parent.log_table(
        comparison_table(values),
        "tables/mtl_comparison",
        "Parameter saving and the best MTL model against the single-task models (means over seeds).",
    )
    mtl: dict[float, list[VariantOutcome]] = {}
    single: dict[str, list[VariantOutcome]] = {}
    for o in outcomes:
        if o.variant.mtl_lambda is not None:
            mtl.setdefault(o.variant.mtl_lambda, []).append(o)
        else:
            single.setdefault(o.variant.tasks[0], []).append(o)
    if mtl:
        parent.log_figure(
            mtl_figures.final_accuracy_figure(
                {
                    lam: {task: [o.final_metrics[f"test_{task}_accuracy"] for o in group] for task in ("item", "group")}
                    for lam, group in mtl.items()
                },
                {task: [o.final_metrics[f"test_{task}_accuracy"] for o in group] for task, group in single.items()},
            ),
            "figures/mtl_final_accuracy_vs_lambda.png",
        )
        parent.log_figure(
            mtl_figures.per_epoch_accuracy_figure(
                {lam: [o.history for o in group] for lam, group in mtl.items()},
                {task: [o.history for o in group] for task, group in single.items()},
            ),
            "figures/mtl_accuracy_per_epoch.png",
        )
    print(table.to_string(index=False))
    return table
