"""The MTL sweep's data and model: part 6's labels, network and loss weighting, with lambda from Optuna."""

from __future__ import annotations

import keras

from models.multitask import TASKS, build_multitask
from studyflow import reference
from studyflow.config import TrainSettings
from studyflow.config.sweeps import SweepConfig
from tasks.data import Dataset, load_dataset, subset
from tasks.mtl.compute import CROSS_ENTROPY, Variant, mtl_data, task_metrics
from tasks.training import TrainingData, compile_model


def mtl_sweep_data(config: SweepConfig) -> tuple[Dataset, TrainingData]:
    dataset = subset(load_dataset(config.DATASET), config.train_size, config.test_size, config.seed)
    data = mtl_data(dataset, reference.fashion_groups(), config.validation_fraction, config.seed)
    return dataset, data.for_tasks(TASKS)


def build_mtl_trial_model(mtl_lambda: float, settings: TrainSettings, name: str) -> keras.Model:
    """Part 6's two-head model with loss lambda * CE(items) + (1 - lambda) * CE(groups)."""
    variant = Variant(TASKS, mtl_lambda)
    model = build_multitask(TASKS, group_count=len(reference.fashion_groups()), name=name)
    return compile_model(
        model,
        settings,
        loss={task: CROSS_ENTROPY for task in TASKS},
        metrics=task_metrics(TASKS),
        loss_weights=variant.loss_weights,
    )
