"""The study parts the product knows, in study order: name, flow, config and one-line summary.

Configs are light (pydantic and reference data); flows are named by path and imported only when
first used: listing or validating the parts must not pay for TensorFlow, MLflow and Prefect.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from studyflow.config import PartConfig
from studyflow.config.parts import PART_CONFIGS, PART_NAMES
from studyflow.config.study import StudyConfig


@dataclass(frozen=True)
class Part:
    name: str
    flow_path: str  # "module:attribute"
    config: type[PartConfig]
    summary: str
    datasets: tuple[str, ...] = ("mnist",)  # verified before anything starts
    # "module:function(client, config)" that checks the part's inputs before any flow starts
    preflight_path: str | None = None

    @property
    def flow(self) -> Any:
        return _resolve(self.flow_path)

    def preflight(self, config: PartConfig) -> None:
        """The part's own input check, if it has one (it reads the tracking store)."""
        if self.preflight_path:
            from studyflow import tracking

            _resolve(self.preflight_path)(tracking.connect(), config)


def _resolve(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


PARTS: dict[str, Part] = {
    part.name: part
    for part in (
        Part(
            "pca",
            "flows.pca:pca_flow",
            PART_CONFIGS["pca"],
            "PCA map of MNIST and linear separability of the 45 digit pairs",
        ),
        Part(
            "perceptron",
            "flows.perceptron:perceptron_flow",
            PART_CONFIGS["perceptron"],
            "perceptrons on pairs of MNIST digits",
        ),
        Part("mlp", "flows.mlp:mlp_flow", PART_CONFIGS["mlp"], "MLP architectures MLP-1..5 on MNIST"),
        Part(
            "cnn",
            "flows.cnn:cnn_flow",
            PART_CONFIGS["cnn"],
            "CNN architectures CNN-1..5 on MNIST; best CNN to the Model Registry",
        ),
        Part(
            "inspect",
            "flows.inspect:inspect_flow",
            PART_CONFIGS["inspect"],
            "inside the champion CNN: filters, activation maps, deep dream",
            preflight_path="tasks.inspect.source:check_model_exists",
        ),
        Part(
            "mtl",
            "flows.mtl:mtl_flow",
            PART_CONFIGS["mtl"],
            "multi-task learning on Fashion-MNIST across lambda, against single-task models",
            ("fashion-mnist",),
        ),
    )
}
assert tuple(PARTS) == PART_NAMES
STUDY = Part("study", "flows.study:study_flow", StudyConfig, "every part above, in order", ("mnist", "fashion-mnist"))


def datasets_needed(part_name: str, config: PartConfig) -> list[str]:
    """The datasets a run of the part (or of the study's chosen parts) reads."""
    names = config.parts if part_name == STUDY.name else [part_name]
    return sorted({dataset for name in names for dataset in PARTS[name].datasets})
