"""The Model Registry step: register the best CNN, move the `champion` alias only on a win.

What counts as a win depends on what is known about both models:
- both trained over several seeds (their versions carry the mean test accuracy over the seeds and
  its 95 % interval): the challenger wins only if its mean is higher and the two intervals do not
  overlap, so seed noise never moves the alias;
- otherwise (either has one seed, or the champion predates replicates): the challenger and the
  champion are both scored on the same test set (this run's), and the higher accuracy wins, so a
  champion from a full-data run is never compared with a number from a subset.
Both models are scored as loaded back from the store, never from memory: what is registered is
what was checked. Every version's description states the rule that was applied to it.

What is registered is the trained Keras model packaged for serving (tasks/serving/package.py): its
pyfunc flavor takes 28x28 images (uint8 or [0, 1] floats) and returns the label with the 10
probabilities, its keras flavor is the network itself. The version's description and tags state
that contract and how to serve and call the model, so the registry entry is usable on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mlflow
import mlflow.keras
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from studyflow.tracking.names import CHAMPION_ALIAS, KERAS_MODEL_VERSION_TAG, REGISTERED_CNN
from tasks.replicates.compute import intervals_overlap
from tasks.serving import classifier
from tasks.serving.package import log_digit_classifier


@dataclass(frozen=True)
class ReplicateStats:
    """The challenger architecture's test accuracy over its seeds."""

    seeds: int
    mean: float
    low: float  # 95 % interval of the mean; NaN with one seed
    high: float
    val_mean: float

    @property
    def has_interval(self) -> bool:
        return self.seeds >= 2 and math.isfinite(self.low) and math.isfinite(self.high)

    def tags(self) -> dict[str, str]:
        return {
            "replicate_seeds": str(self.seeds),
            "test_accuracy_mean": f"{self.mean:.6f}",
            "test_accuracy_ci95_low": f"{self.low:.6f}" if self.has_interval else "none",
            "test_accuracy_ci95_high": f"{self.high:.6f}" if self.has_interval else "none",
            "val_accuracy_mean": f"{self.val_mean:.6f}",
        }

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> ReplicateStats | None:
        try:
            return cls(
                int(tags["replicate_seeds"]),
                float(tags["test_accuracy_mean"]),
                float(tags["test_accuracy_ci95_low"]),
                float(tags["test_accuracy_ci95_high"]),
                float(tags["val_accuracy_mean"]),
            )
        except (KeyError, ValueError):  # a version from before replicates, or with one seed
            return None


INTERVAL_RULE = (
    "interval rule: a challenger replaces the champion only if its mean test accuracy over seeds is "
    "higher and the two 95 % intervals do not overlap"
)
SAME_TEST_SET_RULE = (
    "one-seed rule (no interval on one side): the challenger replaces the champion if it scores "
    "higher on the same test set"
)


@dataclass(frozen=True)
class PromotionDecision:
    version: str
    promoted: bool
    reason: str
    challenger_accuracy: float
    champion_accuracy: float | None  # on the same test set; None when there was no champion
    rule: str = ""


def accuracy_of(model, images: np.ndarray, labels: np.ndarray) -> float:
    predictions = np.argmax(model.predict(images, batch_size=1024, verbose=0), axis=-1)
    return float(np.mean(predictions == labels))


