"""Whether ours differs from the original beyond noise, in either direction, by a rule the report names.

Two rules. With replicates, our 95 % interval over seeds: the original inside it is within noise;
so is an original within the one-seed binomial band (below) of our mean, as seeds vary the training
but not the images an accuracy is measured on (the perceptron's 1 vs 0 gave 0.9991 with every seed,
an interval of zero width that would flag any difference, 0.0001 included).
With one seed there is no seed-to-seed spread to go by, so the rule is the sampling noise of an
accuracy measured on a finite set of images: the binomial standard error sqrt(p (1 - p) / n) at the
original's accuracy p and the n images ours was measured on, beyond noise past 1.96 of them. It knows
nothing of seed noise, which on MNIST networks is often larger: a one-seed flag says "worth
replicating", not "a different result".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the standard normal's 0.975 quantile: a two-sided 95 % band

ONE_SEED_RULE = (
    "one seed: beyond noise when |ours - original| exceeds 1.96 binomial standard errors of an "
    "accuracy, 1.96 sqrt(p (1 - p) / n), p the original's accuracy and n the images ours was measured "
    "on (10,000 test images give ±0.0043 at p = 0.95); it counts test-set sampling only, not seed noise"
)
INTERVAL_RULE = (
    "several seeds: beyond noise when the original's figure lies outside our 95 % interval over seeds "
    "and, as seeds do not vary the images measured on, outside the one-seed binomial band around our mean"
)


@dataclass(frozen=True)
class Judgement:
    direction: str  # "above", "below" or "within": where ours lies against the original
    beyond_noise: bool
    rule: str  # how it was judged, in a few words

    @property
    def words(self) -> str:
        """What the difference cell says after the number: "above", "below", "within noise"."""
        if self.direction == "within":
            return "within noise" if self.rule else "equal"
        return self.direction if self.rule else f"{self.direction} (no noise rule)"


def binomial_noise(accuracy: float, images: int) -> float:
    """Half-width of the 95 % band of an accuracy measured on `images` images."""
    return Z_95 * math.sqrt(max(accuracy * (1 - accuracy), 0.0) / images)


def judge_one_seed(original: float, ours: float, images: int | None) -> Judgement:
    """Ours against the original with one seed: binomial noise on `images` (None: no rule, direction only)."""
    difference = ours - original
    direction = "above" if difference > 0 else "below" if difference < 0 else "within"
    if images is None or images <= 0:
        return Judgement(direction, False, "")
    if abs(difference) <= binomial_noise(original, images):
        return Judgement("within", False, "binomial")
    return Judgement(direction, True, "binomial")


def judge_interval(original: float, low: float, high: float, mean: float, images: int | None) -> Judgement:
    """Ours (an interval over seeds around `mean`) against the original's single figure; with `images`,
    also within noise when the original is within the binomial band of an accuracy on that many images."""
    if low <= original <= high or (images and abs(mean - original) <= binomial_noise(original, images)):
        return Judgement("within", False, "interval")
    return Judgement("below" if original > high else "above", True, "interval")


def signed(value: float, decimals: int) -> str:
    """`value` with its sign, except when it rounds to zero: "0.00", never "-0.00"."""
    text = f"{value:+.{decimals}f}"
    return text[1:] if float(text) == 0 else text
