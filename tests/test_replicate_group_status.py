"""How replicate group runs end: FAILED or KILLED with their part, never left RUNNING, and FAILED on
their own when none of their seeds finished; a seed run a dead Dask worker left RUNNING is closed
KILLED under its group, which stays open for its statistics."""

import contextlib

import pytest

from studyflow.tracking.names import Tag


@pytest.mark.parametrize(
    "stop, status, reason",
    [
        (None, "FAILED", "no seed of this model finished"),
        (RuntimeError("the part broke"), "FAILED", "the part broke"),
        (KeyboardInterrupt(), "KILLED", "interrupted (SIGINT"),
    ],
)
def test_group_runs_end_with_the_part_never_running(mlflow_client, stop, status, reason):
    """Group runs end FAILED or KILLED with the part; a group whose every seed failed, FAILED on its own
    (its part goes on and ends FINISHED)."""
    from studyflow import tracking
    from tasks.replicates.groups import replicate_groups

    with pytest.raises(type(stop)) if stop else contextlib.nullcontext():
        with tracking.tracked_run(
            mlflow_client, "mlp", "mlp-quick", profile="quick", seed=0, dataset_digest="none"
        ) as parent:
            with replicate_groups(parent, {"MLP-a": "MLP-a", "MLP-b": "MLP-b"}, [0, 1]) as groups:
                group_ids = [group.run_id for group in groups.runs.values()]
                if stop is None:
                    groups.record([])  # no seed finished
                else:
                    raise stop
    assert mlflow_client.get_run(parent.run_id).info.status == ("FINISHED" if stop is None else status)
    for run_id in group_ids:
        group = mlflow_client.get_run(run_id)
        assert group.info.status == status and reason in group.data.tags[Tag.END_REASON]
        assert group.data.tags["mlflow.parentRunId"] == parent.run_id


def test_runs_left_running_by_dead_workers_are_closed_under_their_group_which_stays_open(mlflow_client):
    """After a fanned-out part's steps: a seed run a dead worker left RUNNING under its group is closed
    KILLED; the group itself, still to receive its statistics, is not."""
    from studyflow import tracking
    from studyflow.fanout import close_leftover_children
    from tasks.replicates.groups import replicate_groups

    with tracking.tracked_run(
        mlflow_client, "mlp", "mlp-quick", profile="quick", seed=0, dataset_digest="none"
    ) as parent:
        with replicate_groups(parent, {"MLP-a": "MLP-a"}, [0, 1]) as groups:
            group = groups.under("MLP-a")
            left = mlflow_client.create_run(
                parent.experiment_id, run_name="MLP-a-seed-1", tags={"mlflow.parentRunId": group.run_id}
            ).info.run_id
            assert close_leftover_children(parent, "its Dask worker died") == [left]
            assert mlflow_client.get_run(group.run_id).info.status == "RUNNING"
            groups.record([])
    assert mlflow_client.get_run(left).info.status == "KILLED"
    assert "its Dask worker died" in mlflow_client.get_run(left).data.tags[Tag.END_REASON]
