"""Study part 6: the labels of the two tasks, the model variants, and training one variant.

Task 1 ("item") is the 10 Fashion-MNIST classes; task 2 ("group") maps each class to a group.
A variant is one model: the two-output MTL model with a loss weight lambda, or a single-task model.
Its loss is lambda * CE(item) + (1 - lambda) * CE(group), through Keras' `loss_weights`; Keras
reports the per-task losses unweighted (`item_loss`, `group_loss`) and `loss` as the weighted sum.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import keras
import mlflow.keras
import numpy as np

from models.multitask import ITEM_CLASSES, build_multitask
from studyflow.tracking import RunRecorder
from tasks.data import Dataset, validation_split
from tasks.model_store import ROUND_TRIP_TOLERANCE, ModelIntegrityError, log_keras_model, outputs
from tasks.prefect_task import step_task
from tasks.training import TrainingData, TrainSettings, compile_model, precision_policy, train

CROSS_ENTROPY = "sparse_categorical_crossentropy"
# STUDY.md section 6: Fashion-MNIST class ids per group, in this order (group index 0, 1, 2).
DEFAULT_GROUPS = {"shoes": [5, 7, 9], "gendered": [3, 6, 8], "uni-sex": [0, 1, 2, 4]}
# Task number (as STUDY.md counts them) of each head, for the final metric names.
TASK_NUMBERS = {"item": 1, "group": 2}


def check_group_mapping(group_mapping: dict[str, list[int]]) -> None:
    """Every one of the ten item classes in exactly one group; at least two non-empty groups."""
    if len(group_mapping) < 2:
        raise ValueError(f"give at least 2 groups, got {len(group_mapping)}")
    seen: dict[int, str] = {}
    for group, classes in group_mapping.items():
        if not group.strip():
            raise ValueError("a group needs a non-empty name")
        if not classes:
            raise ValueError(f"group {group!r} has no classes")
        for item in classes:
            if not 0 <= item < ITEM_CLASSES:
                raise ValueError(f"group {group!r}: class {item} is not one of 0..{ITEM_CLASSES - 1}")
            if item in seen:
                where = f"listed twice in group {group!r}" if seen[item] == group else \
                    f"in two groups: {seen[item]!r} and {group!r}"
                raise ValueError(f"class {item} is {where}")
            seen[item] = group
    missing = sorted(set(range(ITEM_CLASSES)) - set(seen))
    if missing:
        raise ValueError(f"class(es) {missing} are in no group")


def group_lookup(group_mapping: dict[str, list[int]]) -> np.ndarray:
    """Item class -> group index (groups numbered in the mapping's order)."""
    check_group_mapping(group_mapping)
    lookup = np.empty(ITEM_CLASSES, dtype=np.int64)
    for index, classes in enumerate(group_mapping.values()):
        lookup[list(classes)] = index
    return lookup


@dataclass(frozen=True)
class Variant:
    """One model of the part: which heads it has and how its two losses are weighted."""

    name: str  # the MLflow run name
    label: str  # the row of STUDY.md's table
    tasks: tuple[str, ...]
    mtl_lambda: float | None = None  # None for a single-task model

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
    """The models of the part, in the order of STUDY.md's table: single-task ones first."""
    models = []
    if include_single_task:
        models += [Variant("single-task-1", "single task 1", ("item",)),
                   Variant("single-task-2", "single task 2", ("group",))]
    models += [Variant(f"mtl-lambda-{float(value)}", f"MTL lambda {float(value)}", ("item", "group"), float(value))
               for value in lambdas]
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

        return TrainingData(self.train_images, targets("train"), self.val_images, targets("val"),
                            self.test_images, targets("test"))


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
    return {task: [keras.metrics.SparseCategoricalAccuracy(name=f"{task}_accuracy"),
                   keras.metrics.SparseCategoricalCrossentropy(name=f"{task}_loss")]}


def final_task_metrics(final_metrics: dict[str, float], tasks: tuple[str, ...]) -> dict[str, float]:
    """`task1_test_accuracy` / `task2_test_accuracy`, only for the heads the model has."""
    return {f"task{TASK_NUMBERS[task]}_test_accuracy": final_metrics[f"test_{task}_accuracy"] for task in tasks}


@dataclass
class VariantOutcome:
    variant: Variant
    run_id: str
    param_count: int
    final_metrics: dict[str, float]  # the shared routine's final metrics plus task<n>_test_accuracy
    history: dict[str, list[float]]
    model_uri: str | None  # None when models are not logged


def verify_outputs_round_trip(model_uri: str, model: keras.Model, inputs: np.ndarray) -> None:
    """Load the logged model back; each output must match the trained model's (dict outputs)."""
    reloaded = mlflow.keras.load_model(model_uri)
    expected, actual = outputs(model, inputs), outputs(reloaded, inputs)
    for task, values in expected.items():
        difference = float(np.max(np.abs(values - actual[task])))
        if difference > ROUND_TRIP_TOLERANCE:
            raise ModelIntegrityError(
                f"{model_uri}: output {task!r} differs from the trained model's (max difference {difference:.2e})")


def train_variant(parent: RunRecorder, variant: Variant, data: MtlData, settings: TrainSettings,
                  log_model: bool) -> VariantOutcome:
    """Build, train and log one variant in its own child run."""
    tags = {"studyflow.model_kind": "mtl" if variant.mtl_lambda is not None else "single-task",
            "studyflow.tasks": ",".join(variant.tasks)}
    if variant.mtl_lambda is not None:
        tags["studyflow.mtl_lambda"] = variant.mtl_lambda
    training = data.for_tasks(variant.tasks)
    settings = dataclasses.replace(settings, selection_metric=variant.selection_metric)
    with parent.child(variant.name, tags=tags) as run:
        # A fresh Keras state, so what ran before (even a failed fit) cannot change this model's
        # initial weights; the previous model's memory was freed when it finished (below).
        keras.backend.clear_session(free_memory=False)
        keras.utils.set_random_seed(settings.seed)
        with precision_policy(settings.precision):
            model = build_multitask(variant.tasks, group_count=len(data.group_names),
                                    name=variant.name.replace("-", "_"))
        compile_model(model, settings, loss={task: CROSS_ENTROPY for task in variant.tasks},
                      metrics=task_metrics(variant.tasks), loss_weights=variant.loss_weights)
        run.log_params({
            "model": variant.label, "tasks": list(variant.tasks),
            **({"mtl_lambda": variant.mtl_lambda} if variant.mtl_lambda is not None else {}),
            "loss_weights": variant.loss_weights or {variant.tasks[0]: 1.0}, "groups": data.group_names,
            "epochs": settings.epochs, "batch_size": settings.batch_size, "learning_rate": settings.learning_rate,
            "optimizer": "adam", "precision": settings.precision, "param_count": model.count_params(),
            "train_samples": len(training.train_inputs),
            "val_samples": len(training.val_inputs), "test_samples": len(training.test_inputs),
        })
        result = train(model, training, settings, recorder=run)
        task_accuracies = final_task_metrics(result.final_metrics, variant.tasks)
        run.log_metrics(task_accuracies)
        model_uri = None
        if log_model:
            model_uri = log_keras_model(run, model, training.test_inputs)
            verify_outputs_round_trip(model_uri, model, training.test_inputs[:256])
            run.set_tags({"studyflow.model_uri": model_uri})
        print(f"{variant.label}: " + ", ".join(f"{name} {value:.4f}" for name, value in task_accuracies.items())
              + f", {result.final_metrics['train_time_s']:.1f} s")
    outcome = VariantOutcome(variant, run.run_id, result.param_count, {**result.final_metrics, **task_accuracies},
                             result.history, model_uri)
    del model, result
    keras.backend.clear_session()  # 26 M parameters and their Adam state: free them before the next model
    return outcome


# A step: rerun with the same inputs, code and data, it reuses this run instead of training again.
train_variant_task = step_task(train_variant, name="train-mtl-variant", task_run_name="train-{variant.name}")
