"""What the MLP and CNN flows share: their config and their data preparation."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from studyflow.config import StepConfig, TrainingConfig
from studyflow.steps import run_step
from studyflow.tracking import RunRecorder
from tasks.architectures.train import ArchitectureOutcome, train_architecture_task, training_data
from tasks.data import Dataset, load_dataset, subset
from tasks.training import TrainingData, TrainingDivergedError, TrainSettings

Width = Annotated[int, Field(ge=1, le=100_000)]


class ArchitectureConfig(TrainingConfig, StepConfig):
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
    settings = TrainSettings(config.epochs, config.batch_size, config.learning_rate, config.seed,
                             precision=config.precision)
    return dataset, data, settings


def train_all(recorder: RunRecorder, kind: str, architectures: dict[str, list[int]], data: TrainingData,
              settings: TrainSettings, force: bool = False) -> list[ArchitectureOutcome]:
    """Train each architecture in its child run; one that diverges (NaN loss) fails alone. An
    architecture already trained with the same inputs, code and data is reused (unless `force`)."""
    outcomes = []
    for name, widths in architectures.items():
        try:
            outcomes.append(run_step(train_architecture_task, kind, name, widths, data, settings,
                                     parent=recorder, force=force))
        except TrainingDivergedError as exc:
            print(f"{name}: run FAILED, the study goes on without it: {exc}")
    if not outcomes:
        raise TrainingDivergedError(f"every {kind.upper()} architecture diverged")
    return outcomes
