"""What an MLflow and Prefect user expects to find: experiments on MLflow's model-training pages with
a description, runs with their user, datasets (train, validation, test: each its own digest),
logged models named after their architecture and holding their metrics, system metrics, and links
both ways between the Prefect flow/task runs and the MLflow runs."""

import asyncio

import pytest
from conftest import runs_of
from mlflow.entities import LoggedModelStatus

from studyflow.tracking.descriptions import DESCRIPTION_TAG, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND
from studyflow.tracking.names import Tag

pytestmark = pytest.mark.integration  # every test runs flows on the Prefect test server


def _prefect_artifacts(flow_run_id: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            )

    return asyncio.run(read())


def test_mlp_runs_follow_mlflow_and_prefect_conventions(prefect_server, mlflow_client, tiny, monkeypatch):
    from flows.mlp import mlp_flow

    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "1")  # a tiny training lasts seconds
    mlp_flow(profile="quick", architectures={"MLP-a": [256, 256]}, **dict(tiny, epochs=3, train_size=3000))
    experiment = mlflow_client.get_experiment_by_name("studyflow-mlp")
    assert experiment.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND  # the UI's training pages, not GenAI's
    assert experiment.tags[DESCRIPTION_TAG].startswith("Part 3")
    runs = runs_of(mlflow_client, "mlp")
    (parent,) = [run for run in runs if run.data.tags[Tag.RUN_LEVEL] == "parent"]
    (child,) = [run for run in runs if run.data.tags[Tag.RUN_LEVEL] == "child"]
    assert "This run: profile quick" in parent.data.tags[DESCRIPTION_TAG]
    for run in (parent, child):
        assert run.data.tags["mlflow.user"]
        flow_run_id = run.data.tags[Tag.PREFECT_FLOW_RUN_ID]
        assert run.data.tags[Tag.PREFECT_FLOW_RUN_URL].endswith(f"/runs/flow-run/{flow_run_id}")

    inputs = {item.tags[0].value: item.dataset for item in child.inputs.dataset_inputs}
    assert set(inputs) == {"train", "validation", "test"}
    assert len({dataset.digest for dataset in inputs.values()}) == 3, "each split its own digest"
    (output,) = child.outputs.model_outputs
    model = mlflow_client.get_logged_model(output.model_id)
    assert model.name == "MLP-a" and model.status == LoggedModelStatus.READY
    linked = {(metric.key, metric.dataset_name) for metric in model.metrics}
    assert {("test_accuracy", "mnist-test"), ("val_accuracy", "mnist-val"), ("train_accuracy", "mnist-train")} <= linked
    assert any(key.startswith("system/cpu_utilization") for key in child.data.metrics), sorted(child.data.metrics)

    artifacts = _prefect_artifacts(parent.data.tags[Tag.PREFECT_FLOW_RUN_ID])
    # Prefect stores a link artifact as Markdown: "[text](url)".
    links = {artifact.key: artifact for artifact in artifacts if not artifact.key.endswith("-metrics")}
    for run in (parent, child):
        url = f"/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}?workflowType=machine_learning)"
        assert any(url in artifact.data for artifact in links.values()), [a.data for a in artifacts]
    (child_link,) = [a for a in links.values() if child.info.run_id in a.data]
    assert child_link.key == "mlflow-mlp-a-seed-0"
    assert str(child_link.task_run_id) == child.data.tags[Tag.PREFECT_TASK_RUN_ID], "published by the task run"
    (metrics_table,) = [a for a in artifacts if a.key == "mlflow-mlp-a-seed-0-metrics"]
    assert f"| test_accuracy | {child.data.metrics['test_accuracy']:.4f} |" in metrics_table.data


def test_system_metrics_can_be_turned_off(prefect_server, mlflow_client, tiny, monkeypatch):
    from flows.mlp import mlp_flow

    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "1")
    mlp_flow(
        profile="quick",
        architectures={"MLP-a": [256, 256]},
        system_metrics=False,
        **dict(tiny, epochs=3, train_size=3000),
    )
    (child,) = [run for run in runs_of(mlflow_client, "mlp") if run.data.tags[Tag.RUN_LEVEL] == "child"]
    assert not any(key.startswith("system/") for key in child.data.metrics)
