"""How a sweep appears in MLflow: one parent run per Optuna study, one child run per trial.

Experiment `studyflow-sweep-<kind>`. The parent run belongs to the study (its id is a study user
attribute), so a resumed sweep reopens it and the MLflow UI shows one sweep with all its trials.
Each trial's run carries tags that name its study, storage, trial number and Prefect flow run; the
trial carries its run's id as a user attribute. A trial run ends FINISHED (complete or pruned, the
Optuna state in `studyflow.trial_state`), FAILED (an error) or KILLED (interrupted, or its process
died and the heartbeat noticed). The owner of a RUNNING parent (host, pid, process start time) is
recorded, so that a later sweep can tell a parent left by a killed process from a live one.
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import optuna
from mlflow import MlflowClient
from mlflow.entities import RunStatus

from studyflow import tracking
from studyflow.tracking import TAG_PREFIX, RunRecorder
from tasks.data import Dataset
from tasks.sweeps.config import SweepConfig
from tasks.sweeps.storage import masked_url

STUDY_TAG = TAG_PREFIX + "optuna_study"
STORAGE_TAG = TAG_PREFIX + "optuna_storage"
TRIAL_NUMBER_TAG = TAG_PREFIX + "optuna_trial_number"
TRIAL_ID_TAG = TAG_PREFIX + "optuna_trial_id"
RETRY_OF_TAG = TAG_PREFIX + "optuna_retry_of"
TRIAL_STATE_TAG = TAG_PREFIX + "trial_state"
PRUNED_TAG = TAG_PREFIX + "pruned"
KIND_TAG = TAG_PREFIX + "sweep_kind"
FLOW_RUN_TAG = TAG_PREFIX + "prefect_flow_run_id"
# host:pid:start-time of the process that has the run open; the key every studyflow run uses for it
# (`studyflow doctor` closes RUNNING runs whose process is gone), set again when a parent is reopened.
OWNER_TAG = TAG_PREFIX + "process"
END_REASON_TAG = TAG_PREFIX + "end_reason"

RUN_ID_ATTR = "studyflow.mlflow_run_id"  # on each trial: its MLflow run
PARENT_RUN_ATTR = "studyflow.mlflow_parent_run_id"  # on the study (and each trial): the sweep's parent run
FLOW_RUN_ATTR = "studyflow.prefect_flow_run_id"


class SweepBusyError(RuntimeError):
    """Another live process is running this study."""


def sweep_part(kind: str) -> str:
    return f"sweep-{kind}"


def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process (clock ticks since boot), None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the command name may hold spaces


def owner_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_process_start(os.getpid())}"


def owner_alive(token: str) -> bool | None:
    """True or False for a process on this host; None when it ran elsewhere (cannot tell)."""
    parts = token.rsplit(":", 2)
    if len(parts) != 3:
        return None
    host, pid, started = parts
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return _process_start(int(pid)) == started


def close_run(client: MlflowClient, run_id: str, status: str, reason: str, tags: dict[str, str] | None = None) -> None:
    """End a run that is still RUNNING; one already ended keeps its end."""
    try:
        if client.get_run(run_id).info.status != "RUNNING":
            return
        for key, value in {**(tags or {}), END_REASON_TAG: reason[:5000]}.items():
            client.set_tag(run_id, key, value)
        client.set_terminated(run_id, status=status)
    except Exception as exc:  # never let bookkeeping hide the sweep's own outcome
        print(f"[studyflow] could not close MLflow run {run_id}: {exc}")


def close_stale_trial_run(trial: optuna.trial.FrozenTrial) -> None:
    """The heartbeat found this trial's process dead: its run ends KILLED (called before the retry)."""
    run_id = trial.user_attrs.get(RUN_ID_ATTR)
    if run_id:
        close_run(MlflowClient(tracking.tracking_uri()), run_id, "KILLED",
                  f"trial {trial.number}: no heartbeat; its process died. Its parameters were queued again.",
                  {TRIAL_STATE_TAG: "FAIL"})


def close_orphaned_trial_runs(client: MlflowClient, study: optuna.Study, experiment_id: str) -> int:
    """Trial runs still RUNNING although Optuna has finished their trial (e.g. the process died between
    the two stores' updates): close them KILLED. Runs of trials that are still running are left alone."""
    runs = client.search_runs([experiment_id], max_results=5000, filter_string=(
        f"tags.`{STUDY_TAG}` = '{study.study_name}' and attributes.status = 'RUNNING'"))
    trials = {str(trial.number): trial for trial in study.get_trials(deepcopy=False)}
    closed = 0
    for run in runs:
        number = run.data.tags.get(TRIAL_NUMBER_TAG)
        trial = trials.get(number) if number is not None else None
        if number is None or (trial is not None and not trial.state.is_finished()):
            continue
        state = trial.state.name if trial is not None else "FAIL"
        close_run(client, run.info.run_id, "KILLED", f"trial {number} is {state} in Optuna; its process died",
                  {TRIAL_STATE_TAG: state})
        closed += 1
    return closed


