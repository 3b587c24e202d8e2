"""Fault injection, part 1: reruns, code changes and a kill -9 in the middle of the CNN part.

Each test asserts the end state of the stores a user would look at: the MLflow runs (status,
names, reuse links, the parent's table), Prefect's flow and task runs (Cached, Completed, Crashed)
and the persisted step results; never only an exit code.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import download, runs_of

from studyflow import steps, tracking

REPO = Path(__file__).resolve().parents[1]
TINY = dict(epochs=1, train_size=600, test_size=200)

pytestmark = pytest.mark.faults


def _children(client, part, parent_run_id):
    return [run for run in runs_of(client, part) if run.data.tags.get("mlflow.parentRunId") == parent_run_id]


def _parents(client, part):
    runs = [run for run in runs_of(client, part) if run.data.tags.get("studyflow.run_level") == "parent"]
    return sorted(runs, key=lambda run: run.info.start_time)


def _task_states(flow_run_id: str) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {task_run.name: task_run.state.name for task_run in task_runs}


# ------------------------------------------------------------------------------ rerun, force

def test_rerun_reuses_each_finished_step_and_force_redoes_it(prefect_server, mlflow_client, studyflow_home):
    from flows.mlp import mlp_flow

    architectures = {"MLP-a": [24], "MLP-b": [8, 8]}
    mlp_flow(architectures=architectures, **TINY)
    mlp_flow(architectures=architectures, **TINY)

    first, second = _parents(mlflow_client, "mlp")
    trained = {run.info.run_name: run for run in _children(mlflow_client, "mlp", first.info.run_id)}
    assert set(trained) == set(architectures)
    assert _children(mlflow_client, "mlp", second.info.run_id) == [], "the rerun trained again"
    assert set(second.data.tags[tracking.REUSED_RUNS_TAG].split(",")) == {run.info.run_id for run in trained.values()}
    states = _task_states(second.data.tags["studyflow.prefect_flow_run_id"])
    assert states["train-MLP-a"] == states["train-MLP-b"] == "Cached"
    table = download(mlflow_client, second.info.run_id, "tables/mlp_architectures.csv").read_text().splitlines()
    assert sorted(line.split(",")[0] for line in table[1:]) == ["MLP-a", "MLP-b"]  # each model once
    assert len(list((studyflow_home / "mlruns" / "step-results").iterdir())) >= 2

    mlp_flow(architectures=architectures, force=True, **TINY)
    third = _parents(mlflow_client, "mlp")[-1]
    retrained = _children(mlflow_client, "mlp", third.info.run_id)
    assert sorted(run.info.run_name for run in retrained) == ["MLP-a", "MLP-b"]
    assert all(run.info.status == "FINISHED" for run in retrained)
    assert tracking.REUSED_RUNS_TAG not in third.data.tags


def test_a_changed_input_or_a_deleted_run_redoes_the_step(prefect_server, mlflow_client):
    from flows.perceptron import perceptron_flow

    perceptron_flow(pairs=[[1, 0]], max_epochs=3, **{k: TINY[k] for k in ("train_size", "test_size")})
    first = _children(mlflow_client, "perceptron", _parents(mlflow_client, "perceptron")[0].info.run_id)
    perceptron_flow(pairs=[[1, 0]], max_epochs=4, **{k: TINY[k] for k in ("train_size", "test_size")})
    changed = _children(mlflow_client, "perceptron", _parents(mlflow_client, "perceptron")[-1].info.run_id)
    assert len(first) == len(changed) == 1, "a step whose input changed must run again"

    mlflow_client.delete_run(changed[0].info.run_id)  # a user deletes the run in the UI
    perceptron_flow(pairs=[[1, 0]], max_epochs=4, **{k: TINY[k] for k in ("train_size", "test_size")})
    redone = _children(mlflow_client, "perceptron", _parents(mlflow_client, "perceptron")[-1].info.run_id)
    assert len(redone) == 1 and redone[0].info.status == "FINISHED", "a result naming a deleted run is redone"


# --------------------------------------------------------------------------- code changes

def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_code_digest_follows_helpers_through_imports(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    _write(tmp_path, {
        "demo/__init__.py": "",
        "demo/step.py": "from demo.helpers import scale\n\ndef step(x):\n    return scale(x)\n",
        "demo/helpers.py": "from . import deeper\n\ndef scale(x):\n    return deeper.twice(x)\n",
        "demo/deeper.py": "def twice(x):\n    return 2 * x\n",
        "demo/unrelated.py": "VALUE = 1\n",
    })
    digest = steps.code_digest("demo.step", packages=("demo",))
    _write(tmp_path, {"demo/unrelated.py": "VALUE = 2\n"})
    assert steps.code_digest("demo.step", packages=("demo",)) == digest, "a module the step never imports"
    _write(tmp_path, {"demo/deeper.py": "def twice(x):\n    return x + x\n"})  # two imports away
    assert steps.code_digest("demo.step", packages=("demo",)) != digest


def _copy_of_repo(destination: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    for name in listed:
        source = REPO / name
        if source.is_file() and not (name.startswith("data/") and source.stat().st_size > 1e6):  # datasets: by env
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def _studyflow(cwd: Path, *argv: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studyflow.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_change_inside_a_helper_the_task_calls_retrains(tmp_path, mlflow_client, studyflow_home):
    """The same command from two checkouts: identical code reuses, a one-line change in a helper
    function of tasks/training.py (not the task itself) retrains."""
    checkout = _copy_of_repo(tmp_path / "checkout")
    env = {**os.environ, "PYTHONPATH": str(checkout), "STUDYFLOW_DATA_DIR": str(REPO / "data"),
           "PREFECT_HOME": str(tmp_path / "prefect")}
    where = subprocess.run([sys.executable, "-c", "import tasks.training as t; print(t.__file__)"], cwd=checkout,
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(checkout)), "the subprocess must run the copied code"
    command = ["run", "mlp", "--set", 'architectures={"MLP-a": [16]}',
               *[f"--set={name}={value}" for name, value in TINY.items()]]

    for attempt in range(2):
        result = _studyflow(checkout, *command, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
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
    assert [run.info.run_name for run in retrained] == ["MLP-a"] and retrained[0].info.status == "FINISHED"


# ------------------------------------------------------------------- kill -9 mid-CNN, resume

def _wait_for_epoch_of(client, name: str, process: subprocess.Popen, timeout_s: float = 300):
    """The run id of architecture `name` once it has logged an epoch and is still running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the study ended before it could be killed: " + process.stdout.read()[-2000:]
        try:
            running = [run for run in runs_of(client, "cnn", "attributes.status = 'RUNNING'")
                       if run.info.run_name == name]
        except Exception:  # the subprocess is still creating the store
            running = []
        if running and client.get_metric_history(running[0].info.run_id, "val_accuracy"):
            return running[0].info.run_id
        time.sleep(0.3)
    raise AssertionError(f"{name} never logged an epoch")


