"""Study part 6: multi-task learning on Fashion-MNIST across the loss weight lambda, against
single-task models. One child run per model; STUDY.md's table and the figures on the parent run."""

from __future__ import annotations

import math
from typing import Annotated, ClassVar

from prefect import flow
from pydantic import Field, field_validator

from flows.common import flow_parameters, parent_run
from studyflow.config import Precision, Profile, StepConfig, TrainingConfig
from studyflow.steps import run_step
from tasks.data import load_dataset, subset
from tasks.mtl.compute import DEFAULT_GROUPS, check_group_mapping, mtl_data, train_variant_task, variants
from tasks.mtl.record import log_mtl_summary_task
from tasks.training import TrainSettings

Lambda = Annotated[float, Field(ge=0.0, le=1.0)]
DEFAULT_LAMBDAS = [0.0, 0.25, 0.5, 0.75, 1.0]


class MtlConfig(TrainingConfig, StepConfig):
    """Paper profile: the full data and 10 epochs. The original does not state its epoch count; 10 is
    what it trained its conv nets with in part 4, and with Adam at 1e-3 a CNN of this size on
    Fashion-MNIST is near its test-accuracy plateau by then (later epochs mostly overfit). Cost here:
    0.3-0.45 s per batch of 128 on 2 cores, so about 2.5 min per epoch and model, 3-4 hours for the
    seven models. The quick profile (3,000 images, 1 epoch) takes about 1.5 minutes.

    Models are logged only in the paper profile (`log_models`): a 26 M-parameter model with its Adam
    state is a 317 MB `.keras` file (logged in about 2 s), so the seven of a quick run would write
    2.2 GB for a smoke run that nobody deploys.
    """

    lambdas: list[Lambda] = Field(default_factory=lambda: list(DEFAULT_LAMBDAS),
                                  description="weights of the task-1 loss, one MTL model each")
    group_mapping: dict[str, list[int]] = Field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_GROUPS.items()},
                                                description="task-2 group name -> Fashion-MNIST class ids")
    include_single_task: bool = Field(True, description="also train the two single-task models")
    log_models: bool = Field(False, description="log every trained model to MLflow (317 MB each)")

    PROFILE_DEFAULTS: ClassVar = {
        "quick": {"epochs": 1, "train_size": 3_000, "test_size": 1_000},
        "paper": {"epochs": 10, "log_models": True},
    }

    @field_validator("lambdas")
    @classmethod
    def _distinct_finite_lambdas(cls, lambdas):
        if not lambdas:
            raise ValueError("give at least one lambda")
        if any(not math.isfinite(value) for value in lambdas):
            raise ValueError(f"every lambda must be a number in [0, 1], got {lambdas}")
        if len(set(lambdas)) != len(lambdas):
            raise ValueError(f"lambdas must be distinct, got {lambdas}")
        return lambdas

    @field_validator("group_mapping")
    @classmethod
    def _every_class_in_one_group(cls, group_mapping):
        check_group_mapping(group_mapping)
        return group_mapping


@flow(name="mtl")
def mtl_flow(
    profile: Profile = "quick",
    seed: int | None = None,
    force: bool | None = None,
    lambdas: list[float] | None = None,
    group_mapping: dict[str, list[int]] | None = None,
    include_single_task: bool | None = None,
    log_models: bool | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    validation_fraction: float | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    precision: Precision | None = None,
) -> list[dict]:
    config = MtlConfig.for_profile(profile, **flow_parameters(locals()))
    dataset = subset(load_dataset("fashion-mnist"), config.train_size, config.test_size, config.seed)
    data = mtl_data(dataset, config.group_mapping, config.validation_fraction, config.seed)
    settings = TrainSettings(config.epochs, config.batch_size, config.learning_rate, config.seed,
                             precision=config.precision)
    with parent_run("mtl", config, dataset) as recorder:
        outcomes = [run_step(train_variant_task, variant, data, settings, config.log_models, parent=recorder,
                             force=config.force)
                    for variant in variants(config.lambdas, config.include_single_task)]
        table = log_mtl_summary_task(recorder, outcomes, len(config.group_mapping))
    return table.to_dict(orient="records")
