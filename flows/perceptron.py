"""Study part 2: perceptrons on pairs of MNIST digits."""

from __future__ import annotations

from flows.common import parent_run, part_flow
from studyflow.config.parts import PerceptronConfig
from studyflow.steps import run_step
from tasks.data import load_dataset, subset
from tasks.perceptron.compute import pair_data
from tasks.perceptron.tasks import log_perceptron_summary_task, train_pair_task


@part_flow("perceptron", PerceptronConfig)
def perceptron_flow(config: PerceptronConfig) -> list[dict]:
    """A perceptron per digit pair and seed, each in its own child run; the train-test gap across pairs."""
    dataset = subset(load_dataset("mnist"), config.train_size, config.test_size, config.seed)
    settings = config.perceptron_settings()
    with parent_run("perceptron", config, dataset) as recorder:
        # A pair's images are selected when it is trained, not all at once: 45 pairs' float64 copies
        # would hold gigabytes.
        results = [
            run_step(train_pair_task, pair_data(dataset, pair, config.pixel_range),
                     settings.model_copy(update={"seed": seed}), parent=recorder, force=config.force)
            for seed in config.replicate_seeds() for pair in config.resolved_pairs()
        ]
        summary = log_perceptron_summary_task(recorder, results)
    return summary.to_dict(orient="records")
