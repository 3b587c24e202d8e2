"""Study part 4: CNN architectures on MNIST; the best goes to the Model Registry."""

from __future__ import annotations

from flows.architectures import compare_architectures
from flows.common import part_flow
from studyflow.config.parts import CnnConfig
from studyflow.tracking import RunRecorder, Tag
from tasks.architectures.record import ArchitectureSummary
from tasks.architectures.registry import ReplicateStats
from tasks.architectures.tasks import register_and_promote_task
from tasks.data import Dataset
from tasks.training import TrainingData


@part_flow("cnn", CnnConfig)
def cnn_flow(config: CnnConfig) -> list[dict]:
    """Each CNN architecture in its own child run per seed; the best by mean validation accuracy to the
    Model Registry."""
    return compare_architectures("cnn", config, then=lambda *part: _register_best(config, *part))


def _register_best(
    config: CnnConfig, recorder: RunRecorder, result: ArchitectureSummary, dataset: Dataset, data: TrainingData
) -> None:
    best = result.best  # the best mean validation accuracy's architecture, its best-validation seed
    row = result.summary.set_index("model").loc[best.name]
    replicates = ReplicateStats(
        int(row["seeds"]),
        row["test_accuracy_mean"],
        row["test_accuracy_ci95_low"],
        row["test_accuracy_ci95_high"],
        row["val_accuracy_mean"],
    )
    test_set = f"mnist test ({len(data.test_targets)} images, seed {config.seed}, digest {dataset.short_digest})"
    decision = register_and_promote_task(
        recorder.client,
        best.model_uri,
        best.run_id,
        data.test_inputs,
        data.test_targets,
        test_set,
        config.registered_model,
        replicates,
    )
    recorder.set_tags(
        {
            Tag.REGISTERED_VERSION: decision.version,
            Tag.PROMOTED: str(decision.promoted).lower(),
            Tag.PROMOTION_REASON: decision.reason,
        }
    )
