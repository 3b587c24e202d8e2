"""Which CNN part 5 inspects: a model URI resolved to the run and logged model behind it, then loaded.

Resolved and loaded before the part's run is created, so a wrong URI or a missing champion stops
with a message and leaves no run behind. Resolving imports no TensorFlow: `studyflow serve` uses it
to refuse a model that does not exist before its server starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from studyflow import tracking
from studyflow.config.parts import MODEL_URI_FORMS
from studyflow.errors import ModelSourceError, NotAStudyCnnError
from studyflow.tracking.names import CHAMPION_ALIAS, REGISTERED_CNN

if TYPE_CHECKING:
    import keras

NO_CHAMPION = "no champion yet: run `studyflow run cnn` first"
_LOGGED_MODEL = re.compile(r"^models:/(m-[0-9a-f]{32})/?$")
_ALIAS = re.compile(r"^models:/([^/@]+)@([^/@]+)/?$")
_VERSION = re.compile(r"^models:/([^/@]+)/(\d+)/?$")
_RUN = re.compile(r"^runs:/([0-9a-f]{32})/(.+)$")



@dataclass(frozen=True)
class ModelSource:
    uri: str
    run_id: str  # the run that trained and logged the model
    model_id: str | None  # the MLflow logged model, when the URI leads to one
    registered_version: str | None  # "name/version" when the URI goes through the registry


def resolve_model_source(client: MlflowClient, uri: str) -> ModelSource:
    """Which run and logged model a model URI names; a clear ModelSourceError if none."""
    try:
        if match := _LOGGED_MODEL.match(uri):
            logged = client.get_logged_model(match.group(1))
            return ModelSource(uri, logged.source_run_id, logged.model_id, None)
        if match := _ALIAS.match(uri):
            name, alias = match.groups()
            try:
                version = client.get_model_version_by_alias(name, alias)
            except MlflowException as exc:
                if (name, alias) == (REGISTERED_CNN, CHAMPION_ALIAS):
                    raise ModelSourceError(f"{NO_CHAMPION} (no version of registered model {name!r} has the "
                                           f"alias {alias!r} in {tracking.tracking_uri()})") from exc
                raise
            return ModelSource(uri, version.run_id, version.model_id, f"{name}/{version.version}")
        if match := _VERSION.match(uri):
            version = client.get_model_version(*match.groups())
            return ModelSource(uri, version.run_id, version.model_id, f"{version.name}/{version.version}")
        if match := _RUN.match(uri):
            return ModelSource(uri, client.get_run(match.group(1)).info.run_id, None, None)
    except MlflowException as exc:
        raise ModelSourceError(f"model {uri!r} not found in {tracking.tracking_uri()}: {exc.message}") from exc
    raise ModelSourceError(f"model URI {uri!r} has an unknown form; give one of {MODEL_URI_FORMS}")


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
