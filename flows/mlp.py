"""Study part 3: MLP architectures on MNIST."""

from __future__ import annotations

from typing import ClassVar

from prefect import flow
from pydantic import Field

from flows.architectures import ArchitectureConfig, Width, prepare, train_all
from flows.common import flow_parameters, parent_run
from models.architectures import MLP_ARCHITECTURES
from studyflow.config import Precision, Profile
from tasks.architectures.record import log_architecture_summary_task, log_mlp_vs_cnn_task


class MlpConfig(ArchitectureConfig):
    architectures: dict[str, list[Width]] = Field(default_factory=lambda: dict(MLP_ARCHITECTURES))

    PROFILE_DEFAULTS: ClassVar = {
        "quick": {"epochs": 2, "train_size": 4_000, "test_size": 1_000},
        "paper": {"epochs": 20},
    }


@flow(name="mlp")
def mlp_flow(
    profile: Profile = "quick",
    seed: int | None = None,
    force: bool | None = None,
    architectures: dict[str, list[int]] | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    validation_fraction: float | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    precision: Precision | None = None,
) -> list[dict]:
    config = MlpConfig.for_profile(profile, **flow_parameters(locals()))
    dataset, data, settings = prepare(config)
    with parent_run("mlp", config, dataset) as recorder:
        outcomes = train_all(recorder, "mlp", config.architectures, data, settings, config.force)
        table = log_architecture_summary_task(recorder, "mlp", outcomes)
        log_mlp_vs_cnn_task(recorder, "mlp")
    return table.to_dict(orient="records")
