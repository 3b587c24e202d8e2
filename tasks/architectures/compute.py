"""Parts 3 and 4 as computation: the builders of each kind, the data split, a trained model's outcome."""

from __future__ import annotations

from dataclasses import dataclass

from models.architectures import build_cnn, build_mlp
from tasks.data import Dataset, validation_split
from tasks.training import TrainingData

# kind -> (builder, the param name of its layer sizes)
BUILDERS = {"mlp": (build_mlp, "hidden_widths"), "cnn": (build_cnn, "filters")}


@dataclass
class ArchitectureOutcome:
    name: str
    kind: str
    widths: list[int]
    seed: int
    run_id: str
    model_uri: str
    final_metrics: dict[str, float]
    history: dict[str, list[float]]


def training_data(dataset: Dataset, validation_fraction: float, seed: int) -> TrainingData:
    split = validation_split(dataset.train_images, dataset.train_labels, validation_fraction, seed)
    return TrainingData(
        split.train_images,
        split.train_labels,
        split.val_images,
        split.val_labels,
        dataset.test_images,
        dataset.test_labels,
    )


def model_name(name: str) -> str:
    """A Keras-safe model name for an architecture name ("CNN-1" -> "cnn_1")."""
    return name.lower().replace("-", "_")
