"""Fault injection in sweeps: a trial killed with SIGKILL, then failed by its heartbeat and retried;
a Dask worker killed mid-trial (its trial failed, its run closed KILLED, its parameters trained again
in the surviving worker); and Ctrl-C of a sweep on Dask workers (its running trials queued again).
Each test asserts what the Optuna study and the MLflow runs hold at the end, not only the exit code."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from commands import start_studyflow
from conftest import prefect_home, sweep_runs, sweep_study
from holding import descendants, kill_9, start_held, wait_gone, wait_until_epoch_1_logged
from optuna.trial import TrialState

from studyflow.tracking.names import Tag

pytestmark = pytest.mark.faults


@pytest.mark.slow
def test_trial_killed_mid_epoch_is_failed_by_the_heartbeat_and_retried(mlflow_client, tmp_path, tiny):
    settings = dict(
        tiny,
        epochs=2,
        trials=1,
        study_name="killed",
        search_space={"min_depth": 2, "max_depth": 2, "min_size": 64, "max_size": 64},
        heartbeat_interval_s=1,
        heartbeat_grace_s=3,
    )
    statement = (
        "from studyflow.config.sweeps import sweep_config; from tasks.sweeps.run import run_sweep; "
        f"run_sweep(sweep_config('mlp', **{settings!r}))"
    )
    mlflow_client.search_experiments()  # the store exists before the sweep writes to it
    log_path = tmp_path / "killed-sweep.log"
    worker = start_held("trial_0", statement, log_path, {**os.environ})  # trial 0's model, held after epoch 1
    try:
        run_id = wait_until_epoch_1_logged(
            mlflow_client, lambda: sweep_runs(mlflow_client, "mlp")[1], "trial 0", worker, log_path
        )
    finally:
        kill_9(worker)  # mid-training: no handler runs, the run stays RUNNING
    assert mlflow_client.get_run(run_id).info.status == "RUNNING"
    time.sleep(settings["heartbeat_grace_s"] + 1)

    from studyflow.config.sweeps import sweep_config
    from tasks.sweeps.run import run_sweep

    run_sweep(sweep_config("mlp", **settings))
    study = sweep_study("killed")
    killed, retried = study.trials
    assert killed.state == TrialState.FAIL and retried.state == TrialState.COMPLETE
    assert retried.system_attrs["failed_trial"] == killed.number and retried.params == killed.params
    killed_run = mlflow_client.get_run(run_id)
    assert killed_run.info.status == "KILLED" and killed_run.data.tags[Tag.TRIAL_STATE] == "FAIL"
    parents, children = sweep_runs(mlflow_client, "mlp")
    assert len(parents) == 1 and len(children) == 2
    assert [run for run in parents + children if run.info.status == "RUNNING"] == []
    (retried_run,) = [run for run in children if run.info.run_id != run_id]
    assert retried_run.data.tags[Tag.RETRY_OF] == str(killed.number)


def _held_dask_sweep(tmp_path, mlflow_client, postgres_url, tiny, name: str):
    """`studyflow sweep mlp --set workers=2` on a PostgreSQL study, its trial 0 held after epoch 1 in
    one of the two Dask workers: (command, its log, trial 0's run id, the worker that holds it)."""
    argv = [
        "sweep",
        "mlp",
        "--trials",
        "2",
        "--study-name",
        name,
        "--storage",
        postgres_url,
        "--set",
        "workers=2",
        "--set",
        'pruner={"kind": "none"}',
        "--set",
        'search_space={"min_depth": 1, "max_depth": 2, "min_size": 8, "max_size": 32}',
        "--set",
        "heartbeat_interval_s=1",
        "--set",
        "heartbeat_grace_s=3",
        *[f"--set={key}={value}" for key, value in dict(tiny, epochs=2).items()],
    ]
    preload = Path(__file__).with_name("dask_hold.py")  # holds trial_0 once in the whole cluster
    env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home(tmp_path / "prefect")),
        "PYTHONUNBUFFERED": "1",
        "DASK_DISTRIBUTED__WORKER__PRELOAD": f'["{preload}"]',
        "STUDYFLOW_TEST_HOLD_MODEL": "trial_0",
        "STUDYFLOW_TEST_HOLD_ONCE": str(tmp_path / "held-once"),
    }
    mlflow_client.search_experiments()  # the store exists before the sweep writes to it
    log_path = tmp_path / "sweep.log"
    with open(log_path, "w") as log:
        command = start_studyflow(*argv, env=env, log=log)

    def trial_0():
        return [run for run in sweep_runs(mlflow_client, "mlp")[1] if run.data.tags.get(Tag.TRIAL_NUMBER) == "0"]

    try:
        run_id = wait_until_epoch_1_logged(mlflow_client, trial_0, "trial 0", command, log_path)
    except BaseException:
        kill_9(command)
        raise
    owner = mlflow_client.get_run(run_id).data.tags[Tag.PROCESS]
    assert int(owner.split(":")[1]) != command.pid  # held in a Dask worker, not in the command
    return command, log_path, run_id, owner


