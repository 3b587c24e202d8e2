"""The report's tables: cells that carry a link and a flag, and original-vs-ours comparisons.

Every compared accuracy says where ours lies against the original: above, below or within noise
(tasks.report.judging names the rule), and ⚑ marks a difference beyond noise in either direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tasks.report.judging import judge_one_seed, signed

MISSING = "-"


@dataclass(frozen=True)
class Cell:
    text: str
    href: str | None = None  # the MLflow run the number came from
    flag: bool = False  # on the difference cell: ours beyond noise from the original, or a count that differs

    @classmethod
    def of(cls, value, href: str | None = None, fmt: str = "{}") -> Cell:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return cls(MISSING)
        return cls(fmt.format(value), href)


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)


def _known(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def accuracy_cells(
    original: float | None, ours: float | None, href: str | None, images: int | None = None
) -> list[Cell]:
    """Original, ours (linked), and the difference with where ours lies: above, below or within
    noise of the original (one seed: binomial noise on `images`; None: the direction only)."""
    if not (_known(ours) and _known(original)):
        return [Cell.of(original, fmt="{:.4f}"), Cell.of(ours, href, "{:.4f}"), Cell(MISSING)]
    judgement = judge_one_seed(original, ours, images)
    return [
        Cell(f"{original:.4f}"),
        Cell(f"{ours:.4f}", href),
        Cell(f"{signed(ours - original, 4)} {judgement.words}", flag=judgement.beyond_noise),
    ]


def count_cells(original: int | None, ours: float | None, href: str | None) -> list[Cell]:
    """Parameter counts compare exactly: a model whose count differs is a different model."""
    if not (_known(ours) and _known(original)):
        return [Cell.of(original, fmt="{:,}"), Cell.of(ours, href, "{:,.0f}"), Cell(MISSING)]
    same = int(ours) == int(original)
    verdict = "exact" if same else f"differs by {int(ours) - int(original):+,}"
    return [Cell(f"{int(original):,}"), Cell(f"{int(ours):,}", href), Cell(verdict, flag=not same)]


def ratio_cells(original: float | None, ours: float | None, href: str | None, fmt: str = "{:.1f}") -> list[Cell]:
    """Times (and iterations) on different machines: shown with their ratio, never flagged."""
    if not (_known(ours) and _known(original)) or original == 0:
        return [Cell.of(original, fmt=fmt), Cell.of(ours, href, fmt), Cell(MISSING)]
    return [Cell(fmt.format(original)), Cell(fmt.format(ours), href), Cell(f"x{ours / original:.2f}")]


def difference_cells(
    original: float | None, ours: float | None, href: str | None, fmt: str = "{:.2f}", relative: bool = False
) -> list[Cell]:
    """Quantities with no better direction (centroids, variances): original, ours, difference
    (`relative`: with the difference as a percentage of the original's)."""
    if not (_known(ours) and _known(original)):
        return [Cell.of(original, fmt=fmt), Cell.of(ours, href, fmt), Cell(MISSING)]
    decimals = int(fmt[3:-2])
    text = signed(ours - original, decimals)
    if relative and original:
        text += f" ({signed(100 * (ours - original) / abs(original), 0)} %)"
    return [Cell(fmt.format(original)), Cell(fmt.format(ours), href), Cell(text)]


def comparison_columns(figures: list[str]) -> list[str]:
    columns = []
    for figure in figures:
        # an accuracy's difference says where ours lies (above, below, within noise); others are plain
        third = (
            "ratio"
            if figure.startswith(("time", "iterations"))
            else "match"
            if figure == "parameters"
            else "difference: ours is"
            if "accuracy" in figure
            else "difference"
        )
        columns += [f"{figure} (original)", f"{figure} (ours)", third]
    return columns
