"""The replicate groups' Prefect task: each model's statistics over its seeds, on its group run."""

from __future__ import annotations

from tasks.prefect_task import studyflow_task
from tasks.replicates.groups import ReplicateGroups


def record_replicate_groups(groups: ReplicateGroups, seed_runs: list[tuple[str, str]]) -> None:
    """`seed_runs`: (model, run id) of every seed that finished, reused ones included."""
    groups.record(seed_runs)


record_replicate_groups_task = studyflow_task(record_replicate_groups, name="record-replicate-groups")
