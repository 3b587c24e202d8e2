"""Replicate group runs in MLflow: each model's seed runs nested under a group run that holds their
statistics and mean curves, for the MLP (a longer list of seeds then trains only the new one), MTL and
perceptron parts; no group for one seed; and seeds trained on Dask workers, each run opened under the
group the command opened."""

import math
import os

import numpy as np
import pandas as pd
import pytest
from commands import run_studyflow
from conftest import REPLICATE_GROUP as GROUP
from conftest import T_975_2DF, assert_png, download, prefect_home, runs_of
from scipy import stats

from studyflow.tracking.names import Tag


def _under(client, part: str, run) -> list:
    return [child for child in runs_of(client, part) if child.data.tags.get("mlflow.parentRunId") == run.info.run_id]


def _history(client, run_id: str, key: str) -> dict[int, float]:
    return {point.step: point.value for point in client.get_metric_history(run_id, key)}


def _groups_with_seeds(client, part: str, parent, models: list[str], seeds: list[str]) -> dict[str, tuple]:
    """Each model's group run under `parent` and its seed runs nested under it; checks the shape of
    the tree (one group per model, each seed once, nothing but groups under the parent)."""
    under_parent = _under(client, part, parent)
    assert all(run.data.tags[Tag.RUN_LEVEL] == GROUP for run in under_parent)
    groups = {run.data.tags[Tag.REPLICATE_GROUP]: run for run in under_parent}
    assert sorted(groups) == sorted(models) and len(under_parent) == len(models)
    nested = {model: _under(client, part, group) for model, group in groups.items()}
    for model, group in groups.items():
        assert group.info.status == "FINISHED"
        assert sorted(run.data.tags[Tag.SEED] for run in nested[model]) == sorted(seeds)
        assert all(run.data.tags[Tag.RUN_LEVEL] == "child" for run in nested[model])
        assert sorted(group.data.tags[Tag.REPLICATE_SEED_RUN_IDS].split(",")) == sorted(
            run.info.run_id for run in nested[model]
        )
    return {model: (groups[model], nested[model]) for model in groups}


def _mlp_members_and_reused(client) -> tuple[int, int]:
    """The report's provenance of the latest mlp run: its runs, and how many of them it reused."""
    from tasks.report.write import build_report

    (part,) = [part for part in build_report(client).provenance.parts if part.part == "mlp"]
    return part.member_runs, part.reused_runs


def assert_group_is_its_seeds_statistics(client, group, seed_runs) -> None:
    """The group's `<metric>_mean`, `_std`, `_ci95_low`, `_ci95_high` for every final metric of its
    seeds, computed here from the seed runs' final metrics; its curves: the seeds' mean at each step."""
    finals = [
        {key: value for key, value in run.data.metrics.items() if not key.startswith("system/")} for run in seed_runs
    ]
    keys = set(finals[0])
    assert all(set(final) == keys for final in finals)
    expected = {}
    for key in keys:
        values = np.array([final[key] for final in finals])
        mean, std = values.mean(), values.std(ddof=1)
        half_width = stats.t.ppf(0.975, len(values) - 1) * std / math.sqrt(len(values))  # (the table's, in full)
        expected.update(
            {
                f"{key}_mean": mean,
                f"{key}_std": std,
                f"{key}_ci95_low": mean - half_width,
                f"{key}_ci95_high": mean + half_width,
            }
        )
    got = {key: value for key, value in group.data.metrics.items() if key in expected}
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key  # float round-off only
    assert group.data.metrics["seeds"] == len(seed_runs)
    curves = [key for key in keys if any(step >= 1 for step in _history(client, seed_runs[0].info.run_id, key))]
    assert curves, "the seeds have per-epoch curves"
    for key in curves:
        histories = [_history(client, run.info.run_id, key) for run in seed_runs]
        mean_curve = _history(client, group.info.run_id, key)
        steps = sorted(set().union(*histories))
        assert sorted(mean_curve) == steps, key  # one value per step (epoch, iteration)
        for step in steps:
            assert mean_curve[step] == pytest.approx(np.mean([h[step] for h in histories if step in h]), abs=1e-9)


