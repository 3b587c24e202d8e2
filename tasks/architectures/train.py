"""Training one named architecture (MLP or CNN) in its own child run: the unit of parts 3 and 4."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from models.architectures import build_cnn, build_mlp
from studyflow.tracking import RunRecorder
from tasks.data import Dataset, validation_split
from tasks.model_store import log_keras_model, verify_round_trip
from tasks.prefect_task import step_task
from tasks.training import TrainingData, TrainSettings, compile_model, precision_policy, train

BUILDERS = {"mlp": (build_mlp, "hidden_widths"), "cnn": (build_cnn, "filters")}


@dataclass
class ArchitectureOutcome:
    name: str
    kind: str
    widths: list[int]
    run_id: str
    model_uri: str
    final_metrics: dict[str, float]
    history: dict[str, list[float]]


def training_data(dataset: Dataset, validation_fraction: float, seed: int) -> TrainingData:
    split = validation_split(dataset.train_images, dataset.train_labels, validation_fraction, seed)
    return TrainingData(split.train_images, split.train_labels, split.val_images, split.val_labels,
                        dataset.test_images, dataset.test_labels)


def train_architecture(parent: RunRecorder, kind: str, name: str, widths: list[int], data: TrainingData,
                       settings: TrainSettings) -> ArchitectureOutcome:
    """Build, train and log one architecture; the model is logged once, checked by reloading."""
    builder, width_param = BUILDERS[kind]
    with parent.child(name, tags={"studyflow.architecture": name, "studyflow.model_kind": kind}) as run:
        # A fresh Keras state, so what ran before (even a failed fit) cannot change this model's
        # initial weights. No gc.collect() (free_memory): it costs 0.4 s per model with MLflow,
        # Prefect and TensorFlow loaded, a third of the tracking overhead of a short MLP run.
        keras.backend.clear_session(free_memory=False)
        keras.utils.set_random_seed(settings.seed)
        with precision_policy(settings.precision):
            model = compile_model(builder(widths, name=name.lower().replace("-", "_")), settings)
        run.log_params({
            width_param: widths, "depth": len(widths), "architecture": name, "epochs": settings.epochs,
            "batch_size": settings.batch_size, "learning_rate": settings.learning_rate, "optimizer": "adam",
            "precision": settings.precision,
            "param_count": model.count_params(), "train_samples": len(data.train_inputs),
            "val_samples": len(data.val_inputs), "test_samples": len(data.test_inputs),
        })
        result = train(model, data, settings, recorder=run)
        model_uri = log_keras_model(run, model, data.test_inputs)
        verify_round_trip(model_uri, model, data.test_inputs[:256])
        run.set_tags({"studyflow.model_uri": model_uri})
        print(f"{name}: test accuracy {result.final_metrics['test_accuracy']:.4f}, "
              f"{result.final_metrics['train_time_s']:.1f} s")
    return ArchitectureOutcome(name, kind, list(widths), run.run_id, model_uri, result.final_metrics,
                               result.history)


# A step: rerun with the same inputs, code and data, it reuses this run instead of training again.
train_architecture_task = step_task(train_architecture, name="train-architecture", task_run_name="train-{name}")
