"""Health checks and reconciliation: `studyflow doctor`, and the clean-up every start runs.

A run left RUNNING by a process that no longer exists (kill -9, a crashed machine) is closed as
KILLED with a tag saying why. Runs record `studyflow.process` = host:pid:start-time, so a run of
another live process, or of another host, is never touched. The Prefect flow run that made it
(tag `studyflow.prefect_flow_run_id`) is set Crashed if Prefect still shows it running, so the
two stores tell the same story. (Optuna trials of a dead sweep are failed by their heartbeat.)
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities import ViewType

from studyflow import paths, processes, tracking
from studyflow.tracking.names import EXPERIMENT_PREFIX, RunLevel, Tag

MIN_FREE_DISK_GB = 2.0


@dataclass
class DoctorReport:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # (name, ok, detail)
    fixed: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def close_orphaned_runs(client: MlflowClient) -> list[str]:
    """Close as KILLED every studyflow run left RUNNING by a process that no longer exists, and
    mark its Prefect flow run Crashed."""
    experiments = [
        experiment.experiment_id
        for experiment in client.search_experiments(view_type=ViewType.ALL)
        if experiment.name.startswith(EXPERIMENT_PREFIX)
    ]
    if not experiments:
        return []
    fixed: list[str] = []
    dead_flow_runs: dict[str, str] = {}
    for run in client.search_runs(experiments, "attributes.status = 'RUNNING'", max_results=5000):
        identity = run.data.tags.get(Tag.PROCESS, "")
        if processes.is_alive(identity) is False:
            reason = f"closed by studyflow doctor: its process {identity} no longer exists"
            if not tracking.close_run(client, run.info.run_id, "KILLED", reason):
                continue  # not closed (the store did not answer): not reported as fixed
            fixed.append(f"run {run.info.run_id} ({run.info.run_name}) RUNNING -> KILLED: {reason}")
            flow_run_id = run.data.tags.get(Tag.PREFECT_FLOW_RUN_ID)
            if flow_run_id and flow_run_id not in dead_flow_runs:
                dead_flow_runs[flow_run_id] = identity
    return fixed + crash_flow_runs(dead_flow_runs)


def crash_flow_runs(flow_runs: dict[str, str]) -> list[str]:
    """Set Crashed each Prefect flow run (id -> its dead process) that Prefect still shows running."""
    if not flow_runs:
        return []
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    fixed = []
    try:
        with get_client(sync_client=True) as prefect:
            for flow_run_id, identity in flow_runs.items():
                message = f"closed by studyflow doctor: its process {identity} no longer exists"
                while flow_run_id:  # the flow run, then the flows it ran inside (a part of `study`)
                    try:
                        flow_run = prefect.read_flow_run(flow_run_id)
                    except Exception:  # not in this Prefect API (another server, or a temporary one gone)
                        break
                    if flow_run.state is not None and not flow_run.state.is_final():
                        prefect.set_flow_run_state(flow_run.id, Crashed(message=message), force=True)
                        fixed.append(
                            f"Prefect flow run {flow_run.id} ({flow_run.name}) "
                            f"{flow_run.state.type.value} -> CRASHED: {message}"
                        )
                    parent_task_run = flow_run.parent_task_run_id
                    flow_run_id = prefect.read_task_run(parent_task_run).flow_run_id if parent_task_run else None
    except Exception as exc:  # Prefect unreachable: MLflow is already consistent; say so and go on
        fixed.append(f"could not reach Prefect to mark flow runs {sorted(flow_runs)} Crashed: {exc}")
    return fixed


def _check_store(client: MlflowClient) -> tuple[bool, str]:
    try:
        experiment_id = tracking.ensure_experiment(client, "doctor")
        run = client.create_run(experiment_id, run_name="write-check", tags={Tag.RUN_LEVEL: RunLevel.CHECK})
        client.log_metric(run.info.run_id, "write_check", 1.0)
        client.set_terminated(run.info.run_id, status="FINISHED")  # a deleted run left RUNNING still counts
        client.delete_run(run.info.run_id)
        return True, f"{tracking.tracking_uri()} reachable and writable"
    except Exception as exc:  # any failure is the finding
        return False, f"{tracking.tracking_uri()}: {tracking.plain_cause(exc)}"


def _check_prefect() -> tuple[bool, str]:
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        return True, "no PREFECT_API_URL: flows use Prefect's local mode"
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=5) as response:
            response.read()
        return True, f"{url} answers"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url} unreachable: {exc}"


def _check_dask() -> tuple[bool, str]:
    """The configured Dask scheduler (STUDYFLOW_DASK_ADDRESS) answers, has workers, and they share the
    step-results folder and this code (what a fanned-out run checks before any work)."""
    from studyflow.cluster import check_workers, scheduler_client
    from studyflow.config.base import DASK_ADDRESS_VARIABLE
    from studyflow.errors import DaskClusterError

    address = os.environ[DASK_ADDRESS_VARIABLE]
    try:
        with scheduler_client(address) as client:
            workers = check_workers(client, address)
    except DaskClusterError as exc:
        return False, str(exc)
    return True, f"{address} answers: {workers} workers share the step results and run this code"


def _check_datasets() -> list[tuple[str, bool, str]]:
    from tasks.data import DATASET_NAMES, DatasetError, check_dataset, dataset_digest

    results = []
    for name in DATASET_NAMES:
        try:
            check_dataset(name)
            results.append((f"dataset {name}", True, f"verified, digest {dataset_digest(name)[:16]}"))
        except DatasetError as exc:
            results.append((f"dataset {name}", False, str(exc)))
    return results


def run_doctor() -> DoctorReport:
    report = DoctorReport()
    try:
        tracking.check_writable()
        client = tracking.connect()
    except tracking.TrackingError as exc:
        report.checks.append(("tracking store", False, str(exc)))
        client = None
    if client is not None:
        report.checks.append(("tracking store", *_check_store(client)))
        report.fixed += close_orphaned_runs(client)
    report.checks.append(("Prefect API", *_check_prefect()))
    if os.environ.get("STUDYFLOW_DASK_ADDRESS"):
        report.checks.append(("Dask scheduler", *_check_dask()))
    report.checks += _check_datasets()
    free_gb = shutil.disk_usage(paths.project_root()).free / 1e9
    report.checks.append(
        ("disk space", free_gb >= MIN_FREE_DISK_GB, f"{free_gb:.1f} GB free under {paths.project_root()}")
    )
    return report
