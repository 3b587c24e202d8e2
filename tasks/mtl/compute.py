"""Study part 6: the labels of the two tasks and the model variants.

Task 1 ("item") is the 10 Fashion-MNIST classes; task 2 ("group") maps each class to a group.
A variant is one model: the two-output MTL model with a loss weight lambda, or a single-task model.
Its loss is lambda * CE(item) + (1 - lambda) * CE(group), through Keras' `loss_weights`; Keras
reports the per-task losses unweighted (`item_loss`, `group_loss`) and `loss` as the weighted sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from models.multitask import ITEM_CLASSES
from studyflow.tracking.names import MTL_TASK_NUMBERS, mtl_label, mtl_run_name
from tasks.data import Dataset, validation_split
from tasks.training import TrainingData

CROSS_ENTROPY = "sparse_categorical_crossentropy"


def group_lookup(group_mapping: dict[str, list[int]]) -> np.ndarray:
    """Item class -> group index (groups numbered in the mapping's order)."""
    lookup = np.empty(ITEM_CLASSES, dtype=np.int64)
    for index, classes in enumerate(group_mapping.values()):
        lookup[list(classes)] = index
    return lookup


@dataclass(frozen=True)
class Variant:
    """One model of the part: which heads it has and how its two losses are weighted."""

    tasks: tuple[str, ...]
    mtl_lambda: float | None = None  # None for a single-task model

    @property
    def name(self) -> str:
        """The MLflow run name."""
        return mtl_run_name(self.tasks, self.mtl_lambda)

    @property
    def label(self) -> str:
        """The row of the original study's table."""
        return mtl_label(self.tasks, self.mtl_lambda)

    @property
    def loss_weights(self) -> dict[str, float] | None:
        if self.mtl_lambda is None:
            return None
        return {"item": self.mtl_lambda, "group": 1.0 - self.mtl_lambda}

    @property
    def selection_metric(self) -> str:
        """The validation accuracy that defines `best_epoch`: the task with the larger weight."""
        weights = self.loss_weights or {self.tasks[0]: 1.0}
        main_task = max(weights, key=lambda task: (weights[task], task == "item"))
        return f"val_{main_task}_accuracy"


def variants(lambdas: list[float], include_single_task: bool) -> list[Variant]:
    """The models of the part, in the order of the original's table: single-task ones first."""
    models = []
    if include_single_task:
        models += [Variant(("item",)), Variant(("group",))]
    models += [Variant(("item", "group"), float(value)) for value in lambdas]
    return models


@dataclass
class MtlData:
    """The split images with both tasks' labels; `for_tasks` gives one variant's targets."""

    train_images: np.ndarray
    val_images: np.ndarray
    test_images: np.ndarray
    labels: dict[str, dict[str, np.ndarray]]  # "train"/"val"/"test" -> task -> labels
    group_names: list[str]

    def for_tasks(self, tasks: tuple[str, ...]) -> TrainingData:
        def targets(part: str) -> dict[str, np.ndarray]:
            return {task: self.labels[part][task] for task in tasks}

        return TrainingData(
            self.train_images, targets("train"), self.val_images, targets("val"), self.test_images, targets("test")
        )


def mtl_data(dataset: Dataset, group_mapping: dict[str, list[int]], validation_fraction: float, seed: int) -> MtlData:
    """Validation split stratified by item class, then the group labels derived from the items."""
    lookup = group_lookup(group_mapping)
    split = validation_split(dataset.train_images, dataset.train_labels, validation_fraction, seed)
    items = {"train": split.train_labels, "val": split.val_labels, "test": dataset.test_labels}
    labels = {part: {"item": item_labels, "group": lookup[item_labels]} for part, item_labels in items.items()}
    return MtlData(split.train_images, split.val_images, dataset.test_images, labels, list(group_mapping))


def task_metrics(tasks: tuple[str, ...]) -> dict[str, list]:
    """Metrics named so that every model reports `<task>_accuracy` and `<task>_loss`.

    Keras prefixes metric names with the output name only when a model has several outputs; a
    single-task model gets explicitly named metrics instead, so `val_item_accuracy` means the
    same thing in every run. Its `item_loss` metric equals its (unweighted) `loss`.
    """
    if len(tasks) > 1:
        return {task: ["accuracy"] for task in tasks}
    (task,) = tasks
    return {
        task: [
            keras.metrics.SparseCategoricalAccuracy(name=f"{task}_accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(name=f"{task}_loss"),
        ]
    }


def final_task_metrics(final_metrics: dict[str, float], tasks: tuple[str, ...]) -> dict[str, float]:
    """`task1_test_accuracy` / `task2_test_accuracy`, only for the heads the model has."""
    return {f"task{MTL_TASK_NUMBERS[task]}_test_accuracy": final_metrics[f"test_{task}_accuracy"] for task in tasks}


@dataclass
class VariantOutcome:
    variant: Variant
    run_id: str
    param_count: int
    final_metrics: dict[str, float]  # the shared routine's final metrics plus task<n>_test_accuracy
    history: dict[str, list[float]]
    model_uri: str | None  # None when models are not logged
    seed: int = 0  # the seed it was trained with (replicates)
