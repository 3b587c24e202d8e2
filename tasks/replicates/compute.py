"""Replicates as statistics: each model's metrics over its seeds (mean, standard deviation and a 95 %
Student's t interval) and the differences between models, with the test that suits their seeds.

Input is a long table: one row per (model, seed) that finished, a column per metric. A seed that
diverged has no row, so each model's `seeds` count says how many values its statistics rest on.
With one seed there is no spread to estimate: std and interval cells are empty (NaN), never zero.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from tasks.replicates.power import POWER, seeds_to_resolve

CONFIDENCE = 0.95
MODEL, SEED = "model", "seed"
# Seeds per model at which the same test would resolve the observed difference (80 % power, alpha 0.05),
# from the observed spread: NaN with one seed (no spread) or when no practical number would.
SEEDS_FOR_POWER = f"seeds_for_{POWER * 100:.0f}_power"


def interval(values: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, sample standard deviation and the 95 % t interval of the mean (NaN where n < 2)."""
    values = np.asarray(values, dtype=float)
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(np.std(values, ddof=1))
    half_width = float(stats.t.ppf((1 + CONFIDENCE) / 2, len(values) - 1)) * std / math.sqrt(len(values))
    return mean, std, mean - half_width, mean + half_width


def summary_table(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per model (in the order first seen): `seeds`, then `<metric>_mean`, `_std`,
    `_ci95_low`, `_ci95_high` for each metric a model has (a model without it: empty cells)."""
    rows = []
    for model, group in runs.groupby(MODEL, sort=False):
        row: dict = {MODEL: model, "seeds": int(group[SEED].nunique())}
        for metric in metrics:
            values = group[metric].dropna().to_numpy(dtype=float) if metric in group else np.array([])
            statistics = interval(values) if len(values) else (math.nan,) * 4
            row.update(dict(zip(statistic_names(metric), statistics, strict=False)))
        rows.append(row)
    return pd.DataFrame(rows)


def _difference(first: pd.Series, second: pd.Series) -> dict:
    """`first - second` (each indexed by seed) with its 95 % interval and the test's name.

    Same seeds on both sides: a paired t-test on the per-seed differences (the two models saw the
    same data in the same order, so what a seed does to both cancels out and the interval is
    narrower). Otherwise Welch's t-test (unequal variances, no pairing). One value on a side: no test.
    """
    difference = float(first.mean() - second.mean())
    if len(first) < 2 or len(second) < 2:
        return {
            "difference": difference,
            "test": "none (one seed)",
            "ci95_low": math.nan,
            "ci95_high": math.nan,
            "p_value": math.nan,
            SEEDS_FOR_POWER: math.nan,
        }
    if set(first.index) == set(second.index):
        result = stats.ttest_rel(first.sort_index(), second.loc[first.sort_index().index])
        test = "paired t (same seeds)"
        spread = float(np.std(first.sort_index() - second.loc[first.sort_index().index], ddof=1))
    else:
        result = stats.ttest_ind(first, second, equal_var=False)
        test = "Welch t (different seeds)"
        spread = math.sqrt((np.var(first, ddof=1) + np.var(second, ddof=1)) / 2)
    needed = seeds_to_resolve(difference, spread, paired=test.startswith("paired"))
    low, high = result.confidence_interval(CONFIDENCE)
    if not (math.isfinite(low) and math.isfinite(high)):  # every difference identical: no spread at all
        low = high = difference
    return {
        "difference": difference,
        "test": test,
        "ci95_low": float(low),
        "ci95_high": float(high),
        "p_value": float(result.pvalue) if math.isfinite(result.pvalue) else math.nan,
        SEEDS_FOR_POWER: float(needed) if needed is not None else math.nan,
    }


def verdict(row: dict, first: str, second: str) -> str:
    if not math.isfinite(row["ci95_low"]):
        return "cannot tell (one seed)"
    if row["ci95_low"] > 0:
        return f"{first} better"
    if row["ci95_high"] < 0:
        return f"{second} better"
    return "within noise"


def differences_table(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """For every pair of models that both have `metric`: the difference of its means (first minus
    second, in the order the models were given), its 95 % interval, the test used and a verdict."""
    by_model = {
        model: group.dropna(subset=[metric]).set_index(SEED)[metric]
        for model, group in runs.groupby(MODEL, sort=False)
        if metric in group
    }
    by_model = {model: values for model, values in by_model.items() if len(values)}
    rows = []
    for first, second in itertools.combinations(by_model, 2):
        row = {
            "metric": metric,
            "model_a": first,
            "model_b": second,
            "seeds_a": len(by_model[first]),
            "seeds_b": len(by_model[second]),
            **_difference(by_model[first], by_model[second]),
        }
        row["verdict"] = verdict(row, first, second)
        rows.append(row)
    return pd.DataFrame(
        rows,
        columns=[
            "metric",
            "model_a",
            "model_b",
            "seeds_a",
            "seeds_b",
            "difference",
            "ci95_low",
            "ci95_high",
            "test",
            "p_value",
            "verdict",
            SEEDS_FOR_POWER,
        ],
    )


def curve_band(curves: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per epoch over seeds: mean and the 95 % interval (NaN bounds with one seed). Curves of unequal
    length (a seed stopped early) count only where they have a value."""
    length = max(len(curve) for curve in curves)
    means, lows, highs = (np.full(length, np.nan) for _ in range(3))
    for epoch in range(length):
        values = [curve[epoch] for curve in curves if epoch < len(curve)]
        means[epoch], _, lows[epoch], highs[epoch] = interval(np.array(values))
    return means, lows, highs


def statistic_names(metric: str) -> tuple[str, str, str, str]:
    return f"{metric}_mean", f"{metric}_std", f"{metric}_ci95_low", f"{metric}_ci95_high"


def group_statistics(finals: list[dict[str, float]]) -> dict[str, float]:
    """Over seeds (one dict of final metrics each): every metric's mean, standard deviation and 95 %
    interval (`interval`, as in `summary_table`), named `<metric>_mean`, `_std`, `_ci95_low`,
    `_ci95_high`; over the seeds that have the metric, and without the spread where only one has."""
    statistics: dict[str, float] = {}
    for metric in sorted({key for final in finals for key in final}):
        values = np.array([final[metric] for final in finals if metric in final], dtype=float)
        named = dict(zip(statistic_names(metric), interval(values), strict=False))
        statistics.update({name: value for name, value in named.items() if math.isfinite(value)})
    return statistics


def mean_curves(histories: list[dict[str, dict[int, float]]]) -> dict[str, dict[int, float]]:
    """Over seeds (metric -> step -> value each): each metric's mean at every step, over the seeds
    that have a value there (a seed that stopped early counts only where it has one, as in `curve_band`)."""
    curves: dict[str, dict[int, float]] = {}
    for metric in sorted({key for history in histories for key in history}):
        steps = sorted({step for history in histories for step in history.get(metric, {})})
        curves[metric] = {
            step: float(np.mean([history[metric][step] for history in histories if step in history.get(metric, {})]))
            for step in steps
        }
    return curves


def best_model(summary: pd.DataFrame, metric: str) -> str:
    """The model with the highest mean of `metric` over its seeds."""
    return str(summary.loc[summary[f"{metric}_mean"].idxmax(), MODEL])


def intervals_overlap(first: tuple[float, float], second: tuple[float, float]) -> bool:
    return first[0] <= second[1] and second[0] <= first[1]
