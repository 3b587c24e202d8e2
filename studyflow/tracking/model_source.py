"""A model URI resolved to the run and logged model behind it, without TensorFlow.

Part 5 resolves the CNN it inspects before its run is created (a wrong URI or a missing champion
stops with a message and leaves no run behind), and `studyflow serve` refuses a model that does not
exist before its server starts: both ask the tracking store the same question, answered here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from studyflow.errors import ModelSourceError
from studyflow.tracking import store
from studyflow.tracking.names import CHAMPION_ALIAS, MODEL_URI_FORMS, REGISTERED_CNN

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
                    raise ModelSourceError(
                        f"{NO_CHAMPION} (no version of registered model {name!r} has the "
                        f"alias {alias!r} in {store.tracking_uri()})"
                    ) from exc
                raise
            return ModelSource(uri, version.run_id, version.model_id, f"{name}/{version.version}")
        if match := _VERSION.match(uri):
            version = client.get_model_version(*match.groups())
            return ModelSource(uri, version.run_id, version.model_id, f"{version.name}/{version.version}")
        if match := _RUN.match(uri):
            return ModelSource(uri, client.get_run(match.group(1)).info.run_id, None, None)
    except MlflowException as exc:
        raise ModelSourceError(f"model {uri!r} not found in {store.tracking_uri()}: {exc.message}") from exc
    raise ModelSourceError(f"model URI {uri!r} has an unknown form; give one of {MODEL_URI_FORMS}")
