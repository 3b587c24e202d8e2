"""What the MLP and CNN flows share: their data, training every architecture in its child run, and
the part's body around them (compare_architectures)."""

from __future__ import annotations

from collections.abc import Callable

from flows.common import parent_run
from studyflow.config.parts import ArchitectureConfig
from studyflow.fanout import fan_out, trained_outcomes
from studyflow.tracking import RunRecorder
from tasks.architectures.compute import ArchitectureOutcome, training_data
from tasks.architectures.record import ArchitectureSummary
from tasks.architectures.tasks import log_architecture_summary_task, log_mlp_vs_cnn_task, train_architecture_task
from tasks.data import Dataset, load_dataset, subset
from tasks.replicates.groups import replicate_groups
from tasks.replicates.tasks import record_replicate_groups_task
from tasks.training import TrainingData


def prepare(config: ArchitectureConfig) -> tuple[Dataset, TrainingData]:
    dataset = subset(load_dataset("mnist"), config.train_size, config.test_size, config.seed)
    return dataset, training_data(dataset, config.validation_fraction, config.seed)


def train_all(
    recorder: RunRecorder, kind: str, config: ArchitectureConfig, data: TrainingData
) -> list[ArchitectureOutcome]:
    """Train each architecture once per seed, each (architecture, seed) in its child run; one that
    diverges (NaN loss) fails alone. Seed by seed, so an interrupted run has whole comparisons (with
    `workers` > 1 or a `dask_address`, all at once on a Dask cluster: studyflow.fanout). A training
    already done with the same inputs, code and data is reused (unless `force`): a longer list of
    seeds trains only the new ones. With several seeds, each architecture's seed runs are nested
    under its replicate group run (tasks/replicates/groups.py)."""
    seeds = config.replicate_seeds()
    with replicate_groups(recorder, {name: name for name in config.architectures}, seeds) as groups:
        with fan_out(config, parent=recorder, force=config.force) as steps:
            for seed in seeds:
                settings = config.train_settings().model_copy(update={"seed": seed})
                for name, widths in config.architectures.items():
                    steps.add(
                        f"{name} seed {seed}",
                        train_architecture_task,
                        kind,
                        name,
                        widths,
                        data,
                        settings,
                        under=groups.under(name),
                    )
            finished = steps.gather()
        outcomes = trained_outcomes(finished, kind.upper())
        if groups.runs:
            record_replicate_groups_task(groups, [(outcome.name, outcome.run_id) for outcome in outcomes])
    return outcomes


def compare_architectures(
    kind: str,
    config: ArchitectureConfig,
    then: Callable[[RunRecorder, ArchitectureSummary, Dataset, TrainingData], None] | None = None,
) -> list[dict]:
    """A part's body: its parent run, every architecture trained, the summary over seeds and its
    figures; `then` is what the part does next inside the parent run (part 4: the Model Registry)."""
    dataset, data = prepare(config)
    with parent_run(kind, config, dataset) as recorder:
        outcomes = train_all(recorder, kind, config, data)
        result = log_architecture_summary_task(recorder, kind, outcomes)
        log_mlp_vs_cnn_task(recorder, kind)
        if then is not None:
            then(recorder, result, dataset, data)
    return result.summary.to_dict(orient="records")
