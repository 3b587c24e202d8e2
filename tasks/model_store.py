"""Logging a trained Keras model to MLflow once, checked by loading it back."""

from __future__ import annotations

from importlib import metadata

import keras
import mlflow
import mlflow.keras
import numpy as np
from mlflow.entities import LoggedModelOutput
from mlflow.models import infer_signature

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


def log_keras_model(recorder: RunRecorder, model: keras.Model, sample_inputs: np.ndarray) -> str:
    """Log the model in Keras' native format with a signature; returns its `models:/` URI.

    No input example: with one, MLflow's Keras flavour crashed here and left an empty logged model
    that registered "successfully"; the signature carries the schema instead.
    """
    sample = sample_inputs[:8]
    signature = infer_signature(sample, outputs(model, sample))
    # The client-side run id is passed explicitly: no fluent active run, so any thread can log.
    logged = mlflow.initialize_logged_model(
        name="model", source_run_id=recorder.run_id, experiment_id=recorder.experiment_id, model_type="keras")
    info = mlflow.keras.log_model(model, name="model", signature=signature, pip_requirements=MODEL_REQUIREMENTS,
                                  model_id=logged.model_id)
    recorder.client.log_outputs(recorder.run_id, models=[LoggedModelOutput(logged.model_id, step=0)])
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
            raise ModelIntegrityError(f"{model_uri}: {which} predicts differently from the trained model "
                                      f"(max difference {difference:.2e})")
    return reloaded
