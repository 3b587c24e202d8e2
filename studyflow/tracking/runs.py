"""A run's life in MLflow: opened with the conventional tags, written through a RunRecorder, and
always ended FINISHED, FAILED (an exception) or KILLED (Ctrl-C, SIGTERM, a dead process), never
left RUNNING. Every run of the product (parent, child, sweep trial, report, inspection) is opened
here; the tags on every run: code version, package versions, profile, seed, data digest, Prefect
ids and the process that owns it. A metric the store does not take is kept in a local file, never
dropped silently.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus, Metric, Param, RunTag
from mlflow.utils.time import get_current_time_millis

from studyflow import paths, processes
from studyflow.errors import TrackingError
from studyflow.tracking.artifacts import ArtifactWriter
from studyflow.tracking.endings import close_run, ending
from studyflow.tracking.links import MetricLinks
from studyflow.tracking.names import RunLevel, Tag, logged_model_name
from studyflow.tracking.provenance import code_version, package_versions, prefect_flow_run_url, prefect_ids, user
from studyflow.tracking.store import attach, ensure_experiment


def run_tags(part: str, profile: str, seed: int, dataset_digest: str, extra: dict | None = None) -> dict[str, str]:
    commit, dirty = code_version()
    flow_run_id, task_run_id = prefect_ids()
    tags = {
        Tag.PART: part,
        Tag.PROFILE: profile,
        Tag.SEED: str(seed),
        Tag.DATASET_DIGEST: dataset_digest,
        Tag.GIT_COMMIT: commit,
        Tag.GIT_DIRTY: str(dirty).lower(),
        Tag.PREFECT_FLOW_RUN_ID: flow_run_id,
        Tag.PREFECT_TASK_RUN_ID: task_run_id,
        Tag.PROCESS: processes.identity(),
        "mlflow.user": user(),
        "mlflow.source.git.commit": commit,
        "mlflow.source.name": f"studyflow {part}",
        "mlflow.source.type": "JOB",
    }
    if url := prefect_flow_run_url():
        tags[Tag.PREFECT_FLOW_RUN_URL] = url
    tags.update({Tag.VERSION_PREFIX + name: version for name, version in package_versions().items()})
    tags.update({key: str(value) for key, value in (extra or {}).items()})
    return tags


class RunRecorder(ArtifactWriter):
    """Logs into one MLflow run by id, so it works from any thread a Prefect task runs in."""

    def __init__(self, client: MlflowClient, run_id: str, experiment_id: str, context: dict[str, Any]):
        self.client = client
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.context = context  # part, profile, seed, dataset_digest: inherited by child runs
        self.links = MetricLinks()  # the logged model and datasets this run's final metrics describe
        self.latest: dict[str, Metric] = {}  # each metric's latest value: highest step, then latest time
        self.system_metrics = False  # sample CPU, memory, disk and network into each child run
        self.closed = False  # closed by `close` before its block ended: the end it was given stays

    # A recorder travels to a Dask worker with the training it records (studyflow.fanout): by its
    # store's address and run ids; the worker makes its own client of that store.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        client = state.pop("client")
        state["store_uris"] = (client.tracking_uri, client._registry_uri)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        tracking_uri, registry_uri = state.pop("store_uris")
        self.__dict__.update(state)
        self.client = attach(tracking_uri, registry_uri)

    @contextmanager
    def child(
        self, run_name: str, tags: dict[str, Any] | None = None, seed: int | None = None
    ) -> Iterator[RunRecorder]:
        """A nested run (one model, pair or trial) under this one, with the same conventions; `seed`:
        the replicate's own seed (tag `studyflow.seed`), when it is not the parent's."""
        context = {**self.context, **({"seed": seed} if seed is not None else {})}
        with tracked_run(self.client, run_name=run_name, parent_run_id=self.run_id, tags=tags, **context) as recorder:
            if not self.system_metrics:
                yield recorder
                return
            with sampled_system_metrics(self.client, recorder.run_id):
                yield recorder

    def close(self, status: str, reason: str) -> None:
        """End the run now, FAILED or KILLED with the reason, though its block goes on (a replicate
        group none of whose seeds finished); `tracked_run` then leaves that end as it is."""
        close_run(self.client, self.run_id, status, reason)
        self.closed = True

    def log_params(self, params: dict[str, Any]) -> None:
        items = [Param(key, param_text(value)) for key, value in params.items()]
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
        for item in items:
            known = self.latest.get(item.key)
            if known is None or (item.step, item.timestamp) >= (known.step, known.timestamp):
                self.latest[item.key] = item

    def link_final_metrics(self) -> None:
        """Give the run's logged model each metric's final value (the run's latest), once, with its
        dataset. Logged again at its own step and time, a value adds no point to the run's history:
        MLflow's store keeps one row per key, step, time and value."""
        items = [self.links.metric(item.key, item.value, item.timestamp, item.step) for item in self.latest.values()]
        for start in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[start : start + 1000])

    def _keep_unlogged(self, items: list[Metric], step: int, exc: Exception) -> TrackingError:
        """Append metrics the store did not take to a JSON-lines file (one MLflow Metric a line, ready
        for `client.log_batch` once the store is back) and describe what happened."""
        path = paths.unlogged_metrics_dir() / f"{self.run_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            for item in items:
                handle.write(
                    json.dumps(
                        {
                            "run_id": self.run_id,
                            "key": item.key,
                            "value": item.value,
                            "step": item.step,
                            "timestamp": item.timestamp,
                        }
                    )
                    + "\n"
                )
        cause = " ".join(str(exc).split())[:400]
        retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLflow's default")
        return TrackingError(
            f"MLflow tracking store {self.client.tracking_uri} did not take the metrics of step {step} of run "
            f"{self.run_id} (MLFLOW_HTTP_REQUEST_MAX_RETRIES={retries}; {cause}); the work stopped. The "
            f"{len(items)} values it did not take are in {path}. The run is closed FAILED if the store answers "
            f"again when the run ends; if not, it stays RUNNING until `studyflow doctor` (or the next "
            f"`studyflow run`) closes it as KILLED, once the store is back and this process has ended."
        )

    def log_metric_history(
        self, name: str, values: list[float], first_step: int = 1, steps: list[int] | None = None
    ) -> None:
        """The values at consecutive steps from `first_step`, or at the given `steps`."""
        now = get_current_time_millis()
        steps = steps if steps is not None else range(first_step, first_step + len(values))
        items = [Metric(name, float(value), now, int(step)) for step, value in zip(steps, values, strict=True)]
        for start in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[start : start + 1000])

    def set_tags(self, tags: dict[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])

    def start_logged_model(self, name: str, model_type: str = "keras") -> str:
        """Create the run's logged model (MLflow 3) before training, so that a failed training leaves it
        FAILED; `tasks.model_store` stores the trained model into it and links the final metrics."""
        import mlflow

        logged = mlflow.initialize_logged_model(
            name=logged_model_name(name),
            source_run_id=self.run_id,
            experiment_id=self.experiment_id,
            model_type=model_type,
        )
        self.links.model_id = logged.model_id
        return logged.model_id


