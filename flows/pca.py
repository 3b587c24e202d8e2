"""Study part 1: PCA map of MNIST and linear separability of the 45 digit pairs."""

from __future__ import annotations

from typing import Annotated, ClassVar

from prefect import flow
from pydantic import Field

from flows.common import flow_parameters, parent_run
from studyflow.config import Profile, StepConfig
from studyflow.steps import run_step
from tasks.data import load_dataset
from tasks.pca.compute import build_pca_map_task, separability_task
from tasks.pca.record import log_pca_results_task


class PcaConfig(StepConfig):
    sample_size: int = Field(10_000, ge=200, le=60_000, description="images the PCA is fitted on (seeded sample)")
    holdout_fraction: float = Field(0.25, gt=0.0, lt=1.0, description="share of each pair's samples held out")
    svc_max_iter: int = Field(10_000, ge=1, description="LinearSVC max_iter")
    dimensions: list[Annotated[int, Field(ge=2, le=784)]] = Field(
        [10, 50], description="further PCA dimensions in which the pair accuracies are computed"
    )

    PROFILE_DEFAULTS: ClassVar = {"quick": {"sample_size": 5_000}, "paper": {}}


@flow(name="pca")
def pca_flow(
    profile: Profile = "quick",
    seed: int | None = None,
    force: bool | None = None,
    sample_size: int | None = None,
    holdout_fraction: float | None = None,
    svc_max_iter: int | None = None,
    dimensions: list[int] | None = None,
) -> dict[str, float]:
    config = PcaConfig.for_profile(profile, **flow_parameters(locals()))
    dataset = load_dataset("mnist")
    with parent_run("pca", config, dataset) as recorder:
        pca_map = run_step(build_pca_map_task, dataset.train_images, dataset.train_labels, config.sample_size,
                           config.seed, force=config.force)
        by_dimension = run_step(separability_task, pca_map, config.dimensions, config.holdout_fraction,
                                config.svc_max_iter, config.seed, force=config.force)
        metrics = log_pca_results_task(recorder, pca_map, by_dimension)
    return metrics
