"""What every part's flow does around its tasks: connect, record the parent run, report ids."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from studyflow import tracking
from studyflow.config import PartConfig
from studyflow.tracking import RunRecorder
from tasks.data import Dataset


@contextmanager
def parent_run(part: str, config: PartConfig, dataset: Dataset, run_name: str | None = None) -> Iterator[RunRecorder]:
    """The flow's parent MLflow run with its config as params and its data as dataset input."""
    client = tracking.connect()
    name = run_name or f"{part}-{config.profile}"
    with tracking.tracked_run(
        client, part, name, profile=config.profile, seed=config.seed, dataset_digest=dataset.digest,
        tags={"studyflow.run_level": "parent"},
    ) as recorder:
        recorder.log_params(config.model_dump())
        recorder.log_dataset(dataset, "train")
        recorder.log_dataset(dataset, "test")
        yield recorder
    print(
        f"[studyflow] {part}: experiment {tracking.experiment_name(part)} (id {recorder.experiment_id}), "
        f"run {recorder.run_id}\n[studyflow] see it in the MLflow UI: {tracking.ui_command()}"
    )


def flow_parameters(values: dict) -> dict:
    """The arguments a flow was called with, minus unset ones (those take the profile's value)."""
    return {key: value for key, value in values.items() if value is not None and key != "profile"}
