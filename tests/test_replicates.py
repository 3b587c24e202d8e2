"""Replicates: each model over several seeds, its mean and 95 % interval, and which differences are real."""

import contextlib
import math
import os

import numpy as np
import pandas as pd
import pytest
from commands import run_studyflow
from conftest import assert_png, download, prefect_home, runs_of
from scipy import stats

from studyflow.config.parts import CnnConfig, MlpConfig, MtlConfig, PerceptronConfig
from studyflow.config.study import StudyConfig
from studyflow.errors import ConfigError
from studyflow.tracking.names import KERAS_MODEL_VERSION_TAG, Tag
from tasks.architectures.registry import INTERVAL_RULE, ReplicateStats, register_and_promote
from tasks.data import load_dataset, subset
from tasks.replicates.compute import SEEDS_FOR_POWER, differences_table, summary_table
from tasks.replicates.power import seeds_to_resolve, spread_from_interval, t_test_power

T_975_2DF = 4.302652729911275  # Student's t quantile 0.975 with 2 degrees of freedom (tables)
GROUP = "replicate_group"


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


def _runs(values: dict[str, dict[int, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"model": model, "seed": seed, "test_accuracy": value}
            for model, by_seed in values.items()
            for seed, value in by_seed.items()
        ]
    )


def test_summary_is_the_t_interval_and_one_seed_leaves_the_interval_empty():
    runs = _runs({"A": {0: 0.90, 1: 0.92, 2: 0.94}, "B": {0: 0.80}})
    summary = summary_table(runs, ["test_accuracy"]).set_index("model")
    half_width = T_975_2DF * 0.02 / math.sqrt(3)  # std of 0.90, 0.92, 0.94 is 0.02
    assert summary.loc["A", "seeds"] == 3
    assert summary.loc["A", "test_accuracy_mean"] == pytest.approx(0.92)
    assert summary.loc["A", "test_accuracy_std"] == pytest.approx(0.02)
    assert summary.loc["A", "test_accuracy_ci95_low"] == pytest.approx(0.92 - half_width)
    assert summary.loc["A", "test_accuracy_ci95_high"] == pytest.approx(0.92 + half_width)
    assert summary.loc["B", "seeds"] == 1 and summary.loc["B", "test_accuracy_mean"] == pytest.approx(0.80)
    for column in ("test_accuracy_std", "test_accuracy_ci95_low", "test_accuracy_ci95_high"):
        assert math.isnan(summary.loc["B", column]), "one seed: empty, never zero"


def test_differences_pair_by_seed_when_the_seeds_match_and_use_welch_otherwise():
    # A is B plus 0.01 on every seed, with seed effects much larger than 0.01: paired, the difference
    # is certain; unpaired, it would drown in the seed-to-seed spread.
    b = {0: 0.80, 1: 0.90, 2: 0.85}
    a = {seed: value + 0.01 + 0.001 * seed for seed, value in b.items()}
    paired = differences_table(_runs({"A": a, "B": b}), "test_accuracy").iloc[0]
    assert paired["test"].startswith("paired") and paired["verdict"] == "A better"
    assert paired["difference"] == pytest.approx(0.011)
    assert 0 < paired["ci95_low"] < 0.011 < paired["ci95_high"]
    shifted = {seed + 10: value for seed, value in b.items()}
    welch = differences_table(_runs({"A": a, "B": shifted}), "test_accuracy").iloc[0]
    expected = stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False).confidence_interval(0.95)
    assert welch["test"].startswith("Welch") and welch["verdict"] == "within noise"
    assert (welch["ci95_low"], welch["ci95_high"]) == pytest.approx((expected.low, expected.high))
    one = differences_table(_runs({"A": {0: 0.9}, "B": {0: 0.8}}), "test_accuracy").iloc[0]
    assert math.isnan(one["ci95_low"]) and one["verdict"] == "cannot tell (one seed)"


