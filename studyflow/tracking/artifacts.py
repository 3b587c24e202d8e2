"""What a run holds besides its metrics: figures, tables, texts and the datasets it used. Written by
the RunRecorder (studyflow.tracking.runs), which this class is a part of: it needs the recorder's
client, run id and metric links."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

import pandas as pd
from mlflow.exceptions import MlflowException

from studyflow import paths
from studyflow.tracking.links import MetricLinks, dataset_input

if TYPE_CHECKING:
    from mlflow import MlflowClient


class ArtifactWriter:
    """Figures, tables and texts as artifacts, datasets as inputs, of the run `run_id`."""

    client: MlflowClient
    run_id: str
    links: MetricLinks

    def log_figure(self, figure, artifact_file: str) -> None:
        """A matplotlib figure as a PNG artifact; the figure is closed afterwards."""
        import matplotlib.pyplot as plt

        try:
            self.client.log_figure(self.run_id, figure, artifact_file, save_kwargs={"dpi": 110, "bbox_inches": "tight"})
        finally:
            plt.close(figure)

    def log_table(self, table: pd.DataFrame, artifact_stem: str, caption: str = "") -> None:
        """A table as CSV (for tools) and Markdown (for people), side by side."""
        buffer = io.StringIO()
        table.to_csv(buffer, index=False)
        self.client.log_text(self.run_id, buffer.getvalue(), f"{artifact_stem}.csv")
        markdown = (f"{caption}\n\n" if caption else "") + table.to_markdown(index=False) + "\n"
        self.client.log_text(self.run_id, markdown, f"{artifact_stem}.md")

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_dict(self, data: dict, artifact_file: str) -> None:
        self.client.log_text(self.run_id, json.dumps(data, indent=2, default=str), artifact_file)

    def log_dataset(self, dataset, context: str) -> None:
        """Record which data the run used (MLflow dataset inputs), by digest, without copying it."""
        train = context == "train"
        self.log_split(
            f"{dataset.name}-{context}",
            context,
            dataset.train_images if train else dataset.test_images,
            dataset.train_labels if train else dataset.test_labels,
            str(paths.data_dir() / dataset.name),
        )

    def log_split(self, name: str, context: str, features, targets, source: str) -> None:
        """One split a model is trained or evaluated on, as a dataset input with its own digest; the
        run's metrics of that split (`train_*`, `val_*`, `test_*`) are linked to it from now on."""
        entity, digest = dataset_input(name, context, features, targets, source)
        try:
            self.client.log_inputs(self.run_id, datasets=[entity])
        except MlflowException as exc:
            # The store records a dataset once per experiment: two processes logging the same split at
            # once (trainings fanned out on Dask) race to insert it, and the loser is told it exists.
            # Its second call finds the dataset and only links it.
            if "unique" not in str(exc).lower() and "duplicate" not in str(exc).lower():
                raise
            self.client.log_inputs(self.run_id, datasets=[entity])
        self.links.datasets[context] = (name, digest)
