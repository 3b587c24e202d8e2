"""Replicate groups: with several seeds, each model of a part gets an MLflow run of its own under the
part's parent run, with its seed runs nested under it. MLflow's UI cannot show runs as a mean with a
spread; the group run is that view, made of ordinary metrics the runs table, the compare view and
the charts already show:

- `<metric>_mean`, `_std`, `_ci95_low`, `_ci95_high` for every final metric of its seeds (each seed
  run's latest value; MLflow's system metrics left out), the 95 % Student's t interval of
  `tasks.replicates.compute.interval`, the one the part's summary table and the report use; `seeds`,
  how many finished. Logged at step 0.
- each per-epoch (per-iteration) curve of its seeds as the mean over seeds at every step, under the
  seeds' own metric name (`val_accuracy` at steps 1..epochs): a chart of `val_accuracy` draws one
  mean curve per model.
- the params its seeds share (all but `seed`), and the tags `studyflow.run_level=replicate_group`,
  `studyflow.replicate_group=<model>` (its row in `tables/<part>_summary`), `studyflow.replicate_seeds`
  and `studyflow.replicate_seed_run_ids`. A group carries none of the tags a training run is found
  by (`studyflow.architecture`, `studyflow.pair`, `studyflow.tasks`), and `tracking.member_runs`
  returns its seed runs, never the group itself.

How a seed run finds its group, wherever it is trained: the groups are opened before the trainings,
and each training step is given its model's group run as the run it opens its own under
(`fan_out`'s `steps.add(..., under=group)`); a Dask worker receives the group's RunRecorder with
the step. A step reused from an earlier command names its old MLflow run, which stays under the
parent it was made under: the new group lists it in `studyflow.reused_run_ids` (as the part's parent
run does, studyflow.steps) and every seed run it is made of, nested or reused, in
`studyflow.replicate_seed_run_ids`. Its statistics are read back from those runs in the store.

With one seed there are no groups: each seed run opens under the part's parent run, as before.
A group run ends FINISHED once its statistics are logged, FAILED or KILLED with the part if the part
fails or is stopped, and FAILED on its own (with the reason) if none of its seeds finished.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.utils.time import get_current_time_millis

from studyflow import tracking
from studyflow.tracking import RunLevel, RunRecorder, Tag
from studyflow.tracking.descriptions import DESCRIPTION_TAG
from studyflow.tracking.names import replicate_group_run_name
from tasks.replicates.compute import group_statistics, mean_curves

SYSTEM_METRICS_PREFIX = "system/"  # MLflow's CPU, memory, disk and network samples: not the model's
BATCH_LIMIT = 1000  # MLflow's log_batch takes at most 1000 metrics per call


@dataclass(frozen=True)
class SeedRun:
    """What a group is computed from: one seed run as the store holds it."""

    run_id: str
    seed: str
    params: dict[str, str]
    finals: dict[str, float]  # each metric's latest value
    curves: dict[str, dict[int, float]]  # metrics logged at steps >= 1: step -> value


def read_seed_run(client: MlflowClient, run_id: str) -> SeedRun:
    run = client.get_run(run_id)
    finals = {key: value for key, value in run.data.metrics.items() if not key.startswith(SYSTEM_METRICS_PREFIX)}
    curves = {}
    for key in finals:
        by_step: dict[int, float] = {}
        for point in sorted(client.get_metric_history(run_id, key), key=lambda point: (point.step, point.timestamp)):
            by_step[int(point.step)] = float(point.value)  # a step logged twice: its latest value, as MLflow shows
        if any(step >= 1 for step in by_step):
            curves[key] = by_step
    return SeedRun(run_id, run.data.tags.get(Tag.SEED, ""), dict(run.data.params), finals, curves)


def shared_params(seeds: list[SeedRun]) -> dict[str, str]:
    """The params every seed run has with the same value (the model's), without `seed`."""
    first, *others = seeds
    return {
        key: value
        for key, value in first.params.items()
        if key != "seed" and all(other.params.get(key) == value for other in others)
    }


def group_description(model: str, seeds: list[int]) -> str:
    return (
        f"{model} over seeds {', '.join(map(str, seeds))}: each final metric's mean, standard deviation and "
        "95 % Student's t interval over the seeds (`<metric>_mean`, `_std`, `_ci95_low`, `_ci95_high`), and "
        "each per-epoch curve as its mean over the seeds (under the seeds' metric name). Its seed runs are "
        "nested under it; seed runs reused from an earlier command stay under their first parent and are "
        f"listed in the tag `{Tag.REPLICATE_SEED_RUN_IDS}`."
    )


class ReplicateGroups:
    """A part's open group runs, by model (empty with one seed)."""

    def __init__(self, runs: dict[str, RunRecorder]):
        self.runs = runs

    def under(self, model: str) -> RunRecorder | None:
        """The run a seed of `model` opens its run under: its group run, or None (one seed: the part's parent)."""
        return self.runs.get(model)

    def record(self, seed_runs: list[tuple[str, str]]) -> None:
        """Log each group's statistics from its finished seed runs ((model, run id) pairs, reused
        runs included)."""
        for model, group in self.runs.items():
            record_group(group, [run_id for owner, run_id in seed_runs if owner == model])


@contextmanager
def replicate_groups(parent: RunRecorder, models: dict[str, str], seeds: list[int]) -> Iterator[ReplicateGroups]:
    """One open group run per model under `parent` when there are several seeds; none with one.

    `models`: each model's label (its row of the part's summary table) -> the name its seed runs are
    named after ("MLP-1", whose seeds are "MLP-1-seed-0", ...). The runs end with the block (see
    the module)."""
    if len(seeds) < 2:
        yield ReplicateGroups({})
        return
    with ExitStack() as stack:
        runs = {}
        for model, run_name in models.items():
            tags = {
                Tag.RUN_LEVEL: RunLevel.REPLICATE_GROUP,
                Tag.REPLICATE_GROUP: model,
                Tag.REPLICATE_SEEDS: ",".join(map(str, seeds)),
                DESCRIPTION_TAG: group_description(model, seeds),
            }
            group = stack.enter_context(
                tracking.tracked_run(
                    parent.client,
                    run_name=replicate_group_run_name(run_name),
                    parent_run_id=parent.run_id,
                    tags=tags,
                    **parent.context,
                )
            )
            group.system_metrics = parent.system_metrics  # for the seed runs opened under it
            runs[model] = group
        yield ReplicateGroups(runs)


def record_group(group: RunRecorder, run_ids: list[str]) -> None:
    """The group's statistics and mean curves from its seed runs, read back from the store."""
    if not run_ids:
        group.close("FAILED", "no seed of this model finished: every seed's training failed")
        return
    seeds = [read_seed_run(group.client, run_id) for run_id in run_ids]
    group.log_params(shared_params(seeds))
    group.log_metrics({**group_statistics([seed.finals for seed in seeds]), "seeds": len(seeds)})
    now = get_current_time_millis()
    points = [
        Metric(key, value, now, step)
        for key, curve in mean_curves([seed.curves for seed in seeds]).items()
        for step, value in curve.items()
    ]
    for start in range(0, len(points), BATCH_LIMIT):
        group.client.log_batch(group.run_id, metrics=points[start : start + BATCH_LIMIT])
    group.set_tags(
        {
            Tag.REPLICATE_SEED_RUN_IDS: ",".join(run_ids),
            Tag.REPLICATE_SEEDS: ",".join(sorted({seed.seed for seed in seeds}, key=_seed_order)),
        }
    )


def _seed_order(seed: str) -> tuple[int, str]:
    return (int(seed), "") if seed.isdigit() else (-1, seed)
