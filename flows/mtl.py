"""Study part 6: multi-task learning on Fashion-MNIST across the loss weight lambda, against
single-task models. One child run per model; the original's table and the figures on the parent run."""

from __future__ import annotations

from flows.common import parent_run, part_flow
from studyflow.config.parts import MtlConfig
from studyflow.fanout import fan_out, trained_outcomes
from tasks.data import load_dataset, subset
from tasks.mtl.compute import mtl_data, variants
from tasks.mtl.tasks import log_mtl_summary_task, train_variant_task
from tasks.replicates.groups import replicate_groups
from tasks.replicates.tasks import record_replicate_groups_task


@part_flow("mtl", MtlConfig)
def mtl_flow(config: MtlConfig) -> list[dict]:
    """The two single-task models and one MTL model per lambda, each seed in its own child run (with
    several seeds, under the model's replicate group run)."""
    dataset = subset(load_dataset("fashion-mnist"), config.train_size, config.test_size, config.seed)
    data = mtl_data(dataset, config.group_mapping, config.validation_fraction, config.seed)
    models = variants(config.lambdas, config.include_single_task)
    seeds = config.replicate_seeds()
    with parent_run("mtl", config, dataset) as recorder:
        with replicate_groups(recorder, {variant.label: variant.name for variant in models}, seeds) as groups:
            with fan_out(config, parent=recorder, force=config.force) as steps:
                for seed in seeds:
                    settings = config.train_settings().model_copy(update={"seed": seed})
                    for variant in models:
                        steps.add(
                            f"{variant.label} seed {seed}",
                            train_variant_task,
                            variant,
                            data,
                            settings,
                            config.log_models,
                            under=groups.under(variant.label),
                        )
                finished = steps.gather()
            outcomes = trained_outcomes(finished, "multi-task")
            if groups.runs:
                record_replicate_groups_task(groups, [(outcome.variant.label, outcome.run_id) for outcome in outcomes])
        table = log_mtl_summary_task(recorder, outcomes, len(config.group_mapping))
    return table.to_dict(orient="records")
