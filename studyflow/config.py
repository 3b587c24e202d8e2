"""Typed, validated configuration shared by the flows and the command line.

Each study part has a config model: its fields are the flow's parameters. A field left unset
(None) takes the value of the chosen profile: `quick` (subsets, few epochs: a part in a minute or
two on 2 cores) or `paper` (the settings of the original study). Unknown keys are an error at once.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Profile = Literal["quick", "paper"]
PROFILES: tuple[str, ...] = ("quick", "paper")
# Keras dtype policies a model can be trained in (see tasks.training.precision_policy).
Precision = Literal["float32", "mixed_bfloat16"]


class ConfigError(ValueError):
    """A parameter is unknown or has a bad value; the message names the parameter."""


class PartConfig(BaseModel):
    """Settings every study part has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Profile = "quick"
    seed: int = Field(0, ge=0, description="seeds sampling, splits and weight initialisation")

    # Values that each profile gives to fields the caller leaves unset.
    PROFILE_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {"quick": {}, "paper": {}}

    @classmethod
    def for_profile(cls, profile: str = "quick", **overrides: Any) -> Self:
        """Build the config of a profile with the caller's overrides (None means 'profile value')."""
        if profile not in PROFILES:
            raise ConfigError(f"parameter 'profile': unknown profile {profile!r}; choose one of {PROFILES}")
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {', '.join(unknown)} for {cls.__name__}; "
                f"known: {', '.join(sorted(cls.model_fields))}"
            )
        values = dict(cls.PROFILE_DEFAULTS.get(profile, {}))
        values.update({key: value for key, value in overrides.items() if value is not None})
        values["profile"] = profile
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from exc


class StepConfig(PartConfig):
    """Settings of a part whose expensive steps are reused by a rerun (see studyflow.steps)."""

    force: bool = Field(False, description="redo every step, even one that a finished run already did "
                                           "with the same inputs, code and data")


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "config"
        lines.append(f"parameter '{location}': {error['msg']} (got {error.get('input')!r})")
    return "; ".join(lines)


def parse_set_options(assignments: list[str]) -> dict[str, Any]:
    """Turn `--set NAME=VALUE` strings into a dict; VALUE is JSON where it parses, else a string."""
    values: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set expects NAME=VALUE, got {assignment!r}")
        try:
            values[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[name.strip()] = raw
    return values


class TrainingConfig(PartConfig):
    """Settings every part that trains networks has (MLP, CNN, multi-task, sweeps)."""

    epochs: int = Field(10, ge=1, le=1000)
    batch_size: int = Field(128, ge=1, le=60_000)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0, description="Adam's learning rate")
    validation_fraction: float = Field(
        0.1, gt=0.0, lt=1.0, description="share of the training set held out for model selection"
    )
    train_size: int | None = Field(None, ge=100, description="training images drawn (None: all 60,000)")
    test_size: int | None = Field(None, ge=100, description="test images drawn (None: all 10,000)")
    precision: Precision = Field(
        "float32", description="Keras dtype policy: mixed_bfloat16 computes in bfloat16 with float32 weights, "
                               "faster on CPUs with native bf16 (AVX512-BF16, AMX), emulated and slower elsewhere")
