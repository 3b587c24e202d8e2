"""Study part 2 end to end on a subset, against a real MLflow store and Prefect server."""

import pytest
from conftest import assert_png, download, runs_of

from flows.perceptron import perceptron_flow
from studyflow.config.parts import PerceptronConfig
from studyflow.errors import ConfigError
from studyflow.tracking.names import Tag
from tasks.data import load_dataset, subset
from tasks.perceptron.compute import pair_data, train_perceptron
from tasks.perceptron.record import curve_points


@pytest.mark.integration
def test_perceptron_flow_child_runs_metrics_and_figures(prefect_server, mlflow_client):
    summary = perceptron_flow(profile="quick", pairs=[[1, 0], [4, 9]], max_epochs=1000, train_size=6000)
    runs = runs_of(mlflow_client, "perceptron")
    parent = next(run for run in runs if "mlflow.parentRunId" not in run.data.tags)
    children = {run.info.run_name: run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {"perceptron-1-vs-0-seed-0", "perceptron-4-vs-9-seed-0"}
    assert all(run.info.status == "FINISHED" for run in runs)
    one_zero, four_nine = children["perceptron-1-vs-0-seed-0"], children["perceptron-4-vs-9-seed-0"]
    assert one_zero.data.metrics["test_accuracy"] > 0.99
    assert four_nine.data.metrics["test_accuracy"] > 0.9
    # The original's stopping rule: 1 vs 0 gets below a training error of 1e-3 before the cap, 4 vs 9 not.
    epochs = int(one_zero.data.metrics["epochs_run"])
    assert 1 < epochs < 1000 and int(four_nine.data.metrics["epochs_run"]) == 1000
    history = mlflow_client.get_metric_history(one_zero.info.run_id, "train_error")
    assert [point.step for point in history] == list(range(1, epochs + 1))
    assert history[-1].value < 1e-3 <= history[0].value
    assert one_zero.data.params["init_scale"] == "0.5" and one_zero.data.params["learning_rate"] == "0.01"
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


@pytest.mark.integration
def test_pair_with_digit_outside_range_fails_before_any_run(prefect_server, mlflow_client):
    with pytest.raises(ConfigError, match="parameter 'pairs"):
        perceptron_flow(profile="quick", pairs=[[1, 12]])
    assert runs_of(mlflow_client, "perceptron") == []


def test_perceptron_starts_from_the_seeded_random_weights():
    """Random initial weights: another seed is another start and another end; the same seed, the same."""
    data = pair_data(subset(load_dataset("mnist"), 3000, 500, 0), (8, 3), (-1.0, 1.0))
    settings = PerceptronConfig.for_profile("quick", max_epochs=5).perceptron_settings()
    first, again = train_perceptron(data, settings), train_perceptron(data, settings)
    other = train_perceptron(data, settings.model_copy(update={"seed": 1}))
    assert (first.weights == again.weights).all() and first.train_errors == again.train_errors
    assert (first.weights != other.weights).any()
    assert first.epochs_run == 5 and len(first.train_errors) == 5
    assert first.train_accuracy == pytest.approx(1 - first.train_errors[-1])


def test_a_long_error_curve_is_logged_thinned_with_its_last_point():
    errors = [1 / step for step in range(1, 5001)]
    steps, values = curve_points(errors, limit=1000)
    assert len(steps) == 1000 and steps[0] == 1 and steps[-1] == 5000
    assert values[-1] == errors[-1] and values[1] == errors[steps[1] - 1]
    assert curve_points(errors[:20]) == (list(range(1, 21)), errors[:20])