def trial_tags(config: SweepConfig, trial: optuna.Trial, flow_run_id: str) -> dict[str, Any]:
    tags = {
        KIND_TAG: config.KIND, STUDY_TAG: config.resolved_study_name, STORAGE_TAG: masked_url(config.storage_url),
        TRIAL_NUMBER_TAG: trial.number, TRIAL_ID_TAG: trial._trial_id, OWNER_TAG: owner_token(),
    }
    if flow_run_id:
        tags[FLOW_RUN_TAG] = flow_run_id  # also right in worker processes, which have no Prefect context
    retried = trial.storage.get_trial_system_attrs(trial._trial_id).get("failed_trial")
    if retried is not None:
        tags[RETRY_OF_TAG] = retried
    return tags


def _flat_params(config: SweepConfig) -> dict[str, Any]:
    params = {}
    for key, value in config.study_settings().items():
        if isinstance(value, dict):
            params.update({f"{key}.{inner}": inner_value for inner, inner_value in value.items()})
        else:
            params[key] = value
    params.update({"study_name": config.resolved_study_name, "storage": masked_url(config.storage_url)})
    return params


@contextmanager
def sweep_parent_run(client: MlflowClient, config: SweepConfig, study: optuna.Study,
                     dataset: Dataset) -> Iterator[RunRecorder]:
    """Open the study's parent run (create it, or reopen it on resume); end it like tracked_run does."""
    part = sweep_part(config.KIND)
    experiment_id = tracking.ensure_experiment(client, part)
    context = {"part": part, "profile": config.profile, "seed": config.seed, "dataset_digest": dataset.digest}
    flow_run_id, _ = tracking.prefect_ids()
    existing = _recorded_parent(client, study, experiment_id)
    if existing is None:
        tags = tracking.run_tags(part, config.profile, config.seed, dataset.digest, {
            TAG_PREFIX + "run_level": "parent", KIND_TAG: config.KIND, STUDY_TAG: study.study_name,
            STORAGE_TAG: masked_url(config.storage_url), OWNER_TAG: owner_token()})
        run_id = client.create_run(experiment_id, run_name=study.study_name, tags=tags).info.run_id
        recorder = RunRecorder(client, run_id, experiment_id, context)
        recorder.log_params(_flat_params(config))
        recorder.log_dataset(dataset, "train")
        recorder.log_dataset(dataset, "test")
        study.set_user_attr(PARENT_RUN_ATTR, run_id)
    else:
        run_id = existing.info.run_id
        owner = existing.data.tags.get(OWNER_TAG, "")
        if existing.info.status == "RUNNING" and owner_alive(owner) is not False:
            raise SweepBusyError(
                f"study {study.study_name!r} is being run by another process ({owner or 'unknown'}; MLflow run "
                f"{run_id}). Wait for it, or run more trials at once with --workers K on a PostgreSQL storage.")
        client.update_run(run_id, status="RUNNING")
        recorder = RunRecorder(client, run_id, experiment_id, context)
        commit, dirty = tracking.code_version()
        recorder.set_tags({OWNER_TAG: owner_token(), FLOW_RUN_TAG: flow_run_id, TAG_PREFIX + "git_commit": commit,
                           TAG_PREFIX + "git_dirty": str(dirty).lower(), TAG_PREFIX + "resumed": "true"})
    recorder.set_tags({TAG_PREFIX + "target_trials": config.trials, TAG_PREFIX + "workers": config.workers})
    try:
        yield recorder
    except (KeyboardInterrupt, SystemExit) as exc:
        close_run(client, run_id, RunStatus.to_string(RunStatus.KILLED), f"interrupted: {type(exc).__name__}")
        raise
    except BaseException as exc:
        close_run(client, run_id, RunStatus.to_string(RunStatus.FAILED), f"{type(exc).__name__}: {exc}")
        raise
    else:
        client.set_terminated(run_id, status="FINISHED")


def _recorded_parent(client: MlflowClient, study: optuna.Study, experiment_id: str):
    """The study's parent run, if it exists in this tracking store (a new store gets a new parent)."""
    run_id = study.user_attrs.get(PARENT_RUN_ATTR)
    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except Exception:
        return None
    if run.info.experiment_id != experiment_id or run.info.lifecycle_stage != "active":
        return None
    return run
