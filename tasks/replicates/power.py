"""How many seeds would resolve a difference: the power of a two-sided t-test, from the spread observed.

The test is the one `compute` uses on replicates: paired on the per-seed differences when both models
ran the same seeds, else a two-sample test. Its power at n seeds comes from the noncentral t
distribution (scipy), not a normal approximation: with the handful of seeds a study can afford, the
approximation promises resolution one or two seeds too early.
"""

from __future__ import annotations

import math

from scipy import stats

ALPHA = 0.05
POWER = 0.80
MOST_SEEDS = 100_000  # beyond this a difference is, for a study, unresolvable


def t_test_power(effect_size: float, seeds: int, paired: bool, alpha: float = ALPHA) -> float:
    """The chance that a two-sided t-test at level `alpha` finds a true standardised difference
    `effect_size` (difference / spread) with `seeds` seeds per model."""
    if seeds < 2:
        return 0.0
    if paired:
        freedom, noncentrality = seeds - 1, effect_size * math.sqrt(seeds)
    else:
        freedom, noncentrality = 2 * seeds - 2, effect_size * math.sqrt(seeds / 2)
    critical = stats.t.ppf(1 - alpha / 2, freedom)
    return float(stats.nct.sf(critical, freedom, noncentrality) + stats.nct.cdf(-critical, freedom, noncentrality))


def seeds_to_resolve(
    difference: float, spread: float, paired: bool, alpha: float = ALPHA, power: float = POWER
) -> int | None:
    """The fewest seeds per model at which the test resolves `difference` with probability `power`.

    `spread`: the standard deviation of the per-seed differences (paired) or each model's own over
    seeds (two-sample, pooled). None when no number of seeds would: no difference, an unknown
    spread, or more than MOST_SEEDS."""
    if not (math.isfinite(difference) and math.isfinite(spread)) or difference == 0:
        return None
    if spread == 0:  # no spread at all: any two seeds show it
        return 2
    effect = abs(difference) / spread
    if t_test_power(effect, MOST_SEEDS, paired, alpha) < power:
        return None
    low, high = 1, 2  # power rises with seeds: double until enough, then bisect
    while t_test_power(effect, high, paired, alpha) < power:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if t_test_power(effect, middle, paired, alpha) < power else (low, middle)
    return high


def spread_from_interval(
    low: float, high: float, seeds_a: int, seeds_b: int, paired: bool, confidence: float = 0.95
) -> float:
    """The spread behind a difference's t interval, for tables that kept the interval only.

    Paired: the half-width is t(n-1) * s / sqrt(n), inverted exactly. Two-sample: the pooled spread
    s with half-width t * s * sqrt(1/na + 1/nb), at the smaller side's degrees of freedom (Welch's
    lie between it and na + nb - 2: the spread comes out no smaller than it is)."""
    half_width = (high - low) / 2
    if not math.isfinite(half_width) or min(seeds_a, seeds_b) < 2:
        return math.nan
    quantile = (1 + confidence) / 2
    if paired:
        return half_width * math.sqrt(seeds_a) / float(stats.t.ppf(quantile, seeds_a - 1))
    freedom = min(seeds_a, seeds_b) - 1
    return half_width / (float(stats.t.ppf(quantile, freedom)) * math.sqrt(1 / seeds_a + 1 / seeds_b))
