"""Study part 6: exact parameter counts, the group mapping, and a tiny end-to-end run."""

import math

import keras
import numpy as np
import pytest
from conftest import assert_png, download, runs_of
from mlflow.entities import LoggedModelStatus

from flows.mtl import MtlConfig, mtl_flow
from models.multitask import build_multitask
from studyflow import reference
from studyflow.config import ConfigError
from studyflow.tracking.names import Tag
from tasks.mtl.compute import group_lookup, task_metrics, variants

# The original study's part 6 figures (studyflow/reference/original_study.toml), by table row.
ORIGINAL = reference.original_study()["mtl"]
ORIGINAL_MODELS = {model["name"]: model for model in ORIGINAL["models"]}
# Its parameter counts, by the heads a model has: ours must be exactly these.
EXPECTED_PARAMETERS = {
    ("item", "group"): ORIGINAL_MODELS["MTL lambda 0.5"]["param_count"],
    ("item",): ORIGINAL_MODELS["single task 1"]["param_count"],
    ("group",): ORIGINAL_MODELS["single task 2"]["param_count"],
}


@pytest.mark.parametrize("tasks", list(EXPECTED_PARAMETERS))
def test_parameter_counts_match_the_study(tasks):
    model = build_multitask(tasks)
    assert model.count_params() == EXPECTED_PARAMETERS[tasks]
    assert sorted(model.output_names) == sorted(tasks)
    assert model.get_layer("trunk_flatten").output.shape[-1] == 6_272  # 28 -> 14 -> 7, times 128 filters
    classes = {"item": 10, "group": 3}
    assert {name: model.get_layer(name).output.shape[-1] for name in tasks} == {name: classes[name] for name in tasks}


def test_one_mtl_model_saves_the_trunk_over_two_single_task_models():
    from tasks.mtl.record import parameter_saving

    saving, percent = parameter_saving(
        EXPECTED_PARAMETERS[("item", "group")], [EXPECTED_PARAMETERS[("item",)], EXPECTED_PARAMETERS[("group",)]]
    )
    assert saving == ORIGINAL["parameter_saving"] and round(percent, 2) == ORIGINAL["parameter_saving_percent"]


def test_default_groups_label_every_class():
    lookup = group_lookup(reference.fashion_groups())
    assert lookup.tolist() == [2, 2, 2, 1, 2, 0, 1, 0, 1, 0]  # shoes 0, gendered 1, uni-sex 2


@pytest.mark.parametrize(
    "mapping",
    [
        {"shoes": [5, 7, 9], "gendered": [3, 6, 8], "uni-sex": [0, 1, 2]},  # 4 in no group
        {"shoes": [5, 7, 9], "gendered": [3, 6, 8, 4], "uni-sex": [0, 1, 2, 4]},  # 4 in two groups
        {"shoes": [5, 7, 9, 10], "gendered": [3, 6, 8], "uni-sex": [0, 1, 2, 4]},  # no class 10
        {"all": list(range(10))},  # one group is no second task
        {"shoes": [5, 7, 9], "gendered": [3, 6, 8], "uni-sex": [0, 1, 2, 4], "empty": []},
    ],
)
def test_bad_group_mappings_are_rejected(mapping):
    with pytest.raises(ConfigError, match="parameter 'group_mapping"):
        MtlConfig.for_profile("quick", group_mapping=mapping)


@pytest.mark.parametrize("lambdas", [[0.5, 1.5], [-0.1], [], [0.5, 0.5], [math.nan]])
def test_bad_lambdas_are_rejected(lambdas):
    with pytest.raises(ConfigError, match="parameter 'lambdas"):
        MtlConfig.for_profile("quick", lambdas=lambdas)


@pytest.mark.integration
def test_bad_mapping_stops_the_flow_before_any_run(prefect_server, mlflow_client):
    with pytest.raises(ConfigError, match="group_mapping"):
        mtl_flow(profile="quick", group_mapping={"a": [0, 1, 2, 3, 4], "b": [5, 6, 7, 8]})
    with pytest.raises(ConfigError, match="lambdas"):
        mtl_flow(profile="quick", lambdas=[0.5, 2.0])
    assert runs_of(mlflow_client, "mtl") == []


def test_variants_and_metric_names():
    names = [variant.name for variant in variants([0.0, 1.0], include_single_task=True)]
    assert names == ["single-task-1", "single-task-2", "mtl-lambda-0.0", "mtl-lambda-1.0"]
    lambda_zero = variants([0.0], include_single_task=False)[0]
    assert lambda_zero.loss_weights == {"item": 0.0, "group": 1.0}
    assert lambda_zero.selection_metric == "val_group_accuracy"  # its item head is never trained
    single = task_metrics(("group",))["group"]
    assert [metric.name for metric in single] == ["group_accuracy", "group_loss"]


def test_dict_output_model_round_trips_through_mlflow(mlflow_client):
    from studyflow import tracking
    from tasks.model_store import log_keras_model, verify_round_trip

    images = keras.Input((28, 28))
    features = keras.layers.Flatten()(images)
    model = keras.Model(
        images,
        {
            "item": keras.layers.Dense(10, activation="softmax", name="item")(features),
            "group": keras.layers.Dense(3, activation="softmax", name="group")(features),
        },
    )
    inputs = np.random.default_rng(0).random((16, 28, 28), dtype=np.float32)
    with tracking.tracked_run(mlflow_client, "mtl", "round-trip", profile="quick", seed=0, dataset_digest="x") as run:
        verify_round_trip(log_keras_model(run, model, inputs), model, inputs)


