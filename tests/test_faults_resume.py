"""Fault injection, part 1: reruns, code changes and a kill -9 in the middle of the CNN part. (A sweep
trial killed, alone or with its Dask worker, and a sweep's Ctrl-C: test_faults_sweep_trials.py.)

Each test asserts the end state of the stores a user would look at: the MLflow runs (status,
names, reuse links, the parent's table), Prefect's flow and task runs (Cached, Completed, Crashed)
and the persisted step results; never only an exit code.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from commands import run_studyflow
from conftest import TINY, download, prefect_home, runs_of
from holding import (
    cli_statement,
    descendants,
    kill_9,
    prefect_flow_runs,
    start_held,
    wait_gone,
    wait_until_epoch_1_logged,
)

from studyflow import tracking
from studyflow.tracking.names import Tag

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.faults


def _children(client, part, parent_run_id):
    return [run for run in runs_of(client, part) if run.data.tags.get("mlflow.parentRunId") == parent_run_id]


def _parents(client, part):
    runs = [run for run in runs_of(client, part) if run.data.tags.get(Tag.RUN_LEVEL) == "parent"]
    return sorted(runs, key=lambda run: run.info.start_time)


def _task_states(flow_run_id: str) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {task_run.name: task_run.state.name for task_run in task_runs}


# ------------------------------------------------------------------------------ rerun, force


@pytest.mark.integration
def test_rerun_reuses_each_finished_step_and_force_redoes_it(prefect_server, mlflow_client, studyflow_home, tiny):
    from flows.mlp import mlp_flow

    architectures = {"MLP-a": [24], "MLP-b": [8, 8]}
    mlp_flow(architectures=architectures, **tiny)
    mlp_flow(architectures=architectures, **tiny)

    first, second = _parents(mlflow_client, "mlp")
    trained = {run.data.tags[Tag.ARCHITECTURE]: run for run in _children(mlflow_client, "mlp", first.info.run_id)}
    assert set(trained) == set(architectures)
    assert _children(mlflow_client, "mlp", second.info.run_id) == [], "the rerun trained again"
    assert set(second.data.tags[tracking.Tag.REUSED_RUN_IDS].split(",")) == {
        run.info.run_id for run in trained.values()
    }
    states = _task_states(second.data.tags[Tag.PREFECT_FLOW_RUN_ID])
    assert states["train-MLP-a-seed-0"] == states["train-MLP-b-seed-0"] == "Cached"
    table = download(mlflow_client, second.info.run_id, "tables/mlp_architectures.csv").read_text().splitlines()
    assert sorted(line.split(",")[0] for line in table[1:]) == ["MLP-a", "MLP-b"]  # each model once
    assert len(list((studyflow_home / "mlruns" / "step-results").iterdir())) >= 2

    mlp_flow(architectures=architectures, force=True, **tiny)
    third = _parents(mlflow_client, "mlp")[-1]
    retrained = _children(mlflow_client, "mlp", third.info.run_id)
    assert sorted(run.info.run_name for run in retrained) == ["MLP-a-seed-0", "MLP-b-seed-0"]
    assert all(run.info.status == "FINISHED" for run in retrained)
    assert tracking.Tag.REUSED_RUN_IDS not in third.data.tags


@pytest.mark.integration
def test_a_changed_input_or_a_deleted_run_redoes_the_step(prefect_server, mlflow_client, tiny):
    from flows.perceptron import perceptron_flow

    sizes = {name: tiny[name] for name in ("train_size", "test_size")}  # the perceptron counts max_epochs
    perceptron_flow(pairs=[[1, 0]], max_epochs=3, **sizes)
    first = _children(mlflow_client, "perceptron", _parents(mlflow_client, "perceptron")[0].info.run_id)
    perceptron_flow(pairs=[[1, 0]], max_epochs=4, **sizes)
    changed = _children(mlflow_client, "perceptron", _parents(mlflow_client, "perceptron")[-1].info.run_id)
    assert len(first) == len(changed) == 1, "a step whose input changed must run again"

    mlflow_client.delete_run(changed[0].info.run_id)  # a user deletes the run in the UI
    perceptron_flow(pairs=[[1, 0]], max_epochs=4, **sizes)
    redone = _children(mlflow_client, "perceptron", _parents(mlflow_client, "perceptron")[-1].info.run_id)
    assert len(redone) == 1 and redone[0].info.status == "FINISHED", "a result naming a deleted run is redone"


# --------------------------------------------------------------------------- code changes


def _copy_of_repo(destination: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        source = REPO / name
        if source.is_file() and not (name.startswith("data/") and source.stat().st_size > 1e6):  # datasets: by env
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def _studyflow(cwd: Path, *argv: str, env: dict) -> subprocess.CompletedProcess:
    return run_studyflow(*argv, env=env, cwd=cwd)


@pytest.mark.slow
def test_a_change_inside_a_helper_the_task_calls_retrains(tmp_path, mlflow_client, studyflow_home, tiny):
    """The same command from two checkouts: identical code reuses, a one-line change in a helper
    function of tasks/training.py (not the task itself) retrains. The first command's console is also
    what a user sees of any `studyflow run` (test_cli.py's commands all stop before any work)."""
    checkout = _copy_of_repo(tmp_path / "checkout")
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "STUDYFLOW_DATA_DIR": str(REPO / "data"),
        "PREFECT_HOME": str(prefect_home(tmp_path / "prefect")),
    }
    where = subprocess.run(
        [sys.executable, "-c", "import tasks.training as t; print(t.__file__)"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(checkout)), "the subprocess must run the copied code"
    command = [
        "run",
        "mlp",
        "--set",
        'architectures={"MLP-a": [16]}',
        *[f"--set={name}={value}" for name, value in tiny.items()],
    ]

    for attempt in range(2):
        result = _studyflow(checkout, *command, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        if attempt == 0:
            _assert_a_quiet_console_with_the_run_and_the_ui(result, mlflow_client)
    first, second = _parents(mlflow_client, "mlp")
    assert len(_children(mlflow_client, "mlp", first.info.run_id)) == 1
    assert _children(mlflow_client, "mlp", second.info.run_id) == [], "identical code must reuse"

    helpers = checkout / "tasks" / "training.py"
    source = helpers.read_text()
    assert "def compile_model(" in source
    helpers.write_text(source.replace("def compile_model(", "def compile_model(  # changed by the test\n", 1))
    result = _studyflow(checkout, *command, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    third = _parents(mlflow_client, "mlp")[-1]
    retrained = _children(mlflow_client, "mlp", third.info.run_id)
    assert [run.info.run_name for run in retrained] == ["MLP-a-seed-0"] and retrained[0].info.status == "FINISHED"


def _assert_a_quiet_console_with_the_run_and_the_ui(result: subprocess.CompletedProcess, client) -> None:
    """What `studyflow run mlp` prints: its experiment and parent run, the MLflow UI command once."""
    assert "experiment studyflow-mlp" in result.stdout
    # Exactly one temporary Prefect server was started and stopped: the early boot and the flow
    # did not start two, and none was left running.
    assert (result.stdout + result.stderr).count("Stopping temporary server") == 1
    # A quiet console: the UI hint once, as a command that runs as printed, then the page of the
    # part's runs in the model-training view; no TensorFlow banners; precision "auto" explained once.
    assert result.stdout.count("start both UIs with") == 1
    (command,) = [line.split() for line in result.stdout.splitlines() if line.strip().endswith("studyflow ui")]
    assert Path(command[0]).is_file() and os.access(command[0], os.X_OK) and command[1:] == ["ui"], command
    assert re.search(
        r"then open http://127\.0\.0\.1:5000/#/experiments/\d+/runs\?workflowType=machine_learning", result.stdout
    )
    assert result.stdout.count("[studyflow] precision auto -> ") == 1
    console = result.stdout + result.stderr
    assert "oneDNN custom operations" not in console and "absl::InitializeLog" not in console
    # No library warning the user cannot act on, and none twice (TensorFlow's reached Prefect's handler too).
    assert "tf.function retracing" not in console and "Add type hints" not in console
    warnings = [re.sub(r"^.*?WARNING\W+[\w.]+\W+", "", line) for line in console.splitlines() if "WARNING" in line]
    assert len(warnings) == len(set(warnings)), warnings
    (parent,) = [run for run in _parents(client, "mlp") if run.info.run_name == "mlp-quick"]
    assert parent.info.run_id in result.stdout and parent.info.status == "FINISHED"


# ------------------------------------------------------------------- kill -9 mid-training


@pytest.mark.slow
def test_kill_9_of_the_study_mid_cnn_then_the_same_command_retrains_only_the_interrupted_model(tmp_path, mlflow_client):
    env = {**os.environ, "PREFECT_HOME": str(prefect_home(tmp_path / "prefect")), "PYTHONUNBUFFERED": "1"}
    argv = ["run", "study", "--set", 'parts=["pca", "cnn"]', "--set", "report=false"]
    # `studyflow run study` on tiny data: the quick profile's CNNs (their 2 epochs: CNN-2 is held after
    # its first) on conftest's tiny subsets, the PCA on a smaller sample; both commands the same.
    statement = cli_statement(
        argv, {"pca": {"sample_size": 1_000}, "cnn": {"train_size": TINY["train_size"], "test_size": TINY["test_size"]}}
    )
    mlflow_client.search_experiments()  # the store exists before the study writes to it
    log_path = tmp_path / "killed-study.log"
    # CNN-2's Keras model (cnn_2) is held after its epoch 1; CNN-1 and the PCA part run as usual.
    study = start_held("cnn_2", statement, log_path, env)
    try:
        killed_run_id = wait_until_epoch_1_logged(
            mlflow_client,
            lambda: [run for run in runs_of(mlflow_client, "cnn") if run.data.tags.get(Tag.ARCHITECTURE) == "CNN-2"],
            "CNN-2",
            study,
            log_path,
        )
        started = descendants(study.pid)  # Prefect's temporary server
        study.send_signal(signal.SIGKILL)  # the command only, as `kill -9 <pid>` does
        study.wait(timeout=30)
        left = wait_gone(started, 10)
    finally:
        kill_9(study)  # and whatever of its process group is left
    assert started, "the command started no Prefect server of its own"
    assert left == [], "a process the command started outlived it by 10 s"
    first_parent = _parents(mlflow_client, "cnn")[0]
    assert mlflow_client.get_run(killed_run_id).info.status == "RUNNING"  # what kill -9 leaves behind
    assert [point.step for point in mlflow_client.get_metric_history(killed_run_id, "val_accuracy")] == [1]

    rerun = subprocess.run(
        [sys.executable, "-c", statement], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "RUNNING -> KILLED" in rerun.stdout and "reused finished run" in rerun.stdout

    # MLflow: nothing RUNNING; CNN-1 trained once, CNN-2 killed then trained again, the rest trained.
    assert runs_of(mlflow_client, "cnn", "attributes.status = 'RUNNING'") == []
    by_name: dict[str, list] = {}
    for run in runs_of(mlflow_client, "cnn"):
        by_name.setdefault(run.data.tags.get(Tag.ARCHITECTURE, run.info.run_name), []).append(run)
    assert [run.info.status for run in by_name["CNN-1"]] == ["FINISHED"]
    assert sorted(run.info.status for run in by_name["CNN-2"]) == ["FINISHED", "KILLED"]
    killed = mlflow_client.get_run(killed_run_id)
    assert killed.info.status == "KILLED" and "no longer exists" in killed.data.tags[Tag.END_REASON]
    for name in ("CNN-3", "CNN-4", "CNN-5"):
        assert [run.info.status for run in by_name[name]] == ["FINISHED"], name
    assert mlflow_client.get_run(first_parent.info.run_id).info.status == "KILLED"
    final = _parents(mlflow_client, "cnn")[-1]
    assert final.info.status == "FINISHED"
    assert final.data.tags[tracking.Tag.REUSED_RUN_IDS] == by_name["CNN-1"][0].info.run_id
    table = download(mlflow_client, final.info.run_id, "tables/cnn_architectures.csv").read_text().splitlines()
    assert sorted(line.split(",")[0] for line in table[1:]) == [f"CNN-{index}" for index in range(1, 6)]
    # The PCA part had finished: both its flow runs FINISHED, the second from cached steps.
    assert [run.info.status for run in _parents(mlflow_client, "pca")] == ["FINISHED", "FINISHED"]
    # Registry: the champion is one of the final runs, which are all FINISHED.
    champion = mlflow_client.get_model_version_by_alias("mnist-cnn", "champion")
    assert mlflow_client.get_run(champion.run_id).info.status == "FINISHED"
    # Prefect (local mode keeps its database under PREFECT_HOME): the killed study and its cnn
    # subflow were marked Crashed by the rerun's reconciliation; the rerun completed.
    flow_runs = prefect_flow_runs(tmp_path / "prefect")
    assert [state for name, state in flow_runs if name == "study"] == ["CRASHED", "COMPLETED"]
    assert [state for name, state in flow_runs if name == "cnn"] == ["CRASHED", "COMPLETED"]
    assert [state for name, state in flow_runs if name == "pca"] == ["COMPLETED", "COMPLETED"]
