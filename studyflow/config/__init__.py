"""Typed configuration: the base machinery (`base`), each study part's config (`parts`) and the
sweeps' (`sweeps`). Imports pydantic, the reference data and the tracking names (plain strings; no
MLflow), and SQLAlchemy's URL parser only when a sweep's storage is checked: the command line
validates a command's parameters with it before TensorFlow, MLflow or Prefect is imported."""

from studyflow.config.base import (
    PROFILES,
    FannedOut,
    PartConfig,
    Precision,
    Profile,
    Replicated,
    Seeded,
    StepConfig,
    StrictModel,
    TrainingConfig,
    TrainSettings,
    parse_set_options,
)
from studyflow.errors import ConfigError

__all__ = [
    "PROFILES",
    "ConfigError",
    "FannedOut",
    "PartConfig",
    "Precision",
    "Profile",
    "Replicated",
    "Seeded",
    "StepConfig",
    "StrictModel",
    "TrainSettings",
    "TrainingConfig",
    "parse_set_options",
]