@pytest.mark.integration  # PostgreSQL: two workers share the study
@pytest.mark.slow
def test_a_dask_worker_killed_mid_trial_has_its_trial_failed_and_retried(tmp_path, mlflow_client, postgres_url, tiny):
    """The worker training trial 0 (held after its epoch 1) is killed with SIGKILL. Dask runs its trial
    loop again; the heartbeat fails trial 0, its run is closed KILLED, its parameters are trained again
    in the surviving worker, and the command ends well."""
    name = "killed-dask-worker"
    command, log_path, run_id, owner = _held_dask_sweep(tmp_path, mlflow_client, postgres_url, tiny, name)
    try:
        os.kill(int(owner.split(":")[1]), signal.SIGKILL)  # the Dask worker process, mid-trial
        code = command.wait(timeout=600)
    except BaseException:
        kill_9(command)
        raise
    assert code == 0, log_path.read_text()[-4000:]
    study = sweep_study(name, postgres_url)
    killed = study.trials[0]
    assert killed.state == TrialState.FAIL
    (retried,) = [trial for trial in study.trials if trial.system_attrs.get("failed_trial") == killed.number]
    assert retried.state == TrialState.COMPLETE and retried.params == killed.params
    assert sum(trial.state == TrialState.COMPLETE for trial in study.trials) >= 2
    killed_run = mlflow_client.get_run(run_id)
    assert killed_run.info.status == "KILLED" and killed_run.data.tags[Tag.TRIAL_STATE] == "FAIL"
    assert "no heartbeat" in killed_run.data.tags[Tag.END_REASON]
    parents, children = sweep_runs(mlflow_client, "mlp")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert [run for run in parents + children if run.info.status == "RUNNING"] == []
    (retried_run,) = [run for run in children if run.data.tags.get(Tag.RETRY_OF) == str(killed.number)]
    assert retried_run.info.status == "FINISHED" and retried_run.data.tags[Tag.PROCESS] != owner
    assert len(children) == len(study.trials)  # one run per trial, the killed one included


@pytest.mark.integration
@pytest.mark.slow
def test_ctrl_c_of_a_sweep_on_dask_workers_queues_its_running_trials_again(tmp_path, mlflow_client, postgres_url, tiny):
    """Ctrl-C (SIGINT to the command's group) while a worker holds trial 0: the command exits 130 and
    leaves nothing RUNNING: the local cluster is gone, its trials are failed with their parameters
    queued again (a resumed sweep runs them first), their runs and the parent closed KILLED."""
    name = "ctrl-c-dask"
    command, log_path, run_id, owner = _held_dask_sweep(tmp_path, mlflow_client, postgres_url, tiny, name)
    started = descendants(command.pid)
    os.killpg(command.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    try:
        code = command.wait(timeout=180)
    except BaseException:
        kill_9(command)
        raise
    assert code == 130, log_path.read_text()[-4000:]
    assert wait_gone(started, 30) == [], "a Dask worker (or the Prefect server) outlived the command"
    study = sweep_study(name, postgres_url)
    states = {trial.number: trial.state for trial in study.trials}
    assert states[0] == TrialState.FAIL and TrialState.RUNNING not in states.values(), states
    (queued,) = [trial for trial in study.trials if trial.system_attrs.get("failed_trial") == 0]
    assert queued.state == TrialState.WAITING and queued.params == study.trials[0].params
    killed_run = mlflow_client.get_run(run_id)
    assert killed_run.info.status == "KILLED" and killed_run.data.tags[Tag.TRIAL_STATE] == "FAIL"
    assert "SIGINT" in killed_run.data.tags[Tag.END_REASON]
    parents, children = sweep_runs(mlflow_client, "mlp")
    assert [run for run in parents + children if run.info.status == "RUNNING"] == []
    assert parents[0].info.status == "KILLED"
