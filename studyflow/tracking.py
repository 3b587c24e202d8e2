"""The tracking conventions, in one place: store, experiment and run names, tags, metric logging.

Every run of the product is made here, so that all runs are comparable in the MLflow UI:
- the tracking URI comes from MLFLOW_TRACKING_URI, else the embedded SQLite store `mlruns/`;
- one experiment per study part, `studyflow-<part>`;
- one parent run per flow run, one child run per model, pair or trial;
- tags on every run: code version, package versions, profile, seed, data digest, Prefect ids;
- a run always ends FINISHED, FAILED (an exception) or KILLED (Ctrl-C, SIGTERM);
- a tracking server that drops out is waited for (MLflow's HTTP retries, HTTP_RETRY_DEFAULTS); one
  that stays away stops the work with a TrackingError naming it, and the metrics it did not take are
  kept in a local file, never dropped silently.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import contextmanager
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunStatus, RunTag
from mlflow.utils.time import get_current_time_millis

from studyflow import paths

EXPERIMENT_PREFIX = "studyflow-"
TAG_PREFIX = "studyflow."
TRACKED_PACKAGES = ("studyflow", "tensorflow-cpu", "keras", "mlflow", "optuna", "prefect", "scikit-learn", "numpy")


# MLflow's HTTP client retries every failed request (refused connection, timeout, 429/5xx) with
# exponential backoff: it waits 0, 2f, 4f, 8f, ... seconds (f = the backoff factor, at most 120 s per
# wait). MLflow's defaults (7 retries, f = 2, 120 s per attempt) sit out rate limits of hosted
# servers: about 4 minutes of waiting per request, up to 20 with a hung server. studyflow's own
# server is on this machine or the local network: 6 retries with f = 2 wait 0+4+8+16+32+64 = 124 s,
# which covers a restart of the server several times over (8 s with --workers 1, under a minute for
# a container waiting on its healthcheck), so a short outage costs a pause and no metric. A server
# away for longer is down: the training stops with a TrackingError instead of stalling. 30 s per
# attempt: one epoch's log_batch takes 15-55 ms and a model upload well under a second here.
# The environment wins, e.g. MLFLOW_HTTP_REQUEST_MAX_RETRIES=10 for a flaky remote server.
HTTP_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "6",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


class TrackingError(RuntimeError):
    """The tracking store cannot be reached or used."""


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or paths.default_tracking_uri()


def uses_embedded_store() -> bool:
    # Compare URIs, not the variable: mlflow.set_tracking_uri() itself sets MLFLOW_TRACKING_URI.
    return tracking_uri() == paths.default_tracking_uri()


def ui_command() -> str:
    """The command (or address) that shows this store in the MLflow UI."""
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        return f"open {uri}"
    if uses_embedded_store():
        return (
            f"mlflow ui --backend-store-uri {uri} "
            f"--default-artifact-root {paths.default_artifact_root()} --port 5000"
        )
    return f"mlflow ui --backend-store-uri {uri} --port 5000"


def connect() -> MlflowClient:
    """Point MLflow at the store and check it answers, before any work starts."""
    uri = tracking_uri()
    if uses_embedded_store():
        paths.mlruns_dir().mkdir(parents=True, exist_ok=True)
    elif uri.startswith(("http://", "https://")):
        check_server()
        for name, value in HTTP_RETRY_DEFAULTS.items():
            os.environ.setdefault(name, value)  # read by MLflow at each request; inherited by workers
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def check_server() -> None:
    """Raise TrackingError if the tracking URI is an MLflow server that does not answer; touches no store."""
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        problem = _server_problem(uri)
        if problem is not None:
            raise TrackingError(
                f"MLflow tracking server {uri} is unreachable ({problem}); start it, or unset "
                f"MLFLOW_TRACKING_URI to use the embedded store under {paths.mlruns_dir()}"
            ) from problem


def _server_problem(uri: str) -> OSError | None:
    """Why an MLflow server does not answer its health check (one quick try), None if it does."""
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        return exc
    return None


def experiment_name(part: str) -> str:
    return EXPERIMENT_PREFIX + part


def ensure_experiment(client: MlflowClient, part: str) -> str:
    name = experiment_name(part)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if uses_embedded_store():
        location = (paths.default_artifact_root() / name).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:
        # Another process created it between our look-up and our create.
        return client.get_experiment_by_name(name).experiment_id


@lru_cache(maxsize=1)
def code_version() -> tuple[str, bool]:
    """Git commit of the checkout and whether its tracked files differ from that commit."""
    root = paths.PACKAGE_ROOT
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip() != ""
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, dirty


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {}
    for package in TRACKED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def prefect_ids() -> tuple[str, str]:
    """Ids of the Prefect flow run and task run we are inside, empty outside Prefect."""
    try:
        from prefect.runtime import flow_run, task_run

        return str(flow_run.id or ""), str(task_run.id or "")
    except Exception:  # Prefect absent or no run context: nothing to link
        return "", ""


@lru_cache(maxsize=1)
def process_identity() -> str:
    """host:pid:start-time of this process, so a later check can tell whether it still runs."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}:{process_start_ticks(os.getpid())}"


