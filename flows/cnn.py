"""Study part 4: CNN architectures on MNIST; the best goes to the Model Registry."""

from __future__ import annotations

from typing import ClassVar

from prefect import flow
from pydantic import Field, field_validator

from flows.architectures import ArchitectureConfig, Width, prepare, train_all
from flows.common import flow_parameters, parent_run
from models.architectures import CNN_ARCHITECTURES, MAX_CNN_DEPTH
from studyflow.config import Precision, Profile
from tasks.architectures.record import log_architecture_summary_task, log_mlp_vs_cnn_task
from tasks.architectures.registry import REGISTERED_CNN, register_and_promote_task


class CnnConfig(ArchitectureConfig):
    architectures: dict[str, list[Width]] = Field(default_factory=lambda: dict(CNN_ARCHITECTURES))
    registered_model: str = Field(REGISTERED_CNN, min_length=1, description="Model Registry name of the best CNN")

    PROFILE_DEFAULTS: ClassVar = {
        "quick": {"epochs": 1, "train_size": 4_000, "test_size": 1_000},
        "paper": {"epochs": 10},
    }

    @field_validator("architectures")
    @classmethod
    def _depth_fits_the_image(cls, architectures):
        for name, filters in architectures.items():
            if len(filters) > MAX_CNN_DEPTH:
                raise ValueError(f"{name}: {len(filters)} conv layers; at most {MAX_CNN_DEPTH} fit a 28x28 image")
        return architectures


@flow(name="cnn")
def cnn_flow(
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
    registered_model: str | None = None,
) -> list[dict]:
    config = CnnConfig.for_profile(profile, **flow_parameters(locals()))
    dataset, data, settings = prepare(config)
    with parent_run("cnn", config, dataset) as recorder:
        outcomes = train_all(recorder, "cnn", config.architectures, data, settings, config.force)
        table = log_architecture_summary_task(recorder, "cnn", outcomes)
        log_mlp_vs_cnn_task(recorder, "cnn")
        best = max(outcomes, key=lambda outcome: outcome.final_metrics["val_accuracy"])
        test_set = f"mnist test ({len(data.test_targets)} images, seed {config.seed}, digest {dataset.short_digest})"
        decision = register_and_promote_task(recorder.client, best.model_uri, best.run_id,
                                             data.test_inputs, data.test_targets, test_set, config.registered_model)
        recorder.set_tags({"studyflow.registered_version": decision.version,
                           "studyflow.promoted": str(decision.promoted).lower(),
                           "studyflow.promotion_reason": decision.reason})
    return table.to_dict(orient="records")