@pytest.mark.integration
def test_logged_models_of_lambdas_are_named_as_mlflow_accepts(prefect_server, mlflow_client, tiny):
    """The paper profile logs every model: a lambda's decimal point must not fail the training."""
    mtl_flow(profile="quick", lambdas=[0.25], include_single_task=False, log_models=True, **tiny)
    (child,) = [run for run in runs_of(mlflow_client, "mtl") if run.data.tags.get(Tag.RUN_LEVEL) == "child"]
    assert child.info.run_name == "mtl-lambda-0.25-seed-0" and child.info.status == "FINISHED"
    (output,) = child.outputs.model_outputs
    logged = mlflow_client.get_logged_model(output.model_id)
    assert logged.name == "mtl-lambda-0_25" and logged.status == LoggedModelStatus.READY
    assert child.data.tags[Tag.MODEL_URI] == f"models:/{output.model_id}"


@pytest.mark.integration
def test_mtl_flow_child_runs_absent_heads_table_and_figures(prefect_server, mlflow_client, tiny):
    records = mtl_flow(profile="quick", lambdas=[0.0, 0.5], **dict(tiny, epochs=2))
    runs = runs_of(mlflow_client, "mtl")
    parent = next(run for run in runs if run.data.tags.get(Tag.RUN_LEVEL) == "parent")
    children = {run.info.run_name: run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    children = {name.removesuffix("-seed-0"): run for name, run in children.items()}
    assert set(children) == {"single-task-1", "single-task-2", "mtl-lambda-0.0", "mtl-lambda-0.5"}
    assert all(run.info.status == "FINISHED" for run in runs)
    heads = {
        "single-task-1": ["item"],
        "single-task-2": ["group"],
        "mtl-lambda-0.0": ["item", "group"],
        "mtl-lambda-0.5": ["item", "group"],
    }
    for name, run in children.items():
        metrics = run.data.metrics
        for task, number in (("item", 1), ("group", 2)):
            has_head = task in heads[name]
            assert (f"task{number}_test_accuracy" in metrics) == has_head, (name, task)  # absent, not 0
            for metric in (f"train_{task}_accuracy", f"val_{task}_accuracy", f"train_{task}_loss", f"val_{task}_loss"):
                history = mlflow_client.get_metric_history(run.info.run_id, metric)
                assert [point.step for point in history] == ([1, 2] if has_head else []), (name, metric)
        assert metrics["param_count"] == EXPECTED_PARAMETERS[tuple(heads[name])]
        assert metrics["train_time_s"] > 0
        assert not run.outputs.model_outputs  # the quick profile logs no model (317 MB each)
    assert children["single-task-2"].data.metrics["task2_test_accuracy"] > 0.5  # 3 groups, chance is ~0.4
    by_model = {record["model"]: record for record in records}
    assert by_model["single task 1"]["task 2 test accuracy"] == "-"
    assert by_model["single task 2"]["task 1 test accuracy"] == "-"
    assert by_model["MTL lambda 0.5"]["task 1 test accuracy"] != "-"
    for name, record in by_model.items():  # the original's figures beside ours, from the reference data
        original = ORIGINAL_MODELS[name]
        for number in (1, 2):
            figure = original.get(f"task{number}_test_accuracy")
            assert record[f"original task {number} accuracy"] == ("-" if figure is None else f"{figure:.4f}"), name
        assert record["original time (s)"] == original["train_time_s"], name
    assert by_model["MTL lambda 0.0"]["original task 1 accuracy"] != "-"  # the lambda 0 row has both figures
    # In the report, lambda 0's task-1 head (loss weight 0, never trained) is labelled, never flagged.
    from tasks.report.part_tables import mtl_tables

    report_table = mtl_tables(mlflow_client, parent)[0]
    rows = {row[0].text: row for row in report_table.rows}
    task1 = report_table.columns.index("task 1 accuracy (ours)") + 1
    assert rows["MTL lambda 0.0"][task1].text.endswith(": untrained head (loss weight 0), chance")
    assert not rows["MTL lambda 0.0"][task1].flag
    assert "untrained" not in rows["MTL lambda 0.5"][task1].text
    task2 = report_table.columns.index("task 2 accuracy (ours)") + 1  # weight 1 at lambda 0: trained
    assert "untrained" not in rows["MTL lambda 0.0"][task2].text
    assert by_model["MTL lambda 0.5"]["parameters"] == EXPECTED_PARAMETERS[("item", "group")]
    table = download(mlflow_client, parent.info.run_id, "tables/mtl_results.md").read_text()
    assert "| single task 1" in table and "fraction of test images" in table
    assert parent.data.metrics["param_saving"] == ORIGINAL["parameter_saving"]
    assert parent.data.metrics["best_mtl_lambda"] in (0.0, 0.5)
    assert "single_task_mean_test_accuracy" in parent.data.metrics
    for figure in ("mtl_final_accuracy_vs_lambda.png", "mtl_accuracy_per_epoch.png"):
        assert_png(download(mlflow_client, parent.info.run_id, f"figures/{figure}"))
