"""Study part 3: MLP architectures on MNIST."""

from __future__ import annotations

from flows.architectures import prepare, train_all
from flows.common import parent_run, part_flow
from studyflow.config.parts import MlpConfig
from tasks.architectures.tasks import log_architecture_summary_task, log_mlp_vs_cnn_task


@part_flow("mlp", MlpConfig)
def mlp_flow(config: MlpConfig) -> list[dict]:
    """Each MLP architecture in its own child run per seed; the summary over seeds; learning curves, accuracy against time, MLP vs CNN."""
    dataset, data = prepare(config)
    with parent_run("mlp", config, dataset) as recorder:
        outcomes = train_all(recorder, "mlp", config, data)
        result = log_architecture_summary_task(recorder, "mlp", outcomes)
        log_mlp_vs_cnn_task(recorder, "mlp")
    return result.summary.to_dict(orient="records")
