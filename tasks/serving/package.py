"""A trained Keras digit classifier packaged for serving: one MLflow model, two flavors.

- `python_function`: the DigitClassifier of tasks/serving/classifier.py (logged as model code, so
  loading it needs no studyflow), which checks the input contract and returns a label with the 10
  probabilities. `mlflow models serve`, `mlflow.pyfunc.load_model` and `studyflow serve` use it.
- `keras`: the same network file (no second copy), so `mlflow.keras.load_model` still returns the
  Keras model: part 5 inspects the champion's layers, the registry scores champions with it.

This is what the Model Registry holds (tasks/architectures/registry.py): its signature declares
the output columns; the input is left undeclared because MLflow's schema gives one dtype and one
shape per input while the contract takes two of each (and a declared float schema would turn JSON
integers 0-255 into floats); the model checks its own input instead, and the input example (two
MNIST test images, uint8) shows the request.
"""

from __future__ import annotations

import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import keras
import mlflow
import mlflow.keras
import numpy as np
from mlflow import MlflowClient
from mlflow.models import Model, ModelSignature
from mlflow.models.model import MLMODEL_FILE_NAME
from mlflow.types.schema import ColSpec, Schema

from studyflow.errors import ModelIntegrityError
from tasks.model_store import MODEL_REQUIREMENTS, ROUND_TRIP_TOLERANCE, outputs
from tasks.serving import classifier

LOGGED_MODEL_NAME = "digit-classifier"
ARTIFACT = "keras_model"
SIGNATURE = ModelSignature(
    outputs=Schema(
        [
            ColSpec("long", classifier.LABEL_COLUMN),
            *(ColSpec("float", column) for column in classifier.PROBABILITY_COLUMNS),
        ]
    )
)
REQUIREMENTS = [*MODEL_REQUIREMENTS, f"pandas=={metadata.version('pandas')}"]  # MLflow adds itself
EXAMPLE_IMAGES = 2


def as_uint8(images: np.ndarray) -> np.ndarray:
    """Float intensities in [0, 1] back to MNIST's 0-255 pixels (exact for images scaled from uint8)."""
    return np.rint(np.asarray(images, dtype=np.float32) * 255).astype(np.uint8)


def save_model(path, mlflow_model: Model, keras_model_file: str, input_example: np.ndarray, **_):
    """MLflow's flavor protocol (Model.log calls it): the pyfunc model, then the keras flavor on its artifact."""
    mlflow.pyfunc.save_model(
        path,
        python_model=classifier.__file__,
        artifacts={ARTIFACT: keras_model_file},
        signature=SIGNATURE,
        input_example=input_example,
        pip_requirements=REQUIREMENTS,
        mlflow_model=mlflow_model,
    )
    saved = mlflow_model.flavors["python_function"]["artifacts"][ARTIFACT]["path"]
    if not saved.endswith(".keras"):
        raise ModelIntegrityError(f"the network was saved as {saved!r}, not a .keras file the keras flavor can load")
    # mlflow.keras loads <data> + ".keras": point it at the pyfunc's copy of the network.
    mlflow_model.add_flavor(
        "keras",
        data=saved.removesuffix(".keras"),
        keras_version=keras.__version__,
        keras_backend=keras.backend.backend(),
        save_exported_model=False,
    )
    mlflow_model.save(os.path.join(path, MLMODEL_FILE_NAME))


def log_digit_classifier(client: MlflowClient, run_id: str, keras_model_uri: str, sample_images: np.ndarray) -> str:
    """Package the Keras model at `keras_model_uri` as a logged model of the run that trained it; checked
    by loading it back both ways. `sample_images`: float intensities in [0, 1], shape (n, 28, 28)."""
    network = mlflow.keras.load_model(keras_model_uri)
    sample = np.asarray(sample_images[:8], dtype=np.float32)
    run = client.get_run(run_id)
    logged = mlflow.initialize_logged_model(
        name=LOGGED_MODEL_NAME, source_run_id=run_id, experiment_id=run.info.experiment_id, model_type="keras+pyfunc"
    )
    with tempfile.TemporaryDirectory() as folder:
        keras_file = Path(folder) / "model.keras"
        network.save(keras_file)
        # Model.log records the logged model as the run's output (run_id given).
        info = Model.log(
            artifact_path=None,
            name=LOGGED_MODEL_NAME,
            flavor=sys.modules[__name__],
            run_id=run_id,
            model_id=logged.model_id,
            keras_model_file=str(keras_file),
            input_example=as_uint8(sample[:EXAMPLE_IMAGES]),
        )
    verify_classifier(info.model_uri, network, sample)
    return info.model_uri


def verify_classifier(model_uri: str, network: keras.Model, sample: np.ndarray) -> None:
    """The packaged model, loaded back, predicts what `network` predicts: through the contract (uint8 and
    float input) and as a Keras model."""
    expected = outputs(network, sample)
    served = mlflow.pyfunc.load_model(model_uri)
    for name, images in (("uint8 input", as_uint8(sample)), ("float input", sample.reshape(len(sample), -1))):
        table = served.predict(images)
        difference = float(np.max(np.abs(table[list(classifier.PROBABILITY_COLUMNS)].to_numpy() - expected)))
        if difference > ROUND_TRIP_TOLERANCE or not np.array_equal(table[classifier.LABEL_COLUMN], expected.argmax(1)):
            raise ModelIntegrityError(
                f"{model_uri}: the served model ({name}) predicts differently from the "
                f"trained model (max difference {difference:.2e})"
            )
    difference = float(np.max(np.abs(outputs(mlflow.keras.load_model(model_uri), sample) - expected)))
    if difference > ROUND_TRIP_TOLERANCE:
        raise ModelIntegrityError(
            f"{model_uri}: its keras flavor predicts differently (max difference {difference:.2e})"
        )