@pytest.mark.integration
def test_mlp_over_three_seeds_summary_matches_its_child_runs(prefect_server, mlflow_client, tiny, tmp_path):
    from flows.mlp import mlp_flow

    architectures = {"MLP-a": [24], "MLP-b": [8]}
    epochs = 2  # a curve of more than one point
    mlp_flow(profile="quick", architectures=architectures, seeds=[0, 1, 2], **dict(tiny, epochs=epochs))
    runs = runs_of(mlflow_client, "mlp")
    (parent,) = [run for run in runs if run.data.tags[Tag.RUN_LEVEL] == "parent"]
    groups = _groups_with_seeds(mlflow_client, "mlp", parent, list(architectures), ["0", "1", "2"])
    children = [run for _, nested in groups.values() for run in nested]
    assert sorted((run.data.tags[Tag.ARCHITECTURE], run.data.tags[Tag.SEED]) for run in children) == [
        (name, str(seed)) for name in architectures for seed in (0, 1, 2)
    ]
    for name, (group, nested) in groups.items():
        assert group.info.run_name == f"{name}-replicates" and Tag.ARCHITECTURE not in group.data.tags
        assert all(run.data.tags[Tag.ARCHITECTURE] == name for run in nested)
        assert_group_is_its_seeds_statistics(mlflow_client, group, nested)
        assert sorted(_history(mlflow_client, group.info.run_id, "val_accuracy")) == list(range(1, epochs + 1))
        assert group.data.params["hidden_widths"] == str(architectures[name]) and "seed" not in group.data.params
    # The report's and the registry's view of the part: its training runs, never a group.
    from studyflow import tracking
    from tasks.architectures.record import architecture_runs

    assert sorted(run.info.run_id for run in tracking.member_runs(mlflow_client, "mlp", parent.info.run_id)) == sorted(
        run.info.run_id for run in children
    )
    assert architecture_runs(mlflow_client, "mlp", parent.info.run_id)["seeds"].tolist() == [3, 3]
    assert {run.data.params["seed"] for run in children} == {"0", "1", "2"}
    assert all(run.info.status == "FINISHED" for run in runs)
    assert parent.data.tags[Tag.REPLICATE_SEEDS] == "0,1,2"

    summary = pd.read_csv(download(mlflow_client, parent.info.run_id, "tables/mlp_summary.csv")).set_index("model")
    for name in architectures:
        for metric in ("test_accuracy", "train_accuracy", "val_accuracy"):
            values = np.array([run.data.metrics[metric] for run in children if run.data.tags[Tag.ARCHITECTURE] == name])
            mean, std = values.mean(), values.std(ddof=1)
            half_width = T_975_2DF * std / math.sqrt(3)
            row = summary.loc[name]
            assert row["seeds"] == 3
            assert row[f"{metric}_mean"] == pytest.approx(mean, abs=1e-6)
            assert row[f"{metric}_std"] == pytest.approx(std, abs=1e-6)
            assert row[f"{metric}_ci95_low"] == pytest.approx(mean - half_width, abs=1e-6)
            assert row[f"{metric}_ci95_high"] == pytest.approx(mean + half_width, abs=1e-6)
    differences = pd.read_csv(download(mlflow_client, parent.info.run_id, "tables/mlp_differences.csv"))
    (row,) = differences.to_dict(orient="records")
    assert (row["model_a"], row["model_b"]) == ("MLP-a", "MLP-b") and row["test"].startswith("paired")
    assert row["difference"] == pytest.approx(
        summary.loc["MLP-a", "test_accuracy_mean"] - summary.loc["MLP-b", "test_accuracy_mean"], abs=1e-6
    )
    assert row["ci95_low"] <= row["difference"] <= row["ci95_high"]
    assert download(mlflow_client, parent.info.run_id, "tables/mlp_summary.md").read_text().count("| MLP-") == 2
    for figure in ("mlp_replicates.png", "mlp_learning_curves.png"):
        assert_png(download(mlflow_client, parent.info.run_id, f"figures/{figure}"))

    # The report: ours as mean ± half-width beside the original, judged by the interval, and the differences.
    from tasks.report.write import write_report

    write_report(mlflow_client, tmp_path / "report")
    section = (tmp_path / "report" / "report.md").read_text().split("## 3. MLP")[1].split("## 4.")[0]
    row = summary.loc["MLP-a"]
    half = (row["test_accuracy_ci95_high"] - row["test_accuracy_ci95_low"]) / 2
    assert f"{row['test_accuracy_mean']:.4f} ± {half:.4f} (3 seeds)" in section
    assert "Ours: mean over 3 seeds" in section and "| test_accuracy | MLP-a | MLP-b |" in section
    assert _mlp_members_and_reused(mlflow_client) == (6, 0)  # seed runs under groups are the part's own

    # A longer list of seeds trains only the new one; the rest is reused, and each new group still
    # lists (and is computed from) its reused seeds, which stay under the first run's groups.
    mlp_flow(profile="quick", architectures=architectures, seeds=[0, 1, 2, 3], **dict(tiny, epochs=epochs))
    second = max(
        (run for run in runs_of(mlflow_client, "mlp") if run.data.tags[Tag.RUN_LEVEL] == "parent"),
        key=lambda run: run.info.start_time,
    )
    new_groups = {run.data.tags[Tag.REPLICATE_GROUP]: run for run in _under(mlflow_client, "mlp", second)}
    assert sorted(new_groups) == sorted(architectures)
    trained = [run for group in new_groups.values() for run in _under(mlflow_client, "mlp", group)]
    assert sorted(run.info.run_name for run in trained) == ["MLP-a-seed-3", "MLP-b-seed-3"]
    assert len(second.data.tags[Tag.REUSED_RUN_IDS].split(",")) == 6
    for name, group in new_groups.items():
        reused = [run.info.run_id for run in groups[name][1]]
        assert sorted(group.data.tags[Tag.REUSED_RUN_IDS].split(",")) == sorted(reused)
        seed_ids = group.data.tags[Tag.REPLICATE_SEED_RUN_IDS].split(",")
        assert len(seed_ids) == 4 and set(reused) < set(seed_ids)
        assert group.data.tags[Tag.REPLICATE_SEEDS] == "0,1,2,3"
        seed_runs = [mlflow_client.get_run(run_id) for run_id in seed_ids]
        assert_group_is_its_seeds_statistics(mlflow_client, group, seed_runs)
    assert len(tracking.member_runs(mlflow_client, "mlp", second.info.run_id)) == 8
    assert _mlp_members_and_reused(mlflow_client) == (8, 6)
    summary = pd.read_csv(download(mlflow_client, second.info.run_id, "tables/mlp_summary.csv"))
    assert summary["seeds"].tolist() == [4, 4]


