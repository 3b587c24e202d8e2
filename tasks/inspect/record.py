"""Study part 5 in MLflow: everything is logged into one run, linked to its source: tags name the
model URI and the run that trained it, the logged model is recorded as the run's input, and the
run's description links to the source run in the MLflow UI.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import LoggedModelInput

from studyflow import tracking
from studyflow.config.parts import DreamSettings
from studyflow.tracking import RunRecorder, Tag
from studyflow.tracking.descriptions import DESCRIPTION_TAG, PART_DESCRIPTIONS
from studyflow.tracking.model_source import ModelSource
from studyflow.tracking.names import inspection_run_name
from studyflow.tracking.store import TRAINING_VIEW
from tasks.data import Dataset
from tasks.inspect import figures as inspection_figures
from tasks.inspect.compute import DigitImage, DreamResult, activation_maps, choose_digit_images, filter_grids

PART = "inspect"


def source_tags(client: MlflowClient, source: ModelSource) -> dict[str, str]:
    tags = {Tag.SOURCE_MODEL_URI: source.uri, Tag.SOURCE_RUN_ID: source.run_id}
    if source.model_id:
        tags[Tag.SOURCE_MODEL_ID] = source.model_id
    if source.registered_version:
        tags[Tag.SOURCE_MODEL_VERSION] = source.registered_version
    experiment_id = client.get_run(source.run_id).info.experiment_id
    # The run description is Markdown in the MLflow UI: a click leads to the run that trained the model.
    tags[DESCRIPTION_TAG] = (
        f"{PART_DESCRIPTIONS['inspect']}\n\nInside the CNN `{source.uri}`, trained and logged by run "
        f"[{source.run_id}](#/experiments/{experiment_id}/runs/{source.run_id}{TRAINING_VIEW})."
    )
    return tags


@contextmanager
def inspection_run(
    client: MlflowClient, params: dict, profile: str, seed: int, dataset: Dataset, source: ModelSource
) -> Iterator[RunRecorder]:
    """The part's one MLflow run, linked to the model's run; ends FINISHED, FAILED or KILLED."""
    run_name = inspection_run_name((source.registered_version or source.run_id[:8]).replace("/", "-v"))
    with tracking.tracked_run(
        client,
        PART,
        run_name,
        profile=profile,
        seed=seed,
        dataset_digest=dataset.digest,
        tags=source_tags(client, source),
    ) as recorder:
        recorder.log_params({**params, "source_run_id": source.run_id})
        recorder.log_dataset(dataset, "test")
        if source.model_id:
            client.log_inputs(recorder.run_id, models=[LoggedModelInput(source.model_id)])
        yield recorder
    print(
        f"[studyflow] {PART}: experiment {tracking.experiment_name(PART)} (id {recorder.experiment_id}), "
        f"run {recorder.run_id}, model {source.uri} from run {source.run_id}: "
        f"{tracking.run_url(recorder.experiment_id, recorder.run_id)}"
    )


def log_digit_choice(
    recorder: RunRecorder, model: keras.Model, dataset: Dataset, digits: list[int]
) -> list[DigitImage]:
    """Choose the test images (first correctly classified of each digit) and record which."""
    chosen = choose_digit_images(model, dataset.test_images, dataset.test_labels, digits)
    params = {}
    for image in chosen:
        params[f"image_index_{image.digit}"] = image.test_index
        params[f"image_predicted_{image.digit}"] = image.predicted
    recorder.log_params(params)
    recorder.log_metrics({f"image_probability_{image.digit}": image.probability for image in chosen})
    return chosen


def log_filters(recorder: RunRecorder, model: keras.Model) -> dict[str, int]:
    """One PNG per conv layer; returns the number of filter panels drawn per layer."""
    panels = {}
    for grid in filter_grids(model):
        figure = inspection_figures.filter_grid_figure(grid)
        panels[grid.layer] = len(figure.axes[0].images)
        recorder.log_figure(figure, f"figures/filters/{grid.layer}.png")
    recorder.log_params(
        {
            "filter_view": "layer 1: the kernel; deeper layers: each filter's strongest input channel",
            **{f"{layer}_filters": count for layer, count in panels.items()},
        }
    )
    return panels


def log_activations(recorder: RunRecorder, model: keras.Model, chosen: list[DigitImage]) -> list[str]:
    """One PNG per conv layer with every activation map of every chosen image."""
    maps = activation_maps(model, np.stack([image.image for image in chosen]))
    for layer, layer_maps in maps.items():
        recorder.log_figure(
            inspection_figures.activation_figure(layer, layer_maps, chosen), f"figures/activations/{layer}.png"
        )
    return list(maps)


def dream_metrics(dreams: list[DreamResult]) -> dict[str, float]:
    metrics = {}
    for dream in dreams:
        prefix = f"dream_{dream.target}_{dream.start}"
        metrics.update(
            {
                f"{prefix}_score_before": dream.score_before,
                f"{prefix}_score_after": dream.score_after,
                f"{prefix}_probability_before": dream.probability_before,
                f"{prefix}_probability_after": dream.probability_after,
            }
        )
    return metrics


def log_dreams(
    recorder: RunRecorder, dreams: list[DreamResult], chosen: list[DigitImage], settings: DreamSettings
) -> dict[str, float]:
    """Log the dreams of each class: scores, histories, one figure per class, the images."""
    metrics = dream_metrics(dreams)
    recorder.log_metrics(metrics)
    for dream in dreams:
        recorder.log_metric_history(f"dream_{dream.target}_{dream.start}_score", dream.score_history, first_step=0)
    for image in chosen:
        own = [dream for dream in dreams if dream.target == image.digit]
        recorder.log_figure(
            inspection_figures.dream_figure(image, own, settings.dream_steps), f"figures/dreams/class_{image.digit}.png"
        )
    table = pd.DataFrame(
        [
            {
                "class": d.target,
                "start": d.start,
                "logit_before": d.score_before,
                "logit_after": d.score_after,
                "probability_before": d.probability_before,
                "probability_after": d.probability_after,
            }
            for d in dreams
        ]
    )
    recorder.log_table(
        table.round(4),
        "tables/dream_scores",
        "Deep dream: the class's pre-softmax score (logit) and softmax probability, "
        "before and after gradient ascent on the input (pixels in [0, 1]).",
    )
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        **{
            f"{d.target}_{d.start}_{kind}": image
            for d in dreams
            for kind, image in (("start", d.start_image), ("dream", d.image))
        },
    )
    _log_bytes(recorder, buffer.getvalue(), "arrays/dreams.npz")
    return metrics


def _log_bytes(recorder: RunRecorder, payload: bytes, artifact_file: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(artifact_file).name
        path.write_bytes(payload)
        recorder.client.log_artifact(recorder.run_id, str(path), str(Path(artifact_file).parent))
