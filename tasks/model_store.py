"""Logging a trained Keras model to MLflow once, checked by loading it back."""

from __future__ import annotations

from importlib import metadata

import keras
import mlflow
import mlflow.keras
import numpy as np
from mlflow.entities import LoggedModelOutput
from mlflow.models import infer_signature

from studyflow import paths
from studyflow.errors import ModelIntegrityError
from studyflow.tracking import RunRecorder

# Given explicitly: otherwise MLflow infers them for each model, which costs seconds per model.
MODEL_REQUIREMENTS = [f"{name}=={metadata.version(name)}" for name in ("tensorflow-cpu", "keras", "numpy")]
# A model reloaded from the store must score what the trained one scored, to this tolerance.
ROUND_TRIP_TOLERANCE = 1e-6


def outputs(model: keras.Model, inputs: np.ndarray):
    """The model's outputs on a few inputs, as NumPy (a dict for multi-output models).

    A direct call, not `model.predict`: predict builds a tf.data pipeline and traces a function
    for each new model, three times per logged model; the trained and the reloaded
    model are called the same way, so the check compares like with like.
    """
    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(inputs, training=False))


def log_splits(recorder: RunRecorder, data, dataset_name: str) -> None:
    """The training, validation and test splits a model learns and is scored on, as the run's three
    dataset inputs (each its own digest and context); the run's metrics of each split link to it."""
    source = str(paths.data_dir() / dataset_name)
    for split, context, features, targets in (
        ("train", "train", data.train_inputs, data.train_targets),
        ("val", "validation", data.val_inputs, data.val_targets),
        ("test", "test", data.test_inputs, data.test_targets),
    ):
        recorder.log_split(f"{dataset_name}-{split}", context, features, targets, source)


def log_keras_model(recorder: RunRecorder, model: keras.Model, sample_inputs: np.ndarray) -> str:
    """Store the trained model in the run's logged model (created before training, named after the
    architecture, so it holds the run's final metrics and datasets), in Keras' native format with a
    signature; returns its `models:/` URI.

    No input example: with one, MLflow's Keras flavour crashed here and left an empty logged model
    that registered "successfully"; the signature carries the schema instead.
    """
    sample = sample_inputs[:8]
    signature = infer_signature(sample, outputs(model, sample))
    model_id = recorder.links.model_id or recorder.start_logged_model(model.name)
    # The client-side run id is passed explicitly: no fluent active run, so any thread can log.
    info = mlflow.keras.log_model(
        model,
        name=recorder.client.get_logged_model(model_id).name,
        signature=signature,
        pip_requirements=MODEL_REQUIREMENTS,
        model_id=model_id,
    )
    recorder.client.log_outputs(recorder.run_id, models=[LoggedModelOutput(model_id, step=0)])
    recorder.link_final_metrics()  # the model's metrics are the trained weights', not the first epoch's
    return info.model_uri


def verify_round_trip(model_uri: str, model: keras.Model, inputs: np.ndarray) -> keras.Model:
    """Load the logged model back and check it predicts what the trained model predicts (every output)."""
    reloaded = mlflow.keras.load_model(model_uri)
    expected, actual = outputs(model, inputs), outputs(reloaded, inputs)
    named = expected.items() if isinstance(expected, dict) else [(None, expected)]
    for output, values in named:
        difference = float(np.max(np.abs(values - (actual[output] if output is not None else actual))))
        if difference > ROUND_TRIP_TOLERANCE:
            which = f"output {output!r}" if output is not None else "it"
            raise ModelIntegrityError(
                f"{model_uri}: {which} predicts differently from the trained model (max difference {difference:.2e})"
            )
    return reloaded
