"""Where runs are recorded: the tracking store, its experiments, and finding runs in it.

- the tracking URI comes from MLFLOW_TRACKING_URI, else the embedded SQLite store under `mlruns/`;
- one experiment per study part, `studyflow-<part>`;
- a tracking server that drops out is waited for (MLflow's HTTP retries, HTTP_RETRY_DEFAULTS); one
  that does not answer at the start stops the command with a TrackingError naming it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
from mlflow import MlflowClient

from studyflow import paths
from studyflow.errors import TrackingError
from studyflow.tracking.descriptions import experiment_tags
from studyflow.tracking.names import RunLevel, Tag, experiment_name, is_replicate_group

# MLflow's HTTP client retries every failed request (refused connection, timeout, 429/5xx) with
# exponential backoff: it waits 0, 2f, 4f, 8f, ... seconds (f = the backoff factor). MLflow's
# defaults are made to sit out the rate limits of hosted servers, minutes per request. studyflow's
# own server is on this machine or the local network: 6 retries with f = 2 wait 0+4+8+16+32+64 =
# 124 s, long enough for a restart of the server (or of its container waiting on a healthcheck),
# so a short outage costs a pause and no metric. A server away for longer is down: the training
# stops with a TrackingError instead of stalling. 30 s per attempt is far above what one epoch's
# metrics or a model upload take (bench.tracking_overhead measures them).
# The environment wins, e.g. MLFLOW_HTTP_REQUEST_MAX_RETRIES=10 for a flaky remote server.
HTTP_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "6",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or paths.default_tracking_uri()


def uses_embedded_store() -> bool:
    # Compare URIs, not the variable: mlflow.set_tracking_uri() itself sets MLFLOW_TRACKING_URI.
    return tracking_uri() == paths.default_tracking_uri()


UI_PORT = 5000  # where `studyflow ui` serves the MLflow UI of a store that is not a server
PREFECT_UI_PORT = 4200  # where `studyflow ui` serves the local Prefect home's flow runs


def uses_tracking_server() -> bool:
    """True when the store is an MLflow server, which serves its own UI."""
    return tracking_uri().startswith(("http://", "https://"))


def ui_argv(port: int = UI_PORT) -> list[str]:
    """The MLflow UI over this store (not a server), from the environment's own `mlflow`."""
    root = ["--default-artifact-root", str(paths.default_artifact_root())] if uses_embedded_store() else []
    return [
        str(Path(sys.executable).parent / "mlflow"),
        "ui",
        "--backend-store-uri",
        tracking_uri(),
        *root,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def ui_base() -> str:
    """Where the MLflow UI for this store is served, as a browser reaches it: STUDYFLOW_MLFLOW_UI_URL
    (the compose stack's workers reach the server as http://mlflow:5000, a browser as 127.0.0.1),
    else the server itself, else `studyflow ui`'s address."""
    if override := os.environ.get("STUDYFLOW_MLFLOW_UI_URL"):
        return override.rstrip("/")
    uri = tracking_uri()
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else f"http://127.0.0.1:{UI_PORT}"


# MLflow 3.17's UI opens every page in its GenAI view unless the address asks for the model-training
# one (its workflow switch, remembered per browser, defaults to GenAI; the experiments' kind tag is
# read only where the switch is off). Every link studyflow prints or publishes asks for it.
TRAINING_VIEW = "?workflowType=machine_learning"


def run_url(experiment_id: str, run_id: str) -> str:
    """A run's page in the MLflow UI's model-training view."""
    return f"{ui_base()}/#/experiments/{experiment_id}/runs/{run_id}{TRAINING_VIEW}"


def experiment_url(experiment_id: str) -> str:
    """An experiment's runs table in the MLflow UI's model-training view."""
    return f"{ui_base()}/#/experiments/{experiment_id}/runs{TRAINING_VIEW}"


def experiments_url() -> str:
    """The experiments and their runs in the MLflow UI's model-training view."""
    return f"{ui_base()}/#/experiments{TRAINING_VIEW}"


def local_prefect_ui_base() -> str:
    """Where `studyflow ui` serves the flow runs of Prefect's temporary local servers, as a browser
    reaches it: STUDYFLOW_PREFECT_UI_URL, else port 4200 of this machine."""
    if override := os.environ.get("STUDYFLOW_PREFECT_UI_URL"):
        return override.rstrip("/")
    return f"http://127.0.0.1:{PREFECT_UI_PORT}"


def registered_model_url(name: str) -> str:
    return f"{ui_base()}/#/models/{name}{TRAINING_VIEW}"


def connect() -> MlflowClient:
    """Point MLflow at the store and check it answers, before any work starts."""
    uri = tracking_uri()
    if uses_embedded_store():
        paths.mlruns_dir().mkdir(parents=True, exist_ok=True)
    elif uri.startswith(("http://", "https://")):
        check_server()
    return attach(uri, uri)


def attach(uri: str, registry_uri: str) -> MlflowClient:
    """A client of the store `uri`, with MLflow's own calls (logged models) pointed at it too: what a
    process that did not connect itself (a Dask worker handed a run) needs to log into that store."""
    if uri.startswith(("http://", "https://")):
        for name, value in HTTP_RETRY_DEFAULTS.items():
            os.environ.setdefault(name, value)  # read by MLflow at each request; inherited by workers
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=registry_uri)


