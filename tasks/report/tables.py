"""The report's tables: cells that carry a link and a flag, and original-vs-ours comparisons."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Ours is flagged when it is worse than the original by more than this (one percentage point).
WORSE_BY_MORE_THAN = 0.01
MISSING = "-"


@dataclass(frozen=True)
class Cell:
    text: str
    href: str | None = None  # the MLflow run the number came from
    flag: bool = False  # on the difference cell: ours worse by more than 1 pp, or a count that differs

    @classmethod
    def of(cls, value, href: str | None = None, fmt: str = "{}") -> "Cell":
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return cls(MISSING)
        return cls(fmt.format(value), href)


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)


def accuracy_cells(original: float | None, ours: float | None, href: str | None) -> list[Cell]:
    """Original, ours (linked), difference, and a flag when ours is worse by more than 1 pp."""
    if ours is None or original is None:
        return [Cell.of(original, fmt="{:.4f}"), Cell.of(ours, href, "{:.4f}"), Cell(MISSING)]
    difference = ours - original
    flagged = difference < -WORSE_BY_MORE_THAN
    return [Cell.of(original, fmt="{:.4f}"), Cell(f"{ours:.4f}", href),
            Cell(f"{difference:+.4f}", flag=flagged)]


def count_cells(original: int | None, ours: float | None, href: str | None) -> list[Cell]:
    """Parameter counts compare exactly: a model whose count differs is a different model."""
    if ours is None or original is None:
        return [Cell.of(original, fmt="{:,}"), Cell.of(ours, href, "{:,.0f}"), Cell(MISSING)]
    same = int(ours) == int(original)
    verdict = "exact" if same else f"differs by {int(ours) - int(original):+,}"
    return [Cell(f"{int(original):,}"), Cell(f"{int(ours):,}", href), Cell(verdict, flag=not same)]


def ratio_cells(original: float | None, ours: float | None, href: str | None, fmt: str = "{:.1f}") -> list[Cell]:
    """Times (and epochs) on different machines: shown with their ratio, never flagged."""
    if ours is None or original is None or original == 0:
        return [Cell.of(original, fmt=fmt), Cell.of(ours, href, fmt), Cell(MISSING)]
    return [Cell(fmt.format(original)), Cell(fmt.format(ours), href), Cell(f"x{ours / original:.2f}")]


def difference_cells(original: float | None, ours: float | None, href: str | None, fmt: str = "{:.2f}") -> list[Cell]:
    """Quantities with no better direction (centroids, variances): original, ours, difference."""
    if ours is None or original is None:
        return [Cell.of(original, fmt=fmt), Cell.of(ours, href, fmt), Cell(MISSING)]
    return [Cell(fmt.format(original)), Cell(fmt.format(ours), href), Cell(("{:+" + fmt[2:]).format(ours - original))]


def comparison_columns(figures: list[str]) -> list[str]:
    columns = []
    for figure in figures:
        third = "ratio" if figure.startswith(("time", "epochs")) else ("match" if figure == "parameters" else "difference")
        columns += [f"{figure} (original)", f"{figure} (ours)", third]
    return columns
