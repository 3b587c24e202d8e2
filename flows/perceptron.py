"""Study part 2: perceptrons on pairs of MNIST digits."""

from __future__ import annotations

from flows.common import parent_run, part_flow
from studyflow.config.parts import PerceptronConfig
from studyflow.fanout import fan_out
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
        # would hold gigabytes (on a Dask cluster each pair's copy leaves with its task).
        with fan_out(config, parent=recorder, force=config.force) as steps:
            for seed in config.replicate_seeds():
                for pair in config.resolved_pairs():
                    steps.add(f"pair {pair} seed {seed}", train_pair_task, pair_data(dataset, pair, config.pixel_range),
                              settings.model_copy(update={"seed": seed}))
            results = [result for _, result in steps.gather()]
        for result in results:
            if isinstance(result, Exception):
                raise result  # a pair that fails stops the part, as it always did
        summary = log_perceptron_summary_task(recorder, results)
    return summary.to_dict(orient="records")
