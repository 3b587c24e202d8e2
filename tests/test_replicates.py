"""Replicates: each model over several seeds, its mean and 95 % interval, and which differences are real."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from studyflow.config.parts import CnnConfig, MlpConfig, MtlConfig, PerceptronConfig, StudyConfig
from studyflow.errors import ConfigError
from studyflow.tracking.names import KERAS_MODEL_VERSION_TAG, Tag
from tasks.architectures.registry import INTERVAL_RULE, ReplicateStats, register_and_promote
from tasks.data import load_dataset, subset
from tasks.replicates.compute import differences_table, summary_table

from conftest import assert_png, download, runs_of

T_975_2DF = 4.302652729911275  # Student's t quantile 0.975 with 2 degrees of freedom (tables)


def _runs(values: dict[str, dict[int, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"model": model, "seed": seed, "test_accuracy": value}
                         for model, by_seed in values.items() for seed, value in by_seed.items()])


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
@pytest.mark.parametrize("seeds, message", [([], "at least one seed"), ([1, 1], "distinct"), ([0, -1], "seeds.1"),
                                            ("three", "valid list")])
def test_bad_seeds_are_a_config_error_naming_them(config_class, seeds, message):
    with pytest.raises(ConfigError, match=message):
        config_class.for_profile("quick", seeds=seeds)
    assert config_class.for_profile("quick", seed=4).replicate_seeds() == [4]  # default: once, with `seed`


@pytest.mark.integration
def test_mlp_over_three_seeds_summary_matches_its_child_runs(prefect_server, mlflow_client, tiny, tmp_path):
    from flows.mlp import mlp_flow

    architectures = {"MLP-a": [24], "MLP-b": [8]}
    mlp_flow(profile="quick", architectures=architectures, seeds=[0, 1, 2], **tiny)
    runs = runs_of(mlflow_client, "mlp")
    (parent,) = [run for run in runs if run.data.tags[Tag.RUN_LEVEL] == "parent"]
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted((run.data.tags[Tag.ARCHITECTURE], run.data.tags[Tag.SEED]) for run in children) == [
        (name, str(seed)) for name in architectures for seed in (0, 1, 2)]
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
    assert row["difference"] == pytest.approx(summary.loc["MLP-a", "test_accuracy_mean"]
                                              - summary.loc["MLP-b", "test_accuracy_mean"], abs=1e-6)
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

    # A longer list of seeds trains only the new one; the rest is reused.
    mlp_flow(profile="quick", architectures=architectures, seeds=[0, 1, 2, 3], **tiny)
    second = max((run for run in runs_of(mlflow_client, "mlp") if run.data.tags[Tag.RUN_LEVEL] == "parent"),
                 key=lambda run: run.info.start_time)
    trained = [run for run in runs_of(mlflow_client, "mlp")
               if run.data.tags.get("mlflow.parentRunId") == second.info.run_id]
    assert sorted(run.info.run_name for run in trained) == ["MLP-a-seed-3", "MLP-b-seed-3"]
    assert len(second.data.tags[Tag.REUSED_RUN_IDS].split(",")) == 6
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
    assert source.data.tags[Tag.ARCHITECTURE] == best_name
    seeds_of_best = [run for run in runs_of(mlflow_client, "cnn") if run.data.tags.get(Tag.ARCHITECTURE) == best_name]
    assert source.data.metrics["val_accuracy"] == max(run.data.metrics["val_accuracy"] for run in seeds_of_best)
    assert champion.tags["replicate_seeds"] == "2"
    assert float(champion.tags["test_accuracy_mean"]) == pytest.approx(summary.loc[best_name, "test_accuracy_mean"], abs=1e-6)
    assert float(champion.tags["test_accuracy_ci95_low"]) == pytest.approx(
        summary.loc[best_name, "test_accuracy_ci95_low"], abs=1e-6)
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
        assert [float(tags[key]) for key in ("test_accuracy_mean", "test_accuracy_ci95_low", "test_accuracy_ci95_high")
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
        decision = register_and_promote(mlflow_client, other.tags[KERAS_MODEL_VERSION_TAG], other.tags["source_run_id"],
                                        test.test_images, test.test_labels, "mnist test", replicates=stats_given)
        assert decision.rule == INTERVAL_RULE and decision.promoted is promoted, decision.reason
        expected = other.version if promoted else champion_now.version
        assert mlflow_client.get_model_version_by_alias("mnist-cnn", "champion").version == expected


def _test_accuracy_interval(client, architecture: str, seeds: set[str]) -> tuple[float, float, float]:
    """Mean test accuracy of `architecture`'s runs of `seeds` and its 95 % t interval."""
    accuracies = [run.data.metrics["test_accuracy"] for run in runs_of(client, "cnn")
                  if run.data.tags.get(Tag.ARCHITECTURE) == architecture and run.data.tags.get(Tag.SEED) in seeds]
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
    children = [run for run in runs_of(mlflow_client, "mtl") if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(run.data.tags[Tag.SEED] for run in children) == ["0", "1"]
    for metric in ("task1_test_accuracy", "task2_test_accuracy"):
        assert row[f"{metric}_mean"] == pytest.approx(np.mean([run.data.metrics[metric] for run in children]), abs=1e-6)
        assert row[f"{metric}_ci95_low"] < row[f"{metric}_mean"] < row[f"{metric}_ci95_high"]
    assert_png(download(mlflow_client, parent.info.run_id, "figures/mtl_final_accuracy_vs_lambda.png"))

    records = perceptron_flow(profile="quick", pairs=[[1, 0], [4, 9]], seeds=[0, 1, 2], max_epochs=5, train_size=3000)
    assert [(record["model"], record["seeds"]) for record in records] == [("1 vs 0", 3), ("4 vs 9", 3)]
    (parent,) = [run for run in runs_of(mlflow_client, "perceptron") if run.data.tags[Tag.RUN_LEVEL] == "parent"]
    differences = pd.read_csv(download(mlflow_client, parent.info.run_id, "tables/perceptron_differences.csv"))
    assert differences["test"].tolist() == ["paired t (same seeds)"]
