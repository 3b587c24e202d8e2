"""The study parts the product knows, in study order: name, flow, config and one-line summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flows.cnn import CnnConfig, cnn_flow
from flows.inspect import InspectConfig, inspect_flow
from flows.mlp import MlpConfig, mlp_flow
from flows.mtl import MtlConfig, mtl_flow
from flows.pca import PcaConfig, pca_flow
from flows.perceptron import PerceptronConfig, perceptron_flow
from studyflow.config import PartConfig


@dataclass(frozen=True)
class Part:
    name: str
    flow: Any
    config: type[PartConfig]
    summary: str


PARTS: dict[str, Part] = {
    part.name: part
    for part in (
        Part("pca", pca_flow, PcaConfig, "PCA map of MNIST and linear separability of the 45 digit pairs"),
        Part("perceptron", perceptron_flow, PerceptronConfig, "perceptrons on pairs of MNIST digits"),
        Part("mlp", mlp_flow, MlpConfig, "MLP architectures MLP-1..5 on MNIST"),
        Part("cnn", cnn_flow, CnnConfig, "CNN architectures CNN-1..5 on MNIST; best CNN to the Model Registry"),
        Part("inspect", inspect_flow, InspectConfig, "inside the champion CNN: filters, activation maps, deep dream"),
        Part("mtl", mtl_flow, MtlConfig, "multi-task learning on Fashion-MNIST across lambda, against single-task models"),
    )
}
