"""Optuna sweeps end to end on tiny subsets: storage, MLflow parent and child runs, figures, pruning,
resume, a trial killed with SIGKILL, bad inputs, and parallel workers (on PostgreSQL when one can
be started here)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import assert_png, download, free_port, runs_of
from studyflow import cli
from studyflow.config import ConfigError
from tasks.sweeps.config import sweep_config
from tasks.sweeps.run import run_sweep
from tasks.sweeps.storage import default_storage_url
from tasks.sweeps.record import owner_token

TINY = {"train_size": 1000, "test_size": 300, "epochs": 2}
SMALL_MLP = {"min_depth": 1, "max_depth": 3, "min_size": 8, "max_size": 64}
SMALL_CNN = {"min_depth": 1, "max_depth": 2, "min_size": 2, "max_size": 8}
REPO = Path(__file__).resolve().parent.parent


def _sweep_runs(client, kind):
    runs = runs_of(client, f"sweep-{kind}")
    parents = [run for run in runs if run.data.tags.get("studyflow.run_level") == "parent"]
    children = [run for run in runs if run.data.tags.get("studyflow.run_level") == "child"]
    return parents, children


def _study(name, url=None):
    return optuna.load_study(study_name=name, storage=url or default_storage_url())


def _assert_linked(study, parent, children):
    """Every trial's run names its study and trial; every trial names its run; one flow run id."""
    by_number = {trial.number: trial for trial in study.trials}
    for run in children:
        tags = run.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["studyflow.optuna_study"] == study.study_name
        trial = by_number[int(tags["studyflow.optuna_trial_number"])]
        assert trial.user_attrs["studyflow.mlflow_run_id"] == run.info.run_id
        assert tags["studyflow.trial_state"] == trial.state.name
    assert study.user_attrs["studyflow.mlflow_parent_run_id"] == parent.info.run_id


@pytest.mark.parametrize("kind, space", [("mlp", SMALL_MLP), ("cnn", SMALL_CNN)])
def test_sweep_flow_records_each_trial_as_a_child_run(prefect_server, mlflow_client, kind, space):
    from flows.sweeps import SWEEP_FLOWS

    summary = SWEEP_FLOWS[kind](trials=3, search_space=space, **TINY)
    study = _study(f"sweep-{kind}-quick")
    assert sum(trial.state in (TrialState.COMPLETE, TrialState.PRUNED) for trial in study.trials) == 3
    (parent,), children = _sweep_runs(mlflow_client, kind)
    assert parent.info.status == "FINISHED" and len(children) == 3
    _assert_linked(study, parent, children)
    flow_run_ids = {run.data.tags["studyflow.prefect_flow_run_id"] for run in children}
    assert flow_run_ids == {parent.data.tags["studyflow.prefect_flow_run_id"]} and "" not in flow_run_ids
    size = "width" if kind == "mlp" else "filters"
    for run in children:
        assert run.info.status == "FINISHED"
        assert f"{size}_1" in run.data.params and "depth" in run.data.params
        epochs = [point.step for point in mlflow_client.get_metric_history(run.info.run_id, "val_accuracy")]
        assert epochs == [1, 2][: len(epochs)] and epochs
    best = json.loads(download(mlflow_client, parent.info.run_id, "best_trial.json").read_text())
    assert best["trial"] == summary["best"]["trial"] == study.best_trial.number
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(study.best_value)
    assert parent.data.tags["studyflow.best_trial_number"] == str(study.best_trial.number)
    for figure in ("optimization_history", "trial_learning_curves", "param_importances"):
        assert_png(download(mlflow_client, parent.info.run_id, f"figures/{figure}.png"))
    assert len(download(mlflow_client, parent.info.run_id, "tables/trials.csv").read_text().splitlines()) == 4


def test_mtl_sweep_has_two_objectives_and_draws_the_pareto_front(prefect_server, mlflow_client):
    from flows.sweeps import mtl_sweep_flow

    summary = mtl_sweep_flow(trials=3, train_size=600, test_size=200, epochs=1)
    study = _study("sweep-mtl-quick")
    assert len(study.directions) == 2
    assert [trial.state for trial in study.trials] == [TrialState.COMPLETE] * 3
    assert all(0.0 <= trial.params["lambda"] <= 1.0 for trial in study.trials)
    (parent,), children = _sweep_runs(mlflow_client, "mtl")
    assert len(children) == 3
    _assert_linked(study, parent, children)
    for run in children:
        assert {"val_item_accuracy", "val_group_accuracy", "test_item_accuracy"} <= set(run.data.metrics)
    assert {row["trial"] for row in summary["pareto_front"]} == {trial.number for trial in study.best_trials}
    for figure in ("pareto_front", "accuracy_vs_lambda", "optimization_history", "param_importances"):
        assert_png(download(mlflow_client, parent.info.run_id, f"figures/{figure}.png"))


