"""Study part 3: MLP architectures on MNIST."""

from __future__ import annotations

from flows.architectures import compare_architectures
from flows.common import part_flow
from studyflow.config.parts import MlpConfig


@part_flow("mlp", MlpConfig)
def mlp_flow(config: MlpConfig) -> list[dict]:
    """Each MLP architecture in its own child run per seed; the summary over seeds; learning curves,
    accuracy against time, MLP vs CNN."""
    return compare_architectures("mlp", config)
