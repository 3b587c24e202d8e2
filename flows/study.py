"""The whole study: every part in order, each as a subflow with its own MLflow parent run."""

from __future__ import annotations

from flows.common import part_flow
from flows.registry import PARTS
from flows.report import report_flow
from studyflow.cluster import shared_local_cluster
from studyflow.config.study import StudyConfig


@part_flow("study", StudyConfig)
def study_flow(config: StudyConfig) -> dict:
    """Every part of the study in order, then the report."""
    results = {}
    with shared_local_cluster(config):  # workers > 1: one local Dask cluster for every part
        _run_parts(config, results)
    if config.report:
        results["report"] = report_flow(profile=config.profile, seed=config.seed)
    return results


def _run_parts(config: StudyConfig, results: dict) -> None:
    for name, part in PARTS.items():  # study order, whatever order the caller listed them in
        if name in config.parts:
            # Only the parts that have them take the precision (the networks), the seeds (the replicated)
            # and the Dask settings (those with several independent trainings).
            shared = {
                key: value
                for key, value in {
                    "precision": config.precision,
                    "seeds": config.seeds,
                    "workers": config.workers,
                    "dask_address": config.dask_address,
                }.items()
                if key in part.config.model_fields
            }
            results[name] = part.flow(profile=config.profile, seed=config.seed, force=config.force, **shared)