def check_server() -> None:
    """Raise TrackingError if the tracking URI is an MLflow server that does not answer; touches no store."""
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        problem = server_problem(uri)
        if problem is not None:
            raise TrackingError(
                f"MLflow tracking server {uri} is unreachable ({problem}); start it, or unset "
                f"MLFLOW_TRACKING_URI to use the embedded store under {paths.mlruns_dir()}"
            ) from problem


def check_writable() -> None:
    """Raise TrackingError if the embedded store cannot be written (read-only folder or database);
    creates nothing. A server or a database URL is checked by `connect` and its first write."""
    if not uses_embedded_store():
        return
    folder = paths.mlruns_dir()
    database = folder / "mlflow.db"
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    try:
        if database.exists():
            with open(database, "r+b"):  # opened for writing, nothing written
                pass
        with tempfile.TemporaryFile(dir=existing):  # the folder takes a new file (removed at once)
            pass
    except OSError as exc:
        raise TrackingError(
            f"tracking store {tracking_uri()} is read-only: {exc.filename or existing} cannot be "
            f"written ({exc.strerror}); make it writable, or set STUDYFLOW_HOME to a writable "
            "folder, or MLFLOW_TRACKING_URI to a tracking server"
        ) from None


def plain_cause(exc: BaseException) -> str:
    """What went wrong with a store, in plain words where we can tell (MLflow wraps causes deeply)."""
    text = " ".join(str(exc).split())
    if "readonly database" in text or "read-only file system" in text.lower() or "Permission denied" in text:
        return f"read-only ({text[:300]})"
    return text[:500]


def server_problem(uri: str) -> OSError | None:
    """Why an MLflow server does not answer its health check (one quick try), None if it does."""
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        return exc
    return None


def ensure_experiment(client: MlflowClient, part: str) -> str:
    """The part's experiment, created with its kind and description (given to an older one that
    lacks them)."""
    name = experiment_name(part)
    tags = experiment_tags(part)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        for key, value in tags.items():
            if existing.tags.get(key) != value:
                client.set_experiment_tag(existing.experiment_id, key, value)
        return existing.experiment_id
    location = None
    if uses_embedded_store():
        location = (paths.default_artifact_root() / name).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location, tags=tags)
    except mlflow.exceptions.MlflowException:
        # Another process created it between our look-up and our create.
        return client.get_experiment_by_name(name).experiment_id


def find_runs(client: MlflowClient, part: str, filter_string: str = "", max_results: int = 1000):
    experiment = client.get_experiment_by_name(experiment_name(part))
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], filter_string=filter_string, max_results=max_results)


def latest_parent(client: MlflowClient, part: str, run_id: str | None = None):
    """The parent run given by id, else the part's latest FINISHED parent run; None if there is none."""
    if run_id:
        return client.get_run(run_id)
    parents = find_runs(
        client, part, f"tags.`{Tag.RUN_LEVEL}` = '{RunLevel.PARENT}' and attributes.status = 'FINISHED'"
    )
    return max(parents, key=lambda run: run.info.start_time) if parents else None


def member_runs(client: MlflowClient, part: str, parent_run_id: str) -> list:
    """The runs a parent run is made of: its children, and the finished runs it reused from an
    earlier flow run (studyflow.steps) instead of redoing them. A replicate group (one model over its
    seeds, tasks/replicates/groups.py) is not a member: the seed runs under it are, and so are the
    runs it reused (a reused run's parent is the run it was first made under)."""
    children = find_runs(client, part, f"tags.`mlflow.parentRunId` = '{parent_run_id}'")
    members = [run for run in children if not is_replicate_group(run.data.tags)]
    reusing = [client.get_run(parent_run_id)]
    for group in (run for run in children if is_replicate_group(run.data.tags)):
        members += find_runs(client, part, f"tags.`mlflow.parentRunId` = '{group.info.run_id}'")
        reusing.append(group)
    known = {run.info.run_id for run in members}
    for run in reusing:
        for run_id in run.data.tags.get(Tag.REUSED_RUN_IDS, "").split(","):
            if run_id and run_id not in known:  # a reused seed run is listed by its group and the parent
                members.append(client.get_run(run_id))
                known.add(run_id)
    return members
