"""The whole study: every part in order, each as a subflow with its own MLflow parent run."""

from __future__ import annotations

from typing import ClassVar

from prefect import flow
from pydantic import Field, field_validator

from flows.common import flow_parameters
from flows.registry import PARTS
from flows.report import report_flow
from studyflow.config import Precision, Profile, StepConfig, TrainingConfig


class StudyConfig(StepConfig):
    parts: list[str] = Field(default_factory=lambda: list(PARTS), description="parts to run, in study order")
    report: bool = Field(True, description="end with the study report (reports/<timestamp>/)")
    precision: Precision = TrainingConfig.model_fields["precision"]

    PROFILE_DEFAULTS: ClassVar = {"quick": {}, "paper": {}}

    @field_validator("parts")
    @classmethod
    def _known_parts(cls, parts):
        unknown = [part for part in parts if part not in PARTS]
        if unknown:
            raise ValueError(f"unknown part(s) {unknown}; known: {list(PARTS)}")
        if not parts:
            raise ValueError("give at least one part")
        return parts


@flow(name="study")
def study_flow(profile: Profile = "quick", seed: int | None = None, force: bool | None = None,
               parts: list[str] | None = None, report: bool | None = None, precision: Precision | None = None) -> dict:
    config = StudyConfig.for_profile(profile, **flow_parameters(locals()))
    results = {}
    for name in PARTS:  # study order, whatever order the caller listed them in
        if name in config.parts:
            part = PARTS[name]
            # The parts that train networks take the precision; the others have no such parameter.
            training = {"precision": config.precision} if "precision" in part.config.model_fields else {}
            results[name] = part.flow(profile=config.profile, seed=config.seed, force=config.force, **training)
    if config.report:
        results["report"] = report_flow(profile=config.profile, seed=config.seed)
    return results
