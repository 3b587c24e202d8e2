"""Study part 2 end to end on a subset, against a real MLflow store and Prefect server."""

import pytest

from flows.perceptron import perceptron_flow
from studyflow.errors import ConfigError
from studyflow.tracking.names import Tag

from conftest import assert_png, download, runs_of


def test_perceptron_flow_child_runs_metrics_and_figures(prefect_server, mlflow_client):
    summary = perceptron_flow(profile="quick", pairs=[[1, 0], [4, 9]], max_epochs=30, train_size=6000)
    runs = runs_of(mlflow_client, "perceptron")
    parent = next(run for run in runs if "mlflow.parentRunId" not in run.data.tags)
    children = {run.info.run_name: run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {"perceptron-1-vs-0-seed-0", "perceptron-4-vs-9-seed-0"}
    assert all(run.info.status == "FINISHED" for run in runs)
    one_zero = children["perceptron-1-vs-0-seed-0"]
    assert one_zero.data.metrics["test_accuracy"] > 0.98
    epochs = int(one_zero.data.metrics["epochs_run"])
    history = mlflow_client.get_metric_history(one_zero.info.run_id, "train_error")
    assert [point.step for point in history] == list(range(1, epochs + 1))
    assert history[-1].value <= history[0].value
    for child in children.values():
        assert child.data.tags[Tag.RUN_LEVEL] == "child"
        assert child.data.tags[Tag.PREFECT_TASK_RUN_ID]
        assert_png(download(mlflow_client, child.info.run_id, "figures/weights.png"))
    for figure in ("train_test_gap.png", "training_error.png"):
        assert_png(download(mlflow_client, parent.info.run_id, f"figures/{figure}"))
    table = download(mlflow_client, parent.info.run_id, "tables/perceptron_pairs.csv").read_text()
    assert table.splitlines()[0] == "model,seed,train_accuracy,test_accuracy,train_test_gap,epochs_run,run_id"
    assert [row["model"] for row in summary] == ["1 vs 0", "4 vs 9"]
    assert [row["seeds"] for row in summary] == [1, 1]


def test_pair_with_digit_outside_range_fails_before_any_run(prefect_server, mlflow_client):
    with pytest.raises(ConfigError, match="parameter 'pairs"):
        perceptron_flow(profile="quick", pairs=[[1, 12]])
    assert runs_of(mlflow_client, "perceptron") == []
