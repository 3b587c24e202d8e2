"""The report's judgements, tables and figures on given numbers, without any run: a difference flagged
above or below the original only beyond noise, the seeds a known spread needs, the MTL figures zoomed
on the trained heads, and the original's best-MTL comparison as the mean of its own accuracies."""

import math

import pytest

from studyflow import reference
from tasks.mtl.figures import final_accuracy_figure
from tasks.replicates.compute import SEEDS_FOR_POWER
from tasks.replicates.power import seeds_to_resolve, spread_from_interval
from tasks.report.judging import Judgement, binomial_noise, judge_interval, signed
from tasks.report.originals import mtl_best_table
from tasks.report.replicates import replicate_accuracy_cells, seeds_needed
from tasks.report.tables import accuracy_cells, difference_cells, ratio_cells


def test_a_difference_is_flagged_above_or_below_the_original_only_beyond_noise():
    # One seed, 10,000 test images: the binomial band at 0.9544 is ±0.0041.
    above = accuracy_cells(0.9544, 0.9783, None, images=10_000)[2]  # MLP-1: ours 2.4 points higher
    assert above.text == "+0.0239 above" and above.flag
    below = accuracy_cells(0.9544, 0.9444, None, images=10_000)[2]
    assert below.text == "-0.0100 below" and below.flag
    within = accuracy_cells(0.9908, 0.9894, None, images=10_000)[2]  # CNN-1: 0.14 points, inside ±0.0019
    assert within.text == "-0.0014 within noise" and not within.flag
    # The same 0.14 points on a 500-image subset and on 100,000 images: the rule scales with n.
    assert not accuracy_cells(0.9908, 0.9894, None, images=500)[2].flag
    assert accuracy_cells(0.9908, 0.9894, None, images=100_000)[2].flag
    unjudged = accuracy_cells(0.841, 0.8405, None)[2]  # no image count: the direction, said unjudged
    assert unjudged.text == "-0.0005 below (no noise rule)" and not unjudged.flag
    assert binomial_noise(0.95, 10_000) == pytest.approx(0.00427, abs=1e-5)
    # Several seeds: the original outside our interval, on either side, is beyond noise.
    assert judge_interval(0.97, 0.975, 0.985, 0.98, None) == Judgement("above", True, "interval")
    assert judge_interval(0.99, 0.975, 0.985, 0.98, None) == Judgement("below", True, "interval")
    assert judge_interval(0.97, 0.975, 0.985, 0.98, 10_000) == Judgement("above", True, "interval")
    assert not judge_interval(0.98, 0.975, 0.985, 0.98, None).beyond_noise
    # ... unless it is within the binomial band of the images measured on: seeds do not vary those. The
    # perceptron's 1 vs 0, 0.9991 with every seed, against the original's 0.9990 on 2,115 test images:
    assert judge_interval(0.9990, 0.9991, 0.9991, 0.9991, 2_115) == Judgement("within", False, "interval")
    assert judge_interval(0.9990, 0.9991, 0.9991, 0.9991, None).beyond_noise  # no image count: interval alone
    assert judge_interval(0.9690, 0.9888, 0.9916, 0.9902, 2_002).beyond_noise  # 8 vs 7: +0.0212, band 0.0076
    summary = {
        "seeds": 3,
        "test_accuracy_mean": 0.98,
        "test_accuracy_ci95_low": 0.975,
        "test_accuracy_ci95_high": 0.985,
    }
    cells = replicate_accuracy_cells(0.9544, summary, "test_accuracy", None)
    assert cells[1].text == "0.9800 ± 0.0050 (3 seeds)" and cells[2].text == "+0.0256 above" and cells[2].flag
    # Never "-0.00": a difference that rounds to zero has no sign.
    assert signed(-0.0004, 2) == "0.00" and signed(-0.00004, 4) == "0.0000" and signed(-0.006, 2) == "-0.01"
    assert difference_cells(42.82, 42.8196, None)[2].text == "0.00"
    assert ratio_cells(1000, 1000, None, "{:.0f}")[2].text == "x1.00"


def test_the_differences_table_gives_the_seeds_a_known_spread_needs():
    # Paired, 3 seeds, differences with standard deviation 0.004 around +0.004 (d_z = 1): the
    # interval's half-width is t(2) * 0.004 / sqrt(3); at d_z = 1 a paired t-test needs 10 seeds.
    half = 4.302652729911275 * 0.004 / math.sqrt(3)
    row = {
        "difference": 0.004,
        "ci95_low": 0.004 - half,
        "ci95_high": 0.004 + half,
        "seeds_a": 3,
        "seeds_b": 3,
        "test": "paired t (same seeds)",
    }
    assert spread_from_interval(row["ci95_low"], row["ci95_high"], 3, 3, paired=True) == pytest.approx(0.004)
    assert seeds_needed(row) == seeds_to_resolve(1.0, 1.0, paired=True) == 10
    assert seeds_needed({**row, SEEDS_FOR_POWER: 7.0}) == 7, "the table's own column where it has one"
    assert seeds_needed({**row, SEEDS_FOR_POWER: math.nan}) is None


def test_mtl_figures_zoom_on_the_trained_heads_and_name_the_untrained_ones():
    accuracies = {
        0.0: {"item": [0.1375], "group": [0.9442]},
        0.25: {"item": [0.9195], "group": [0.9516]},
        0.5: {"item": [0.9139], "group": [0.9474]},
        1.0: {"item": [0.9208], "group": [0.2487]},
    }
    figure = final_accuracy_figure(accuracies, {"item": [0.9085], "group": [0.9470]})
    item_axes, group_axes = figure.axes[:2]
    low, high = item_axes.get_ylim()
    assert 0.85 < low < 0.9085 and 0.9208 < high < 0.95, "zoomed on 0.9085-0.9208, not 0 to 1"
    assert "lambda 0: 0.1375" in " ".join(text.get_text() for text in item_axes.texts)
    assert "lambda 1: 0.2487" in " ".join(text.get_text() for text in group_axes.texts)
    assert group_axes.get_ylim()[0] > 0.9


def test_the_originals_best_mtl_comparison_is_the_mean_of_its_own_two_task_accuracies():
    # The reference data states the original's best-MTL and single-task means as it gave them; they
    # must be the means of its own table's accuracies, or the report sets ours beside a wrong figure.
    original = reference.original_study()["mtl"]
    models = {entry["name"]: entry for entry in original["models"]}
    best = models[f"MTL lambda {original['best_lambda']}"]
    assert original["best_mean_accuracy"] == pytest.approx(
        (best["task1_test_accuracy"] + best["task2_test_accuracy"]) / 2, abs=5e-5
    )
    assert original["single_task_mean_accuracy"] == pytest.approx(
        (models["single task 1"]["task1_test_accuracy"] + models["single task 2"]["task2_test_accuracy"]) / 2, abs=5e-5
    )
    table = mtl_best_table(original, None)
    assert [cell.text for cell in table.rows[0]] == ["original", "0.25", "0.9356", "0.9278", "+0.0078"]
