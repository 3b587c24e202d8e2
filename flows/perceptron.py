"""Study part 2: perceptrons on pairs of MNIST digits."""

from __future__ import annotations

from flows.common import parent_run, part_flow
from studyflow.config.parts import PerceptronConfig
from studyflow.fanout import fan_out
from studyflow.tracking.names import pair_label, pair_run_name, pair_tag
from tasks.data import load_dataset, subset
from tasks.perceptron.compute import pair_data
from tasks.perceptron.tasks import log_perceptron_summary_task, train_pair_task
from tasks.replicates.groups import replicate_groups
from tasks.replicates.tasks import record_replicate_groups_task


@part_flow("perceptron", PerceptronConfig)
def perceptron_flow(config: PerceptronConfig) -> list[dict]:
    """A perceptron per digit pair and seed, each in its own child run (with several seeds, under the
    pair's replicate group run); the train-test gap across pairs."""
    dataset = subset(load_dataset("mnist"), config.train_size, config.test_size, config.seed)
    settings = config.perceptron_settings()
    seeds, pairs = config.replicate_seeds(), config.resolved_pairs()
    models_of = {pair: pair_label(pair_tag(pair)) for pair in pairs}  # the summary's row of each pair
    models = {models_of[pair]: pair_run_name(pair) for pair in pairs}
    with parent_run("perceptron", config, dataset) as recorder:
        with replicate_groups(recorder, models, seeds) as groups:
            # A pair's images are selected when it is trained, not all at once: 45 pairs' float64 copies
            # would hold gigabytes (on a Dask cluster each pair's copy leaves with its task).
            with fan_out(config, parent=recorder, force=config.force) as steps:
                for seed in seeds:
                    for pair in pairs:
                        images, group = (pair_data(dataset, pair, config.pixel_range), groups.under(models_of[pair]))
                        steps.add(
                            f"pair {pair} seed {seed}",
                            train_pair_task,
                            images,
                            settings.model_copy(update={"seed": seed}),
                            under=group,
                        )
                results = [result for _, result in steps.gather()]
            for result in results:
                if isinstance(result, Exception):
                    raise result  # a pair that fails stops the part, as it always did
            if groups.runs:
                record_replicate_groups_task(groups, [(models_of[result.pair], result.run_id) for result in results])
        summary = log_perceptron_summary_task(recorder, results)
    return summary.to_dict(orient="records")
