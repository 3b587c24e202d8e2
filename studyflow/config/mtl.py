"""Part 6's config: multi-task learning on Fashion-MNIST over the loss weight lambda."""

from __future__ import annotations

import math
from typing import Annotated, ClassVar

from pydantic import Field, field_validator

from studyflow import reference
from studyflow.config.base import FannedOut, Replicated, StepConfig, TrainingConfig

Lambda = Annotated[float, Field(ge=0.0, le=1.0)]
DEFAULT_LAMBDAS = [0.0, 0.25, 0.5, 0.75, 1.0]
ITEM_CLASSES = 10


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
                where = (
                    f"listed twice in group {group!r}"
                    if seen[item] == group
                    else f"in two groups: {seen[item]!r} and {group!r}"
                )
                raise ValueError(f"class {item} is {where}")
            seen[item] = group
    missing = sorted(set(range(ITEM_CLASSES)) - set(seen))
    if missing:
        raise ValueError(f"class(es) {missing} are in no group")


class MtlConfig(TrainingConfig, StepConfig, Replicated, FannedOut):
    """Part 6. The paper profile trains 10 epochs on the full data: the original does not state its
    epoch count; 10 is what it trained its conv nets with in part 4, and with Adam at 1e-3 a CNN of
    this size on Fashion-MNIST is near its test-accuracy plateau by then.

    Models are logged only in the paper profile (`log_models`): a 26 M-parameter model with its Adam
    state is a file of a few hundred MB, which a quick smoke run has no use for.
    """

    lambdas: list[Lambda] = Field(
        default_factory=lambda: list(DEFAULT_LAMBDAS), description="weights of the task-1 loss, one MTL model each"
    )
    group_mapping: dict[str, list[int]] = Field(
        default_factory=reference.fashion_groups, description="task-2 group name -> Fashion-MNIST class ids"
    )
    include_single_task: bool = Field(True, description="also train the two single-task models")
    log_models: bool = Field(True, description="log every trained model to MLflow (a few hundred MB each)")

    PROFILE_DEFAULTS: ClassVar = {
        # Two points per curve; three lambdas (both ends and the middle) still draw the lambda curve.
        "quick": {"epochs": 2, "train_size": 600, "test_size": 500, "lambdas": [0.0, 0.5, 1.0], "log_models": False}
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
