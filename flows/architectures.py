"""What the MLP and CNN flows share: their config and their data preparation."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from studyflow.config import TrainingConfig
from tasks.architecture_training import training_data
from tasks.data import Dataset, load_dataset, subset
from tasks.training import TrainingData, TrainSettings

Width = Annotated[int, Field(ge=1, le=100_000)]


class ArchitectureConfig(TrainingConfig):
    architectures: dict[str, list[Width]] = Field(
        default_factory=dict, description="name -> widths per hidden layer (MLP) or filters per conv layer (CNN)")

    @field_validator("architectures")
    @classmethod
    def _not_empty(cls, architectures):
        if not architectures:
            raise ValueError("give at least one architecture")
        for name, widths in architectures.items():
            if not name.strip() or not widths:
                raise ValueError(f"architecture {name!r} needs a name and at least one layer")
        return architectures


def prepare(config: ArchitectureConfig) -> tuple[Dataset, TrainingData, TrainSettings]:
    dataset = subset(load_dataset("mnist"), config.train_size, config.test_size, config.seed)
    data = training_data(dataset, config.validation_fraction, config.seed)
    settings = TrainSettings(config.epochs, config.batch_size, config.learning_rate, config.seed)
    return dataset, data, settings
