"""The Model Registry step: register the best CNN, move the `champion` alias only on a win.

The challenger and the current champion are both scored on the same test set (the one of this
run), so a champion from a full-data run is never compared with a number from a subset. Both are
scored as loaded back from the store, never from memory: what is registered is what was checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import mlflow.keras
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

REGISTERED_CNN = "mnist-cnn"
CHAMPION_ALIAS = "champion"


@dataclass(frozen=True)
class PromotionDecision:
    version: str
    promoted: bool
    reason: str
    challenger_accuracy: float
    champion_accuracy: float | None  # on the same test set; None when there was no champion


def accuracy_of(model, images: np.ndarray, labels: np.ndarray) -> float:
    predictions = np.argmax(model.predict(images, batch_size=1024, verbose=0), axis=-1)
    return float(np.mean(predictions == labels))


def _current_champion(client: MlflowClient, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        return None


def _version_of_logged_model(client: MlflowClient, name: str, model_uri: str):
    for version in client.search_model_versions(f"name='{name}'"):
        if version.source == model_uri:
            return version
    return None


def register_and_promote(client: MlflowClient, model_uri: str, source_run_id: str,
                         test_images: np.ndarray, test_labels: np.ndarray, test_set: str,
                         name: str = REGISTERED_CNN) -> PromotionDecision:
    """Register `model_uri` (once) and give it the champion alias if it beats the champion."""
    challenger_accuracy = accuracy_of(mlflow.keras.load_model(model_uri), test_images, test_labels)
    version = _version_of_logged_model(client, name, model_uri)
    if version is None:
        version = mlflow.register_model(model_uri, name, tags={"source_run_id": source_run_id})
    champion = _current_champion(client, name)
    champion_accuracy = None
    if champion is not None and champion.version == version.version:
        promoted, reason = False, f"version {version.version} is already the champion"
    elif champion is None:
        promoted, reason = True, "no champion yet"
    else:
        champion_model = mlflow.keras.load_model(f"models:/{name}@{CHAMPION_ALIAS}")
        champion_accuracy = accuracy_of(champion_model, test_images, test_labels)
        promoted = challenger_accuracy > champion_accuracy
        verdict = "beats" if promoted else "does not beat"
        reason = (f"version {version.version} ({challenger_accuracy:.4f}) {verdict} champion version "
                  f"{champion.version} ({champion_accuracy:.4f}) on {test_set}")
    for key, value in {
        "test_accuracy": f"{challenger_accuracy:.6f}",
        "test_set": test_set,
        "champion_version_compared": champion.version if champion is not None else "none",
        "champion_test_accuracy_same_set": f"{champion_accuracy:.6f}" if champion_accuracy is not None else "none",
        "promotion_decision": reason,
    }.items():
        client.set_model_version_tag(name, version.version, key, value)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, version.version)
        client.update_model_version(name, version.version,
                                    description=f"Champion: test accuracy {challenger_accuracy:.4f} on {test_set}.")
    print(f"model registry: {name} version {version.version}: "
          + ("now the champion" if promoted else "not promoted") + f" ({reason})")
    return PromotionDecision(version.version, promoted, reason, challenger_accuracy, champion_accuracy)
