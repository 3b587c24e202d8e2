"""Reference data the product relies on, kept as data in this folder (TOML), read once.

- `original_study.toml`: the figures the original study reported, which the report sets ours beside.
- `architectures.toml`: the study's named networks (MLP-1..5, CNN-1..5), their exact parameter
  counts, the Fashion-MNIST groups of part 6, and the image geometry the configs validate against.

Nothing here imports TensorFlow: configs validate against these facts before any model is built.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent


@cache
def _load(name: str) -> dict[str, Any]:
    return tomllib.loads((FOLDER / f"{name}.toml").read_text(encoding="utf-8"))


def original_study() -> dict[str, Any]:
    """The original study's figures, by part."""
    return _load("original_study")


def architectures() -> dict[str, Any]:
    """The study's named networks and the facts their configs are checked against."""
    return _load("architectures")


def named_architectures(kind: str) -> dict[str, list[int]]:
    """MLP hidden widths or CNN filters per layer, by architecture name, in study order."""
    return {entry["name"]: list(entry["layers"]) for entry in architectures()[kind]}


def expected_param_counts(kind: str) -> dict[str, int]:
    return {entry["name"]: entry["param_count"] for entry in architectures()[kind]}


def max_cnn_depth() -> int:
    return architectures()["geometry"]["max_cnn_depth"]


def fashion_groups() -> dict[str, list[int]]:
    """Part 6's task-2 groups: group name -> Fashion-MNIST class ids (group index in this order)."""
    return {name: list(ids) for name, ids in architectures()["fashion_groups"].items()}
