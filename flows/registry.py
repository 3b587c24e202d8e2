"""The study parts the product knows, in study order: name, flow, config and one-line summary.

Flows and configs are named here and imported only when first used: listing the parts (the
command line's help, its choices) must not pay for importing TensorFlow, MLflow and Prefect.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Part:
    name: str
    flow_path: str  # "module:attribute"
    config_path: str
    summary: str

    @property
    def flow(self) -> Any:
        return _resolve(self.flow_path)

    @property
    def config(self) -> type:
        return _resolve(self.config_path)


def _resolve(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


PARTS: dict[str, Part] = {
    part.name: part
    for part in (
        Part("pca", "flows.pca:pca_flow", "flows.pca:PcaConfig",
             "PCA map of MNIST and linear separability of the 45 digit pairs"),
        Part("perceptron", "flows.perceptron:perceptron_flow", "flows.perceptron:PerceptronConfig",
             "perceptrons on pairs of MNIST digits"),
        Part("mlp", "flows.mlp:mlp_flow", "flows.mlp:MlpConfig", "MLP architectures MLP-1..5 on MNIST"),
        Part("cnn", "flows.cnn:cnn_flow", "flows.cnn:CnnConfig",
             "CNN architectures CNN-1..5 on MNIST; best CNN to the Model Registry"),
        Part("inspect", "flows.inspect:inspect_flow", "flows.inspect:InspectConfig",
             "inside the champion CNN: filters, activation maps, deep dream"),
        Part("mtl", "flows.mtl:mtl_flow", "flows.mtl:MtlConfig",
             "multi-task learning on Fashion-MNIST across lambda, against single-task models"),
    )
}
STUDY = Part("study", "flows.study:study_flow", "flows.study:StudyConfig", "every part above, in order")