@pytest.mark.integration
def test_mtl_and_perceptron_replicates(prefect_server, mlflow_client, tiny):
    from flows.mtl import mtl_flow
    from flows.perceptron import perceptron_flow

    mtl_flow(profile="quick", lambdas=[0.5], include_single_task=False, seeds=[0, 1], **tiny)
    (parent,) = [run for run in runs_of(mlflow_client, "mtl") if run.data.tags[Tag.RUN_LEVEL] == "parent"]
    summary = pd.read_csv(download(mlflow_client, parent.info.run_id, "tables/mtl_summary.csv"))
    (row,) = summary.to_dict(orient="records")
    ((group, children),) = _groups_with_seeds(mlflow_client, "mtl", parent, ["MTL lambda 0.5"], ["0", "1"]).values()
    assert group.info.run_name == "mtl-lambda-0.5-replicates"
    assert_group_is_its_seeds_statistics(mlflow_client, group, children)
    assert group.data.metrics["task1_test_accuracy_mean"] == pytest.approx(row["task1_test_accuracy_mean"], abs=1e-6)
    for metric in ("task1_test_accuracy", "task2_test_accuracy"):
        assert row[f"{metric}_mean"] == pytest.approx(np.mean([run.data.metrics[metric] for run in children]), abs=1e-6)
        assert row[f"{metric}_ci95_low"] < row[f"{metric}_mean"] < row[f"{metric}_ci95_high"]
    assert_png(download(mlflow_client, parent.info.run_id, "figures/mtl_final_accuracy_vs_lambda.png"))

    records = perceptron_flow(profile="quick", pairs=[[1, 0], [4, 9]], seeds=[0, 1, 2], max_epochs=5, train_size=3000)
    assert [(record["model"], record["seeds"]) for record in records] == [("1 vs 0", 3), ("4 vs 9", 3)]
    (parent,) = [run for run in runs_of(mlflow_client, "perceptron") if run.data.tags[Tag.RUN_LEVEL] == "parent"]
    differences = pd.read_csv(download(mlflow_client, parent.info.run_id, "tables/perceptron_differences.csv"))
    assert differences["test"].tolist() == ["paired t (same seeds)"]
    groups = _groups_with_seeds(mlflow_client, "perceptron", parent, ["1 vs 0", "4 vs 9"], ["0", "1", "2"])
    for group, nested in groups.values():
        assert_group_is_its_seeds_statistics(mlflow_client, group, nested)  # train_error: per iteration
        assert group.data.tags[Tag.REPLICATE_SEEDS] == "0,1,2"
    # The report's perceptron section keys pairs by their tag: a group, which has none, is not a pair.
    from tasks.report.sections import child_runs, pair_of

    assert sorted(child_runs(mlflow_client, "perceptron", parent, pair_of)) == ["1 vs 0", "4 vs 9"]