def test_pruned_trials_end_finished_with_a_pruned_tag(mlflow_client):
    """A strict pruner (threshold above any accuracy reachable here) prunes every trial after epoch 1."""
    config = sweep_config("mlp", trials=2, train_size=1000, test_size=300, epochs=3, search_space=SMALL_MLP,
                          pruner={"kind": "threshold", "min_val_accuracy": 0.999, "warmup_epochs": 0})
    summary = run_sweep(config)
    study = _study(config.resolved_study_name)
    assert [trial.state for trial in study.trials] == [TrialState.PRUNED] * 2
    assert summary["trials"]["PRUNED"] == 2 and "best" not in summary
    (parent,), children = _sweep_runs(mlflow_client, "mlp")
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags["studyflow.trial_state"] == "PRUNED" and run.data.tags["studyflow.pruned"] == "true"
        assert run.data.metrics["epochs_run"] == 1
        assert len(mlflow_client.get_metric_history(run.info.run_id, "val_accuracy")) == 1
    assert parent.data.metrics["trials_pruned"] == 2 and parent.data.metrics["epochs_trained"] == 2


def test_resume_runs_only_the_missing_trials(mlflow_client):
    settings = dict(train_size=1000, test_size=300, epochs=1, search_space=SMALL_MLP, study_name="resume")
    run_sweep(sweep_config("mlp", trials=2, **settings))
    run_sweep(sweep_config("mlp", trials=4, **settings))
    run_sweep(sweep_config("mlp", trials=4, **settings))  # nothing left to do
    study = _study("resume")
    assert [trial.state in (TrialState.COMPLETE, TrialState.PRUNED) for trial in study.trials] == [True] * 4
    params = [json.dumps(trial.params, sort_keys=True) for trial in study.trials]
    assert len(set(params)) == 4, "a resumed sweep drew the first trials' parameters again"
    (parent,), children = _sweep_runs(mlflow_client, "mlp")
    assert parent.info.status == "FINISHED" and len(children) == 4
    _assert_linked(study, parent, children)
    with pytest.raises(ConfigError, match="epochs"):  # same study, other settings: refused before training
        run_sweep(sweep_config("mlp", trials=5, **{**settings, "epochs": 2}))


def test_trial_killed_mid_epoch_is_failed_by_the_heartbeat_and_retried(mlflow_client, studyflow_home):
    settings = dict(trials=1, train_size=2000, test_size=300, epochs=12, study_name="killed",
                    search_space={"min_depth": 2, "max_depth": 2, "min_size": 64, "max_size": 64},
                    heartbeat_interval_s=1, heartbeat_grace_s=3)
    script = ("from tasks.sweeps.config import sweep_config; from tasks.sweeps.run import run_sweep; "
              f"run_sweep(sweep_config('mlp', **{settings!r}))")
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env={**os.environ},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run_id = _wait_for_first_epoch(mlflow_client, worker)
        worker.send_signal(signal.SIGKILL)  # mid-training: no handler runs, the run stays RUNNING
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert mlflow_client.get_run(run_id).info.status == "RUNNING"
    time.sleep(settings["heartbeat_grace_s"] + 1)

    run_sweep(sweep_config("mlp", **settings))
    study = _study("killed")
    killed, retried = study.trials
    assert killed.state == TrialState.FAIL and retried.state == TrialState.COMPLETE
    assert retried.system_attrs["failed_trial"] == killed.number and retried.params == killed.params
    killed_run = mlflow_client.get_run(run_id)
    assert killed_run.info.status == "KILLED" and killed_run.data.tags["studyflow.trial_state"] == "FAIL"
    parents, children = _sweep_runs(mlflow_client, "mlp")
    assert len(parents) == 1 and len(children) == 2
    assert [run for run in parents + children if run.info.status == "RUNNING"] == []
    (retried_run,) = [run for run in children if run.info.run_id != run_id]
    assert retried_run.data.tags["studyflow.optuna_retry_of"] == str(killed.number)