def _current_champion(client: MlflowClient, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        return None


def _version_of_logged_model(client: MlflowClient, name: str, model_uri: str):
    """The version that packages the Keras model `model_uri` (or, registered before packaging, is it)."""
    for version in client.search_model_versions(f"name='{name}'"):
        if version.tags.get(KERAS_MODEL_VERSION_TAG) == model_uri or version.source == model_uri:
            return version
    return None


def contract_tags(name: str, version: str) -> dict[str, str]:
    """What a packaged version takes and returns, and how to serve and call it."""
    return {
        "input": classifier.INPUT_CONTRACT,
        "output": classifier.OUTPUT_CONTRACT,
        "classes": classifier.CLASSES_TEXT,
        "request": classifier.REQUEST_FORMAT,
        "serve": f"studyflow serve --model-uri models:/{name}/{version} (the champion: studyflow serve), "
        "then POST to http://127.0.0.1:5050/invocations; see README, Serving",
    }


def code(text: str) -> str:
    """`text` as a Markdown code span. MLflow's UI renders descriptions as Markdown (Showdown, GitHub
    flavour, then an HTML sanitizer) and drops whatever reads as an HTML tag, such as `<image>`;
    inside a code span it is shown as written."""
    return f"`{text}`"


def contract_description(name: str, version: str) -> str:
    """The contract as the Markdown of a description; `version` may be a placeholder."""
    tags, uri = contract_tags(name, version), f"models:/{name}/{version}"
    request = classifier.REQUEST_FORMAT.replace(classifier.REQUEST_BODY, code(classifier.REQUEST_BODY))
    return (
        f"Input: {tags['input']}. Request: {request}. Output: {tags['output']}. "
        f"Classes: {tags['classes']}. Serve: {code(f'studyflow serve --model-uri {uri}')} (the champion: "
        f"{code('studyflow serve')}), then POST to http://127.0.0.1:5050/invocations; see README, Serving. "
        f"Load in Python: {code(f'mlflow.pyfunc.load_model({uri!r})')} (this contract) or "
        f"{code('mlflow.keras.load_model(...)')} (the Keras network)."
    )


def registered_model_description(name: str) -> str:
    return (
        f"The study's best CNN on MNIST (part 4), as a digit classifier. {contract_description(name, '<version>')} "
        f"The alias {code(CHAMPION_ALIAS)} marks the version that won the promotion rule in its description."
    )


def version_description(is_champion: bool, summary: str, reason: str, rule: str, contract: str) -> str:
    """`is_champion`: whether the version holds the alias after the decision (won it now, or had it)."""
    status = "Champion" if is_champion else "Not promoted"
    return (
        f"{status}: {summary}. Decision: {reason}."
        + (f" Rule applied: {rule}." if rule else "")
        + (f"\n\n{contract}" if contract else "")
    )


def _interval_text(stats: ReplicateStats) -> str:
    return f"mean {stats.mean:.4f}, 95 % interval [{stats.low:.4f}, {stats.high:.4f}] over {stats.seeds} seeds"


def register_and_promote(
    client: MlflowClient,
    model_uri: str,
    source_run_id: str,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    test_set: str,
    name: str = REGISTERED_CNN,
    replicates: ReplicateStats | None = None,
) -> PromotionDecision:
    """Register `model_uri` (once) and give it the champion alias if it beats the champion.

    `replicates`: the challenger architecture's test accuracy over its seeds (the registered model is
    its best-validation seed); with intervals on both sides the interval rule decides."""
    challenger_accuracy = accuracy_of(mlflow.keras.load_model(model_uri), test_images, test_labels)
    version = _version_of_logged_model(client, name, model_uri)
    packaged = (
        version is None or version.tags.get(KERAS_MODEL_VERSION_TAG) == model_uri
    )  # else registered before packaging
    if version is None:
        served_uri = log_digit_classifier(client, source_run_id, model_uri, test_images)
        version = mlflow.register_model(
            served_uri, name, tags={"source_run_id": source_run_id, KERAS_MODEL_VERSION_TAG: model_uri}
        )
        # The registered model's own page says what every version is, before one is opened.
        client.update_registered_model(name, description=registered_model_description(name))
    champion = _current_champion(client, name)
    champion_accuracy, rule = None, ""
    champion_stats = ReplicateStats.from_tags(champion.tags) if champion is not None else None
    if champion is not None and champion.version == version.version:
        promoted, reason = False, f"version {version.version} is already the champion"
    elif champion is None:
        promoted, reason = True, f"no champion yet, so version {version.version} became the first"
    elif (
        replicates is not None
        and replicates.has_interval
        and champion_stats is not None
        and champion_stats.has_interval
    ):
        rule = INTERVAL_RULE
        higher = replicates.mean > champion_stats.mean
        separate = not intervals_overlap((replicates.low, replicates.high), (champion_stats.low, champion_stats.high))
        promoted = higher and separate
        verdict = (
            "beats the champion,"
            if promoted
            else "does not beat the champion,"
            if not higher
            else "is higher than, but within the interval of, the champion,"
        )
        reason = (
            f"version {version.version} ({_interval_text(replicates)}) {verdict} version "
            f"{champion.version} ({_interval_text(champion_stats)})"
        )
    else:
        rule = SAME_TEST_SET_RULE
        champion_model = mlflow.keras.load_model(f"models:/{name}@{CHAMPION_ALIAS}")
        champion_accuracy = accuracy_of(champion_model, test_images, test_labels)
        promoted = challenger_accuracy > champion_accuracy
        verdict = "beats the champion," if promoted else "does not beat the champion,"
        reason = (
            f"version {version.version} ({challenger_accuracy:.4f}) {verdict} version "
            f"{champion.version} ({champion_accuracy:.4f}) on {test_set}"
        )
    for key, value in {
        "test_accuracy": f"{challenger_accuracy:.6f}",
        "test_set": test_set,
        "champion_version_compared": champion.version if champion is not None else "none",
        "champion_test_accuracy_same_set": f"{champion_accuracy:.6f}" if champion_accuracy is not None else "none",
        "promotion_decision": reason,
        "promotion_rule": rule or "none (no comparison)",
        **(replicates.tags() if replicates is not None else {}),
        **(contract_tags(name, version.version) if packaged else {}),
    }.items():
        client.set_model_version_tag(name, version.version, key, value)
    summary = (
        f"test accuracy {_interval_text(replicates)} (this version: its best-validation seed, "
        f"{challenger_accuracy:.4f})"
        if replicates is not None and replicates.has_interval
        else f"test accuracy {challenger_accuracy:.4f}"
    )
    was_champion = champion is not None and champion.version == version.version
    client.update_model_version(
        name,
        version.version,
        description=version_description(
            promoted or was_champion,
            f"{summary} on {test_set}",
            reason,
            rule,
            contract_description(name, version.version) if packaged else "",
        ),
    )
    if promoted:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, version.version)
    print(
        f"model registry: {name} version {version.version}: "
        + ("now the champion" if promoted else "still the champion" if was_champion else "not promoted")
        + f" ({reason})"
    )
    return PromotionDecision(version.version, promoted, reason, challenger_accuracy, champion_accuracy, rule)