def param_text(value: Any) -> str:
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
    """Open a run with the conventional tags; end it FINISHED, FAILED or KILLED, never RUNNING.

    Without `parent_run_id` it is a parent run (one per flow run); with it, a child (one model,
    pair or trial)."""
    experiment_id = ensure_experiment(client, part)
    level = {Tag.RUN_LEVEL: RunLevel.CHILD if parent_run_id else RunLevel.PARENT}
    all_tags = run_tags(part, profile, seed, dataset_digest, {**level, **(tags or {})})
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    context = {"part": part, "profile": profile, "seed": seed, "dataset_digest": dataset_digest}
    recorder = RunRecorder(client, run.info.run_id, experiment_id, context)
    with ending(client, run.info.run_id, closed=lambda: recorder.closed):
        try:
            yield recorder
        except BaseException:
            _fail_pending_model(client, recorder.links.model_id)
            raise


SYSTEM_METRICS_INTERVAL_S = 5  # MLflow's default is 10 s: too coarse for minute-long trainings


@contextmanager
def sampled_system_metrics(client: MlflowClient, run_id: str) -> Iterator[None]:
    """MLflow's own system metrics (`system/cpu_utilization_percentage`, memory, disk, network; psutil)
    sampled into the run while the block runs. MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL overrides the
    interval."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # its start/stop notices: console noise
    monitor = SystemMetricsMonitor(
        run_id, sampling_interval=SYSTEM_METRICS_INTERVAL_S, tracking_uri=client.tracking_uri
    )
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()


def _fail_pending_model(client: MlflowClient, model_id: str | None) -> None:
    """A logged model whose training failed is marked FAILED, not left PENDING (never raises)."""
    if model_id is None:
        return
    try:
        if client.get_logged_model(model_id).status == LoggedModelStatus.PENDING:
            client.finalize_logged_model(model_id, LoggedModelStatus.FAILED)
    except Exception:  # bookkeeping must not hide the failure that led here
        pass


@contextmanager
def resumed_run(client: MlflowClient, run, context: dict[str, Any]) -> Iterator[RunRecorder]:
    """Reopen a run this process takes over (a resumed sweep's parent): RUNNING again, owned by this
    process and this flow run, with this code version; ended like `tracked_run`."""
    client.update_run(run.info.run_id, status="RUNNING")
    commit, dirty = code_version()
    flow_run_id, _ = prefect_ids()
    client.log_batch(
        run.info.run_id,
        tags=[
            RunTag(key, str(value))
            for key, value in {
                Tag.PROCESS: processes.identity(),
                Tag.PREFECT_FLOW_RUN_ID: flow_run_id,
                Tag.GIT_COMMIT: commit,
                Tag.GIT_DIRTY: str(dirty).lower(),
                Tag.RESUMED: "true",
            }.items()
        ],
    )
    with ending(client, run.info.run_id):
        yield RunRecorder(client, run.info.run_id, run.info.experiment_id, context)
