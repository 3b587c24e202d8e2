"""The whole study: every part in order, each as a subflow with its own MLflow parent run."""

from __future__ import annotations

from flows.common import part_flow
from flows.registry import PARTS
from flows.report import report_flow
from studyflow.config.parts import StudyConfig


@part_flow("study", StudyConfig)
def study_flow(config: StudyConfig) -> dict:
    """Every part of the study in order, then the report."""
    results = {}
    for name, part in PARTS.items():  # study order, whatever order the caller listed them in
        if name in config.parts:
            # The parts that train networks take the precision; the others have no such parameter.
            training = {"precision": config.precision} if "precision" in part.config.model_fields else {}
            results[name] = part.flow(profile=config.profile, seed=config.seed, force=config.force, **training)
    if config.report:
        results["report"] = report_flow(profile=config.profile, seed=config.seed)
    return results
