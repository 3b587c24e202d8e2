import pytest

from studyflow import tracking
from studyflow.tracking.names import PREFIX, Tag


def _open(client, name="r"):
    return tracking.tracked_run(client, "unit", name, profile="quick", seed=3, dataset_digest="d" * 64)


def test_finished_run_carries_every_convention_tag(mlflow_client):
    with _open(mlflow_client) as run:
        with run.child("child") as child:
            child.log_metrics({"m": 1.0})
    parent = mlflow_client.get_run(run.run_id)
    nested = mlflow_client.get_run(child.run_id)
    assert parent.info.status == "FINISHED" and nested.info.status == "FINISHED"
    assert nested.data.tags["mlflow.parentRunId"] == run.run_id
    for tags in (parent.data.tags, nested.data.tags):
        for key in (
            "git_commit",
            "git_dirty",
            "profile",
            "seed",
            "dataset_digest",
            "prefect_flow_run_id",
            "prefect_task_run_id",
            "version.tensorflow-cpu",
            "version.mlflow",
        ):
            assert PREFIX + key in tags, key
        assert tags[Tag.SEED] == "3" and tags[Tag.DATASET_DIGEST] == "d" * 64
    experiment = mlflow_client.get_experiment(parent.info.experiment_id)
    assert experiment.name == "studyflow-unit"
    assert experiment.artifact_location.startswith("file://")


def test_exception_leaves_run_failed_with_reason(mlflow_client):
    with pytest.raises(RuntimeError):
        with _open(mlflow_client) as run:
            raise RuntimeError("boom")
    ended = mlflow_client.get_run(run.run_id)
    assert ended.info.status == "FAILED"
    assert "boom" in ended.data.tags[Tag.END_REASON]


def test_interrupt_leaves_run_killed(mlflow_client):
    with pytest.raises(KeyboardInterrupt):
        with _open(mlflow_client) as run:
            raise KeyboardInterrupt
    assert mlflow_client.get_run(run.run_id).info.status == "KILLED"


def test_unreachable_tracking_server_is_named(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(tracking.TrackingError, match=r"http://127\.0\.0\.1:9"):
        tracking.connect()


def test_default_store_is_sqlite_under_mlruns(studyflow_home):
    assert tracking.tracking_uri() == f"sqlite:///{studyflow_home}/mlruns/mlflow.db"
    tracking.connect()
    assert tracking.uses_embedded_store()


def test_logged_model_names_keep_only_what_mlflow_accepts():
    from studyflow.tracking.names import logged_model_name

    assert logged_model_name("mtl-lambda-0.25") == "mtl-lambda-0_25"
    assert logged_model_name("CNN-1") == "CNN-1"
    assert logged_model_name("a/b:c%d'e\"f") == "a_b_c_d_e_f"
