"""Part 1's Prefect tasks: the PCA map and the pair separability (reusable steps), and their record."""

from __future__ import annotations

from tasks.pca.compute import build_pca_map, separability_by_dimension
from tasks.pca.record import log_pca_results
from tasks.prefect_task import step_task, studyflow_task

# Steps (pure: no run of their own): a rerun with the same inputs, code and data reuses their results.
build_pca_map_task = step_task(build_pca_map, ignored=(), name="pca-map")
separability_task = step_task(separability_by_dimension, ignored=(), name="pair-separability")
log_pca_results_task = studyflow_task(log_pca_results, name="log-pca-results")
