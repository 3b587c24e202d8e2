"""Which CNN part 5 inspects: the model URI resolved (studyflow.tracking.model_source), then loaded.

Resolved and loaded before the part's run is created, so a wrong URI or a missing champion stops
with a message and leaves no run behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from studyflow.errors import ModelSourceError, NotAStudyCnnError
from studyflow.tracking.model_source import ModelSource, resolve_model_source

if TYPE_CHECKING:
    import keras


def load_inspected_model(source: ModelSource) -> keras.Model:
    """The CNN behind the URI, checked to have what part 5 looks at."""
    import mlflow.keras

    from tasks.inspect.compute import conv_layers  # TensorFlow: imported only to load

    try:
        model = mlflow.keras.load_model(source.uri)
    except (MlflowException, OSError, ValueError) as exc:
        raise ModelSourceError(f"model {source.uri!r} (run {source.run_id}) cannot be loaded: {exc}") from exc
    try:
        conv_layers(model)
    except NotAStudyCnnError as exc:
        raise ModelSourceError(f"model {source.uri!r} is not a study CNN: {exc}") from exc
    return model


def check_model_exists(client: MlflowClient, config) -> None:
    """Before any flow starts: the model to inspect exists (ModelSourceError says what to do if not)."""
    resolve_model_source(client, config.model_uri)
