"""What links a run's metrics to the model and the data they describe (MLflow 3's logged models).

A training run logs its three splits as dataset inputs (train, validation, test: each its own
digest and context) and creates its logged model before the first epoch. Its curves (one value per
epoch) are the run's only: MLflow keeps every value logged with a model's id as one of the model's
metrics, and its UI shows the first of them, so a model linked to its curves showed its first
epoch's accuracy. Once trained, the model gets each metric's final value, the run's latest, once; a
metric of one split (`train_*`, `val_*`, `test_*`) names the dataset it was measured on, so the
MLflow UI shows the logged model with its metrics and datasets.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from mlflow.entities import DatasetInput, InputTag, Metric

SPLIT_CONTEXTS = {"train_": "train", "val_": "validation", "test_": "test"}  # metric prefix -> dataset context
CONTEXT_TAG = "mlflow.data.context"


@dataclass
class MetricLinks:
    model_id: str | None = None
    datasets: dict[str, tuple[str, str]] = field(default_factory=dict)  # context -> (name, digest)

    def metric(self, key: str, value: float, timestamp: int, step: int) -> Metric:
        """The value as the model's metric, measured on its split's dataset."""
        context = next((context for prefix, context in SPLIT_CONTEXTS.items() if key.startswith(prefix)), None)
        name, digest = self.datasets.get(context, (None, None)) if context else (None, None)
        return Metric(key, value, timestamp, step, model_id=self.model_id, dataset_name=name, dataset_digest=digest)


def dataset_input(
    name: str, context: str, features: np.ndarray, targets, source: str, digest: str | None = None
) -> tuple[DatasetInput, str]:
    """An MLflow dataset input for arrays (by digest, never copied) and its digest: MLflow's own of
    the arrays unless one is given."""
    import mlflow.data

    with warnings.catch_warnings():  # MLflow warns that a local path fits two source types
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_numpy(features, targets=targets, name=name, digest=digest, source=source)
    return DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(CONTEXT_TAG, context)]), dataset.digest