@pytest.mark.integration
def test_one_seed_makes_no_group_runs(prefect_server, mlflow_client):
    from flows.perceptron import perceptron_flow

    for seeds in ([3], None):
        perceptron_flow(profile="quick", pairs=[[1, 0]], seeds=seeds, max_epochs=5, train_size=3000)
    runs = runs_of(mlflow_client, "perceptron")
    assert not [run for run in runs if run.data.tags[Tag.RUN_LEVEL] == GROUP]
    parents = [run for run in runs if run.data.tags[Tag.RUN_LEVEL] == "parent"]
    assert len(parents) == 2
    for parent in parents:
        (child,) = _under(mlflow_client, "perceptron", parent)
        assert child.data.tags[Tag.PAIR] == "1-0" and Tag.REPLICATE_SEED_RUN_IDS not in parent.data.tags


@pytest.mark.slow
def test_seeds_fanned_out_on_dask_workers_open_their_runs_under_their_group(tmp_path, mlflow_client):
    """The group runs are opened by the command; each seed run by the Dask worker that trains it,
    under its group."""
    argv = [
        "run",
        "perceptron",
        "--set",
        "pairs=[[1,0],[4,9]]",
        "--set",
        "seeds=[0,1]",
        "--set",
        "max_epochs=5",
        "--set",
        "train_size=3000",
        "--set",
        "workers=2",
    ]
    env = {**os.environ, "PREFECT_HOME": str(prefect_home(tmp_path / "prefect")), "PYTHONUNBUFFERED": "1"}
    command = run_studyflow(*argv, env=env, timeout=900)
    assert command.returncode == 0, command.stdout[-2000:] + command.stderr[-3000:]
    assert "trainings on the Dask cluster" in command.stdout
    (parent,) = runs_of(mlflow_client, "perceptron", f"tags.`{Tag.RUN_LEVEL}` = 'parent'")
    groups = _groups_with_seeds(mlflow_client, "perceptron", parent, ["1 vs 0", "4 vs 9"], ["0", "1"])
    command_process = parent.data.tags[Tag.PROCESS]
    for group, nested in groups.values():
        assert group.data.tags[Tag.PROCESS] == command_process
        assert all(run.data.tags[Tag.PROCESS] != command_process for run in nested)  # trained in a worker
        assert_group_is_its_seeds_statistics(mlflow_client, group, nested)
    assert runs_of(mlflow_client, "perceptron", "attributes.status = 'RUNNING'") == []