@pytest.mark.parametrize("config_class", [MlpConfig, CnnConfig, MtlConfig, PerceptronConfig, StudyConfig])
@pytest.mark.parametrize(
    "seeds, message", [([], "at least one seed"), ([1, 1], "distinct"), ([0, -1], "seeds.1"), ("three", "valid list")]
)
def test_bad_seeds_are_a_config_error_naming_them(config_class, seeds, message):
    with pytest.raises(ConfigError, match=message):
        config_class.for_profile("quick", seeds=seeds)
    assert config_class.for_profile("quick", seed=4).replicate_seeds() == [4]  # default: once, with `seed`


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
def test_cnn_champion_by_mean_validation_and_the_interval_rule(prefect_server, mlflow_client, tiny):
    from flows.cnn import cnn_flow

    cnn_flow(profile="quick", architectures={"CNN-a": [4], "CNN-b": [2]}, seeds=[0, 1], **tiny)
    (parent,) = [run for run in runs_of(mlflow_client, "cnn") if run.data.tags[Tag.RUN_LEVEL] == "parent"]
    summary = pd.read_csv(download(mlflow_client, parent.info.run_id, "tables/cnn_summary.csv")).set_index("model")
    best_name = summary["val_accuracy_mean"].idxmax()
    assert parent.data.tags[Tag.BEST_ARCHITECTURE] == best_name
    champion = mlflow_client.get_model_version_by_alias("mnist-cnn", "champion")
    source = mlflow_client.get_run(champion.run_id)
    assert source.data.tags[Tag.ARCHITECTURE] == best_name and source.data.tags[Tag.RUN_LEVEL] == "child"
    best_group = mlflow_client.get_run(source.data.tags["mlflow.parentRunId"])  # a seed run, under its group
    assert best_group.data.tags[Tag.REPLICATE_GROUP] == best_name and best_group.data.tags[Tag.RUN_LEVEL] == GROUP
    seeds_of_best = [run for run in runs_of(mlflow_client, "cnn") if run.data.tags.get(Tag.ARCHITECTURE) == best_name]
    assert source.data.metrics["val_accuracy"] == max(run.data.metrics["val_accuracy"] for run in seeds_of_best)
    assert champion.tags["replicate_seeds"] == "2"
    assert float(champion.tags["test_accuracy_mean"]) == pytest.approx(
        summary.loc[best_name, "test_accuracy_mean"], abs=1e-6
    )
    assert float(champion.tags["test_accuracy_ci95_low"]) == pytest.approx(
        summary.loc[best_name, "test_accuracy_ci95_low"], abs=1e-6
    )
    assert "no champion yet" in champion.description

    # Another seed pair of the same architectures: both sides have intervals, so the interval rule decides.
    # What it should decide comes from the trainings' own test accuracies (a t interval over the seeds,
    # computed here), not from what the registry wrote.
    cnn_flow(profile="quick", architectures={"CNN-a": [4], "CNN-b": [2]}, seeds=[5, 6], **tiny)
    versions = sorted(mlflow_client.search_model_versions("name='mnist-cnn'"), key=lambda v: int(v.version))
    assert len(versions) == 2
    challenger = versions[-1]
    assert challenger.tags["promotion_rule"].startswith("interval rule")
    assert "Rule applied: interval rule" in challenger.description
    challenger_name = mlflow_client.get_run(challenger.tags["source_run_id"]).data.tags[Tag.ARCHITECTURE]
    mine = _test_accuracy_interval(mlflow_client, challenger_name, seeds={"5", "6"})
    theirs = _test_accuracy_interval(mlflow_client, best_name, seeds={"0", "1"})
    for tags, (mean, low, high) in ((challenger.tags, mine), (champion.tags, theirs)):
        assert [
            float(tags[key]) for key in ("test_accuracy_mean", "test_accuracy_ci95_low", "test_accuracy_ci95_high")
        ] == pytest.approx([mean, low, high], abs=1e-6)
    should_win = mine[0] > theirs[0] and (mine[1] > theirs[2] or theirs[1] > mine[2])
    now = mlflow_client.get_model_version_by_alias("mnist-cnn", "champion").version
    assert now == (challenger.version if should_win else champion.version)

    # Two seeds of such tiny models seldom separate, so the rule's other outcomes are given intervals of
    # their own: the same challenger version, higher but inside the champion's interval, stays out;
    # higher and clear of it, it becomes the champion.
    champion_now = mlflow_client.get_model_version_by_alias("mnist-cnn", "champion")
    _, low, high = mine if champion_now.version == challenger.version else theirs  # the champion's interval
    inside = ReplicateStats(2, mean=high, low=low, high=high + 0.01, val_mean=0.5)
    clear = ReplicateStats(2, mean=high + 0.02, low=high + 0.01, high=high + 0.03, val_mean=0.5)
    other = next(version for version in versions if version.version != champion_now.version)
    test = subset(load_dataset("mnist"), tiny["train_size"], tiny["test_size"], seed=0)
    for stats_given, promoted in ((inside, False), (clear, True)):
        decision = register_and_promote(
            mlflow_client,
            other.tags[KERAS_MODEL_VERSION_TAG],
            other.tags["source_run_id"],
            test.test_images,
            test.test_labels,
            "mnist test",
            replicates=stats_given,
        )
        assert decision.rule == INTERVAL_RULE and decision.promoted is promoted, decision.reason
        expected = other.version if promoted else champion_now.version
        assert mlflow_client.get_model_version_by_alias("mnist-cnn", "champion").version == expected


