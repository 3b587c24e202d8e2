"""Fault injection, bad numbers: a model whose loss turns NaN fails its own run only, in a flow (the
other models and the part finish, its tables leave the model out) and in a sweep (the trial fails
rather than being pruned, and the sweep still reaches its finished trials). Real tiny trainings; each
test checks what MLflow, Prefect and Optuna hold at the end, not only how the call ended."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
from conftest import runs_of
from holding import metric_steps as _steps
from holding import read_flow_run as _flow_run
from holding import runs_of_flow_run as _runs_of_flow_run
from optuna.trial import TrialState

from studyflow.tracking.names import Tag, TrialAttr

pytestmark = pytest.mark.faults


SMALL_MLP = {"min_depth": 1, "max_depth": 2, "min_size": 8, "max_size": 32}


def _task_run_states(flow_run_id) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as prefect:
        task_runs = prefect.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {task_run.name: task_run.state.type.value for task_run in task_runs}


def _diverging(monkeypatch, module, model_name: str) -> None:
    """The model called `model_name` trains with a learning rate no config accepts: its weights
    overflow and its loss turns NaN in its first epoch. Every other model is untouched."""
    original = module.compile_model

    def compile_model(model, settings, *args, **kwargs):
        if model.name == model_name:
            settings = settings.model_copy(update={"learning_rate": 1e30})  # past any config's bound
        return original(model, settings, *args, **kwargs)

    monkeypatch.setattr(module, "compile_model", compile_model)


@pytest.mark.integration
def test_nan_loss_in_a_flow_fails_that_run_only(prefect_server, mlflow_client, monkeypatch, tiny):
    from flows.mlp import mlp_flow
    from tasks.architectures import tasks as architecture_training

    _diverging(monkeypatch, architecture_training, "mlp_nan")
    state = mlp_flow(architectures={"MLP-nan": [16], "MLP-ok": [16]}, **dict(tiny, epochs=2), return_state=True)

    assert state.is_completed(), state.message
    flow_run_id = state.state_details.flow_run_id
    assert _flow_run(flow_run_id).state.type.value == "COMPLETED"
    task_states = _task_run_states(flow_run_id)
    assert [name for name, value in task_states.items() if value == "FAILED"] == ["train-MLP-nan-seed-0"], task_states
    assert task_states["train-MLP-ok-seed-0"] == "COMPLETED"
    runs = _runs_of_flow_run(mlflow_client, "mlp", flow_run_id)
    assert set(runs) == {"mlp-quick", "MLP-nan-seed-0", "MLP-ok-seed-0"}
    assert runs["mlp-quick"].info.status == "FINISHED" and runs["MLP-ok-seed-0"].info.status == "FINISHED"
    diverged = runs["MLP-nan-seed-0"]
    assert diverged.info.status == "FAILED"
    assert "TrainingDivergedError" in diverged.data.tags[Tag.END_REASON]
    assert "nan" in diverged.data.tags[Tag.END_REASON]
    assert _steps(mlflow_client, diverged.info.run_id, "train_loss") == [1]  # stopped in epoch 1
    assert _steps(mlflow_client, runs["MLP-ok-seed-0"].info.run_id, "val_accuracy") == [1, 2]
    table = mlflow_client.download_artifacts(runs["mlp-quick"].info.run_id, "tables/mlp_architectures.csv")
    rows = Path(table).read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("MLP-ok,")
    table = mlflow_client.download_artifacts(runs["mlp-quick"].info.run_id, "tables/mlp_vs_cnn.csv")
    assert [row.split(",")[0] for row in Path(table).read_text().splitlines()[1:]] == ["MLP-ok"]


@pytest.mark.integration
def test_nan_trial_fails_alone_and_the_sweep_goes_on(prefect_server, mlflow_client, monkeypatch, tiny):
    """Trial 2 diverges after the pruner's start-up trials: it must fail (not be pruned on its
    meaningless accuracy), and the sweep must still reach its three finished trials."""
    from flows.sweeps import mlp_sweep_flow
    from tasks.sweeps import trials as sweep_trials

    _diverging(monkeypatch, sweep_trials, "trial_2")
    name = f"nan-{os.getpid()}"
    state = mlp_sweep_flow(
        trials=3,
        study_name=name,
        search_space=SMALL_MLP,
        **dict(tiny, epochs=2),
        pruner={"kind": "median", "startup_trials": 1, "warmup_epochs": 0},
        return_state=True,
    )

    assert state.is_completed(), state.message
    flow_run_id = state.state_details.flow_run_id
    assert _flow_run(flow_run_id).state.type.value == "COMPLETED"
    from studyflow.paths import default_optuna_storage_url as default_storage_url

    study = optuna.load_study(study_name=name, storage=default_storage_url())
    states = [trial.state for trial in study.trials]
    assert states[2] == TrialState.FAIL, states
    assert sum(state in (TrialState.COMPLETE, TrialState.PRUNED) for state in states) == 3 and len(states) == 4
    runs = runs_of(mlflow_client, "sweep-mlp")
    trial_runs = {run.data.tags[Tag.TRIAL_NUMBER]: run for run in runs if run.data.tags.get(Tag.RUN_LEVEL) == "child"}
    assert sorted(trial_runs) == ["0", "1", "2", "3"]
    failed = trial_runs["2"]
    assert failed.info.status == "FAILED" and failed.data.tags[Tag.TRIAL_STATE] == "FAIL"
    assert "TrainingDivergedError" in failed.data.tags[Tag.END_REASON]
    assert study.trials[2].user_attrs[TrialAttr.MLFLOW_RUN_ID] == failed.info.run_id
    assert [run.info.run_name for run in runs if run.info.status != "FINISHED"] == [failed.info.run_name]
