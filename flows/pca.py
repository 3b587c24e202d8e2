"""Study part 1: PCA map of MNIST and linear separability of the 45 digit pairs."""

from __future__ import annotations

from flows.common import parent_run, part_flow
from studyflow.config.parts import PcaConfig
from studyflow.steps import run_step
from tasks.data import load_dataset
from tasks.pca.tasks import build_pca_map_task, log_pca_results_task, separability_task


@part_flow("pca", PcaConfig)
def pca_flow(config: PcaConfig) -> dict[str, float]:
    """PCA map of MNIST, 95 % ellipses, and LinearSVC on every digit pair in 2 and more dimensions."""
    dataset = load_dataset("mnist")
    with parent_run("pca", config, dataset) as recorder:
        pca_map = run_step(
            build_pca_map_task,
            dataset.train_images,
            dataset.train_labels,
            config.sample_size,
            config.seed,
            config.pixel_range,
            force=config.force,
        )
        by_dimension = run_step(
            separability_task,
            pca_map,
            config.dimensions,
            config.holdout_fraction,
            config.svc_max_iter,
            config.seed,
            force=config.force,
        )
        return log_pca_results_task(recorder, pca_map, by_dimension)