def _wait_for_first_epoch(client, worker, timeout_s=240):
    """The id of the subprocess's trial run once it has logged one epoch (so it is mid-training)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert worker.poll() is None, "the sweep subprocess ended before it could be killed"
        try:
            children = [run for run in _sweep_runs(client, "mlp")[1] if run.info.status == "RUNNING"]
        except Exception:  # the store is still being created by the subprocess
            children = []
        if children and client.get_metric_history(children[0].info.run_id, "val_accuracy"):
            return children[0].info.run_id
        time.sleep(0.2)
    raise AssertionError("no trial run logged an epoch in time")


@pytest.mark.parametrize("argv, message", [
    (["sweep", "mlp", "--trials", "0"], "parameter 'trials'"),
    (["sweep", "mtl", "--trials", "3", "--set", 'search_space={"max_lambda": 1.5}'], "max_lambda"),
    (["sweep", "mtl", "--trials", "3", "--set", 'search_space={"min_lambda": -0.1}'], "min_lambda"),
    (["sweep", "cnn", "--trials", "3", "--set", 'search_space={"max_depth": 7}'], "at most 6"),
    (["sweep", "mlp", "--trials", "3", "--set", 'search_space={"min_size": 64, "max_size": 8}'], "min_size"),
    (["sweep", "mlp", "--trials", "3", "--set", 'search_space={"widths": [1]}'], "widths"),
    (["sweep", "mlp", "--trials", "3", "--set", "epoch=3"], "unknown parameter(s) epoch"),
    (["sweep", "mtl", "--trials", "3", "--set", 'pruner={"kind": "median"}'], "multi-objective"),
    (["sweep", "cnn", "--trials", "4", "--workers", "2"], "PostgreSQL"),
])
def test_bad_inputs_fail_before_any_work(studyflow_home, capsys, argv, message):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (studyflow_home / "mlruns").exists()


def test_unreachable_storage_is_reported_before_prefect_starts_and_hides_the_password(studyflow_home, capsys):
    url = f"postgresql://user:secret@127.0.0.1:{free_port()}/optuna"
    assert cli.main(["sweep", "cnn", "--trials", "3", "--workers", "2", "--storage", url]) == 1
    err = capsys.readouterr().err
    assert "postgresql://user:***@127.0.0.1" in err and "secret" not in err


def test_unknown_kind_is_refused_by_the_command_line(studyflow_home, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sweep", "rnn", "--trials", "3"])
    assert exit_info.value.code == 2 and "invalid choice: 'rnn'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown sweep kind"):
        sweep_config("rnn")
    assert not (studyflow_home / "mlruns").exists()


def test_cli_sweep_resumes_and_prints_the_parent_run(prefect_server, mlflow_client, capsys):
    args = ["sweep", "mlp", "--trials", "1", "--study-name", "cli", "--set", f"search_space={json.dumps(SMALL_MLP)}",
            "--set", "train_size=1000", "--set", "test_size=300", "--set", "epochs=1"]
    assert cli.main(args) == 0
    assert cli.main(args[:2] + ["--trials", "2"] + args[4:]) == 0
    out = capsys.readouterr().out
    (parent,), children = _sweep_runs(mlflow_client, "mlp")
    assert f"parent run {parent.info.run_id}" in out and "experiment studyflow-sweep-mlp" in out
    assert len(children) == 2 and len(_study("cli").trials) == 2


# ---------------------------------------------------------------- parallel workers on PostgreSQL


@pytest.mark.integration
def test_parallel_workers_share_a_postgresql_study(mlflow_client, postgres_url):
    name = f"workers-{os.getpid()}-{int(time.time())}"
    config = sweep_config("mlp", trials=4, workers=2, storage=postgres_url, study_name=name, **{**TINY, "epochs": 1},
                          search_space=SMALL_MLP)
    summary = run_sweep(config)
    study = _study(name, postgres_url)
    finished = [trial for trial in study.trials if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert 4 <= len(finished) <= 5 and summary["trials"]["FINISHED"] == len(finished)  # at most K - 1 over
    (parent,), children = _sweep_runs(mlflow_client, "mlp")
    assert len(children) == len(study.trials) and parent.info.status == "FINISHED"
    _assert_linked(study, parent, children)
    processes = {run.data.tags["studyflow.process"] for run in children}
    assert len(processes) == 2, f"trials ran in {processes}, not in two worker processes"
    assert owner_token() not in processes