def _prefect_flow_runs(prefect_home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(prefect_home / "prefect.db") as database:
        rows = database.execute("select f.name, r.state_type from flow_run r join flow f on f.id = r.flow_id "
                                "order by r.created").fetchall()
    return [(name, state) for name, state in rows]


@pytest.mark.slow
def test_kill_9_of_the_study_mid_cnn_then_the_same_command_retrains_only_the_interrupted_model(tmp_path,
                                                                                             mlflow_client):
    prefect_home = tmp_path / "prefect"
    env = {**os.environ, "PREFECT_HOME": str(prefect_home), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "studyflow.cli", "run", "study", "--set", 'parts=["pca", "cnn"]',
               "--set", "report=false"]
    study = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    try:
        killed_run_id = _wait_for_epoch_of(mlflow_client, "CNN-2", study)
        study.send_signal(signal.SIGKILL)  # the study process only, as `kill -9 <pid>` would
        study.wait(timeout=30)
    finally:
        try:
            os.killpg(study.pid, signal.SIGKILL)  # then whatever it had started (Prefect's local server)
        except ProcessLookupError:
            pass
    first_parent = _parents(mlflow_client, "cnn")[0]
    assert mlflow_client.get_run(killed_run_id).info.status == "RUNNING"  # what kill -9 leaves behind

    rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "RUNNING -> KILLED" in rerun.stdout and "reused finished run" in rerun.stdout

    # MLflow: nothing RUNNING; CNN-1 trained once, CNN-2 killed then trained again, the rest trained.
    assert runs_of(mlflow_client, "cnn", "attributes.status = 'RUNNING'") == []
    by_name: dict[str, list] = {}
    for run in runs_of(mlflow_client, "cnn"):
        by_name.setdefault(run.info.run_name, []).append(run)
    assert [run.info.status for run in by_name["CNN-1"]] == ["FINISHED"]
    assert sorted(run.info.status for run in by_name["CNN-2"]) == ["FINISHED", "KILLED"]
    killed = mlflow_client.get_run(killed_run_id)
    assert killed.info.status == "KILLED" and "no longer exists" in killed.data.tags["studyflow.end_reason"]
    for name in ("CNN-3", "CNN-4", "CNN-5"):
        assert [run.info.status for run in by_name[name]] == ["FINISHED"], name
    assert mlflow_client.get_run(first_parent.info.run_id).info.status == "KILLED"
    final = _parents(mlflow_client, "cnn")[-1]
    assert final.info.status == "FINISHED"
    assert final.data.tags[tracking.REUSED_RUNS_TAG] == by_name["CNN-1"][0].info.run_id
    table = download(mlflow_client, final.info.run_id, "tables/cnn_architectures.csv").read_text().splitlines()
    assert sorted(line.split(",")[0] for line in table[1:]) == [f"CNN-{index}" for index in range(1, 6)]
    # The PCA part had finished: both its flow runs FINISHED, the second from cached steps.
    assert [run.info.status for run in _parents(mlflow_client, "pca")] == ["FINISHED", "FINISHED"]
    # Registry: the champion is one of the final runs, which are all FINISHED.
    champion = mlflow_client.get_model_version_by_alias("mnist-cnn", "champion")
    assert mlflow_client.get_run(champion.run_id).info.status == "FINISHED"
    # Prefect (local mode keeps its database under PREFECT_HOME): the killed study and its cnn
    # subflow were marked Crashed by the rerun's reconciliation; the rerun completed.
    flow_runs = _prefect_flow_runs(prefect_home)
    assert [state for name, state in flow_runs if name == "study"] == ["CRASHED", "COMPLETED"]
    assert [state for name, state in flow_runs if name == "cnn"] == ["CRASHED", "COMPLETED"]
    assert [state for name, state in flow_runs if name == "pca"] == ["COMPLETED", "COMPLETED"]

def test_a_model_input_is_keyed_by_its_weights():
    """The deep-dream step takes the inspected model: a retrained model must not reuse old dreams."""
    import keras
    import numpy as np

    from models.architectures import build_cnn

    keras.utils.set_random_seed(0)
    model = build_cnn([4], name="keyed")
    key = steps.fingerprint(model)
    twin = build_cnn([4], name="keyed")
    twin.set_weights(model.get_weights())
    assert steps.fingerprint(twin) == key, "the same architecture and weights, built again"
    weights = model.get_weights()
    weights[0] = weights[0] + np.float32(1e-3)
    model.set_weights(weights)
    assert steps.fingerprint(model) != key
