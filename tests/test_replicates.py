"""Replicates: each model over several seeds, its mean and 95 % interval, and which differences are
real: the summary and differences tables, the seeds a config accepts, the CNN champion chosen by mean
validation accuracy and the interval rule, and the seeds a difference needs (power). The runs that
group a model's seeds in MLflow: test_replicate_groups.py and test_replicate_group_status.py."""

import math

import numpy as np
import pandas as pd
import pytest
from conftest import REPLICATE_GROUP as GROUP
from conftest import T_975_2DF, download, runs_of
from scipy import stats

from studyflow.config.parts import CnnConfig, MlpConfig, MtlConfig, PerceptronConfig
from studyflow.config.study import StudyConfig
from studyflow.errors import ConfigError
from studyflow.tracking.names import KERAS_MODEL_VERSION_TAG, Tag
from tasks.architectures.registry import INTERVAL_RULE, ReplicateStats, register_and_promote
from tasks.data import load_dataset, subset
from tasks.replicates.compute import SEEDS_FOR_POWER, differences_table, summary_table
from tasks.replicates.power import seeds_to_resolve, spread_from_interval, t_test_power


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
