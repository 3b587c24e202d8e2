"""The configs that span the parts: the whole study (`run study`) and its report."""

from __future__ import annotations

from pydantic import Field, field_validator

from studyflow.config.base import FannedOut, PartConfig, PrecisionChoice, Replicated, StepConfig, TrainingConfig
from studyflow.config.parts import PART_NAMES


class StudyConfig(StepConfig, Replicated, FannedOut):
    parts: list[str] = Field(default_factory=lambda: list(PART_NAMES), description="parts to run, in study order")
    report: bool = Field(True, description="end with the study report (reports/<timestamp>/)")
    precision: PrecisionChoice = TrainingConfig.model_fields["precision"]

    @field_validator("parts")
    @classmethod
    def _known_parts(cls, parts):
        unknown = [part for part in parts if part not in PART_NAMES]
        if unknown:
            raise ValueError(f"unknown part(s) {unknown}; known: {list(PART_NAMES)}")
        if not parts:
            raise ValueError("give at least one part")
        return parts


class ReportConfig(PartConfig):
    out_dir: str | None = Field(None, description="folder to write into (default: reports/<timestamp>/)")
    run_ids: dict[str, str] = Field(
        default_factory=dict, description="part -> parent run id to report (default: latest)"
    )
    published: bool = Field(
        False,
        description="a report to commit: every part's run must be paper-profile; run ids "
        "instead of links to a local MLflow UI; the folder's old figures go",
    )

    @field_validator("run_ids")
    @classmethod
    def _known_parts(cls, run_ids):
        unknown = sorted(set(run_ids) - set(PART_NAMES))
        if unknown:
            raise ValueError(f"unknown part(s) {unknown}; known: {list(PART_NAMES)}")
        return run_ids