def _test_accuracy_interval(client, architecture: str, seeds: set[str]) -> tuple[float, float, float]:
    """Mean test accuracy of `architecture`'s runs of `seeds` and its 95 % t interval."""
    accuracies = [
        run.data.metrics["test_accuracy"]
        for run in runs_of(client, "cnn")
        if run.data.tags.get(Tag.ARCHITECTURE) == architecture and run.data.tags.get(Tag.SEED) in seeds
    ]
    assert len(accuracies) == len(seeds), accuracies
    mean = float(np.mean(accuracies))
    half = stats.t.ppf(0.975, len(accuracies) - 1) * np.std(accuracies, ddof=1) / math.sqrt(len(accuracies))
    return mean, mean - half, mean + half


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


def test_seeds_to_resolve_match_the_published_power_tables():
    # Cohen (1988), table 2.4.1 and G*Power: a two-sample t-test at alpha 0.05 and 80 % power needs
    # 26 per group for d = 0.8, 64 for d = 0.5, 394 for d = 0.2; a paired one 34 for d_z = 0.5.
    assert [seeds_to_resolve(d, 1.0, paired=False) for d in (0.8, 0.5, 0.2)] == [26, 64, 394]
    assert seeds_to_resolve(0.5, 1.0, paired=True) == 34
    assert seeds_to_resolve(-0.5, 1.0, paired=True) == 34, "the test is two-sided"
    # Known spread of MLP test accuracies over seeds (0.2 points): 1 point needs few seeds, 0.1 many.
    assert seeds_to_resolve(0.01, 0.002, paired=False) < seeds_to_resolve(0.001, 0.002, paired=False)
    assert seeds_to_resolve(0.0, 0.002, paired=True) is None
    assert seeds_to_resolve(0.01, math.nan, paired=True) is None
    power = t_test_power(0.5, 34, paired=True)
    assert 0.80 <= power < t_test_power(0.5, 35, paired=True) and t_test_power(0.5, 33, paired=True) < 0.80


def test_differences_say_how_many_seeds_would_resolve_them_and_the_interval_gives_the_spread_back():
    a = {0: 0.950, 1: 0.962, 2: 0.941, 3: 0.957}
    b = {seed: value - 0.004 + 0.003 * (-1) ** seed for seed, value in a.items()}  # paired differences 0.001, 0.007
    row = differences_table(_runs({"A": a, "B": b}), "test_accuracy").iloc[0]
    per_seed = np.array([a[seed] - b[seed] for seed in sorted(a)])
    spread = float(np.std(per_seed, ddof=1))
    assert row[SEEDS_FOR_POWER] == seeds_to_resolve(per_seed.mean(), spread, paired=True)
    assert spread_from_interval(row["ci95_low"], row["ci95_high"], 4, 4, paired=True) == pytest.approx(spread)
    one = differences_table(_runs({"A": {0: 0.9}, "B": {0: 0.8}}), "test_accuracy").iloc[0]
    assert math.isnan(one[SEEDS_FOR_POWER]), "one seed: no spread, no power calculation"