def process_start_ticks(pid: int) -> str:
    """The kernel's start time of a process (guards against a reused pid); empty if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return ""


def run_tags(part: str, profile: str, seed: int, dataset_digest: str, extra: dict | None = None) -> dict[str, str]:
    commit, dirty = code_version()
    flow_run_id, task_run_id = prefect_ids()
    tags = {
        TAG_PREFIX + "part": part,
        TAG_PREFIX + "profile": profile,
        TAG_PREFIX + "seed": str(seed),
        TAG_PREFIX + "dataset_digest": dataset_digest,
        TAG_PREFIX + "git_commit": commit,
        TAG_PREFIX + "git_dirty": str(dirty).lower(),
        TAG_PREFIX + "prefect_flow_run_id": flow_run_id,
        TAG_PREFIX + "prefect_task_run_id": task_run_id,
        TAG_PREFIX + "process": process_identity(),
        "mlflow.source.git.commit": commit,
        "mlflow.source.name": f"studyflow {part}",
        "mlflow.source.type": "JOB",
    }
    tags.update({f"{TAG_PREFIX}version.{name}": version for name, version in package_versions().items()})
    tags.update({key: str(value) for key, value in (extra or {}).items()})
    return tags


class RunRecorder:
    """Logs into one MLflow run by id, so it works from any thread a Prefect task runs in."""

    def __init__(self, client: MlflowClient, run_id: str, experiment_id: str, context: dict[str, Any]):
        self.client = client
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.context = context  # part, profile, seed, dataset_digest: inherited by child runs

    @contextmanager
    def child(self, run_name: str, tags: dict[str, Any] | None = None) -> Iterator["RunRecorder"]:
        """A nested run (one model, pair or trial) under this one, with the same conventions."""
        child_tags = {TAG_PREFIX + "run_level": "child", **(tags or {})}
        with tracked_run(self.client, run_name=run_name, parent_run_id=self.run_id, tags=child_tags,
                         **self.context) as recorder:
            yield recorder

    def log_params(self, params: dict[str, Any]) -> None:
        items = [Param(key, _param_text(value)) for key, value in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        """All values of one step in one call (one round trip per epoch, never per batch).

        MLflow's client retries a failed call (HTTP_RETRY_DEFAULTS); if the store still does not take
        the values, they are written to a local file and a TrackingError says where."""
        now = get_current_time_millis()
        items = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        for start in range(0, len(items), 1000):
            try:
                self.client.log_batch(self.run_id, metrics=items[start : start + 1000])
            except Exception as exc:  # after MLflow's own retries: the store is gone or broken
                raise self._keep_unlogged(items[start:], step, exc) from exc

    def _keep_unlogged(self, items: list[Metric], step: int, exc: Exception) -> TrackingError:
        """Append metrics the store did not take to a JSON-lines file (one MLflow Metric a line, ready
        for `client.log_batch` once the store is back) and describe what happened."""
        path = paths.unlogged_metrics_dir() / f"{self.run_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            for item in items:
                handle.write(json.dumps({"run_id": self.run_id, "key": item.key, "value": item.value,
                                         "step": item.step, "timestamp": item.timestamp}) + "\n")
        cause = " ".join(str(exc).split())[:400]
        retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLflow's default")
        return TrackingError(
            f"MLflow tracking store {self.client.tracking_uri} did not take the metrics of step {step} of run "
            f"{self.run_id} (MLFLOW_HTTP_REQUEST_MAX_RETRIES={retries}; {cause}); the work stopped. The "
            f"{len(items)} values it did not take are in {path}. The run is closed FAILED if the store answers "
            f"again when the run ends; if not, it stays RUNNING until `studyflow doctor` (or the next "
            f"`studyflow run`) closes it as KILLED, once the store is back and this process has ended.")

    def log_metric_history(self, name: str, values: list[float], first_step: int = 1) -> None:
        now = get_current_time_millis()
        items = [Metric(name, float(value), now, first_step + index) for index, value in enumerate(values)]
        for start in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[start : start + 1000])

    def set_tags(self, tags: dict[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])

    def log_figure(self, figure, artifact_file: str) -> None:
        """A matplotlib figure as a PNG artifact; the figure is closed afterwards."""
        import matplotlib.pyplot as plt

        try:
            self.client.log_figure(self.run_id, figure, artifact_file, save_kwargs={"dpi": 110, "bbox_inches": "tight"})
        finally:
            plt.close(figure)

    def log_table(self, table: pd.DataFrame, artifact_stem: str, caption: str = "") -> None:
        """A table as CSV (for tools) and Markdown (for people), side by side."""
        buffer = io.StringIO()
        table.to_csv(buffer, index=False)
        self.client.log_text(self.run_id, buffer.getvalue(), f"{artifact_stem}.csv")
        markdown = (f"{caption}\n\n" if caption else "") + table.to_markdown(index=False) + "\n"
        self.client.log_text(self.run_id, markdown, f"{artifact_stem}.md")

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def log_dict(self, data: dict, artifact_file: str) -> None:
        self.client.log_text(self.run_id, json.dumps(data, indent=2, default=str), artifact_file)

    def log_dataset(self, dataset, context: str) -> None:
        """Record which data the run used (MLflow dataset inputs), by digest, without copying it."""
        import warnings

        import mlflow.data

        images = dataset.train_images if context == "train" else dataset.test_images
        labels = dataset.train_labels if context == "train" else dataset.test_labels
        source = str(paths.data_dir() / dataset.name)
        with warnings.catch_warnings():  # MLflow warns that a local path fits two source types
            warnings.simplefilter("ignore", UserWarning)
            logged = mlflow.data.from_numpy(
                images, targets=labels, name=f"{dataset.name}-{context}", digest=dataset.short_digest, source=source
            )
        entity = logged._to_mlflow_entity()
        self.client.log_inputs(
            self.run_id, datasets=[DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])]
        )


def _param_text(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


@contextmanager
def tracked_run(
    client: MlflowClient,
    part: str,
    run_name: str,
    *,
    profile: str,
    seed: int,
    dataset_digest: str,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
) -> Iterator[RunRecorder]:
    """Open a run with the conventional tags; end it FINISHED, FAILED or KILLED, never RUNNING."""
    experiment_id = ensure_experiment(client, part)
    all_tags = run_tags(part, profile, seed, dataset_digest, tags)
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    context = {"part": part, "profile": profile, "seed": seed, "dataset_digest": dataset_digest}
    recorder = RunRecorder(client, run.info.run_id, experiment_id, context)
    try:
        yield recorder
    except (KeyboardInterrupt, SystemExit) as exc:
        _end(client, run.info.run_id, RunStatus.KILLED, f"interrupted: {type(exc).__name__}")
        raise
    except BaseException as exc:
        _end(client, run.info.run_id, RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    else:
        client.set_terminated(run.info.run_id, status="FINISHED")


def _end(client: MlflowClient, run_id: str, status: int, reason: str) -> None:
    """Close a run after a failure; a second failure here must not hide the first."""
    uri = client.tracking_uri
    if uri.startswith(("http://", "https://")) and _server_problem(uri) is not None:
        # Gone: do not sit out MLflow's retries for every open run (the parent's too) before exiting.
        print(f"[studyflow] MLflow run {run_id} stays RUNNING: the tracking server {uri} does not answer. "
              "`studyflow doctor` closes it as KILLED once the server is back.", file=sys.stderr)
        return
    try:
        client.set_tag(run_id, TAG_PREFIX + "end_reason", reason[:5000])
        client.set_terminated(run_id, status=RunStatus.to_string(status))
    except Exception:
        pass


def find_runs(client: MlflowClient, part: str, filter_string: str = "", max_results: int = 1000):
    experiment = client.get_experiment_by_name(experiment_name(part))
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], filter_string=filter_string, max_results=max_results)


REUSED_RUNS_TAG = TAG_PREFIX + "reused_run_ids"  # a parent's runs reused from earlier flow runs


def member_runs(client: MlflowClient, part: str, parent_run_id: str) -> list:
    """The runs a parent run is made of: its children, and the finished runs it reused from an
    earlier flow run (studyflow.steps) instead of redoing them."""
    children = find_runs(client, part, f"tags.`mlflow.parentRunId` = '{parent_run_id}'")
    reused = client.get_run(parent_run_id).data.tags.get(REUSED_RUNS_TAG, "")
    return children + [client.get_run(run_id) for run_id in reused.split(",") if run_id]
