"""Fanning a part's trainings out on a real Dask cluster (studyflow.fanout) through the command line:
one local cluster on 127.0.0.1 for all the parts of a study, a worker killed during a training, and the
scheduler gone mid-part. (The parameters, what is refused before any work and `studyflow doctor`'s
check of the scheduler: test_fanout_settings.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from commands import start_studyflow
from conftest import TINY, free_port, prefect_home, runs_of
from holding import REPO, cli_statement, kill_9, tail, wait_until_epoch_1_logged

from studyflow.tracking.names import Tag

THREE_MLPS = '{"MLP-a": [16], "MLP-b": [16], "MLP-c": [32]}'


def _argv(tiny, *extra: str) -> list[str]:
    return [
        "run",
        "mlp",
        "--set",
        f"architectures={THREE_MLPS}",
        *[f"--set={name}={value}" for name, value in dict(tiny, epochs=2).items()],
        *extra,
    ]


def _env(tmp_path: Path, **extra: str) -> dict:
    home = prefect_home(tmp_path / "prefect")
    return {**os.environ, "PREFECT_HOME": str(home), "PYTHONUNBUFFERED": "1", **extra}


def _children(client):
    return [run for run in runs_of(client, "mlp") if run.data.tags.get(Tag.RUN_LEVEL) == "child"]


# Two trainings of the same model with the same seed differ only by round-off: one thread against two,
# in one process, left these tiny models' final losses equal to the digit. A different seed moves them
# by 0.2-1.2 % (train) and 3-4 % (validation): both losses are compared, within 1 %.
ROUND_OFF = 0.01


def _losses(runs) -> dict[str, list[float]]:
    """Each architecture's final training and validation loss."""
    return {
        run.data.tags[Tag.ARCHITECTURE]: [run.data.metrics["train_loss"], run.data.metrics["val_loss"]] for run in runs
    }


@pytest.mark.slow
def test_a_study_with_workers_starts_one_cluster_for_all_its_parts(tmp_path, mlflow_client):
    argv = ["run", "study", "--set", 'parts=["perceptron", "mlp"]', "--set", "workers=2", "--set", "report=false"]
    tiny_data = {"train_size": TINY["train_size"], "test_size": TINY["test_size"]}  # the quick profile's models
    study = subprocess.run(
        [sys.executable, "-c", cli_statement(argv, {"perceptron": tiny_data, "mlp": tiny_data})],
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert study.returncode == 0, study.stderr[-3000:]
    addresses = {
        line.split("cluster ")[1].split()[0]
        for line in study.stdout.splitlines()
        if "trainings on the Dask cluster" in line
    }
    assert len(addresses) == 1, study.stdout[-3000:]  # both parts on the one cluster
    workers = {
        part: {
            run.data.tags[Tag.PROCESS]
            for run in runs_of(mlflow_client, part)
            if run.data.tags.get(Tag.RUN_LEVEL) == "child"
        }
        for part in ("perceptron", "mlp")
    }
    parents = {
        run.data.tags[Tag.PROCESS]
        for part in workers
        for run in runs_of(mlflow_client, part)
        if run.data.tags.get(Tag.RUN_LEVEL) == "parent"
    }
    # The same two worker processes trained both parts' models; none of them is the study's process.
    assert workers["perceptron"] | workers["mlp"] <= workers["mlp"] and len(workers["mlp"]) == 2, workers
    assert not (workers["mlp"] & parents)
    assert runs_of(mlflow_client, "mlp", "attributes.status = 'RUNNING'") == []


@pytest.mark.integration
@pytest.mark.faults
@pytest.mark.slow
def test_two_workers_train_as_one_process_would_and_a_worker_killed_mid_training_hands_it_to_another(
    tmp_path, prefect_server, mlflow_client, tiny
):
    """One fanned command (workers=2) proves both: the trainings run in the Dask workers, not in the
    command, and give what one process gives; and a worker killed during a training (MLP-b, held after
    its epoch 1) hands it to another worker, so that each model is trained once. (That both workers of a
    cluster train is test_a_study_with_workers_starts_one_cluster_for_all_its_parts'.)"""
    log_path = tmp_path / "fanned.log"
    preload = Path(__file__).with_name("dask_hold.py")
    env = _env(
        tmp_path,
        DASK_DISTRIBUTED__WORKER__PRELOAD=f'["{preload}"]',
        STUDYFLOW_TEST_HOLD_MODEL="mlp_b",
        STUDYFLOW_TEST_HOLD_ONCE=str(tmp_path / "held-once"),
    )
    mlflow_client.search_experiments()
    with open(log_path, "w") as log:
        command = start_studyflow(*_argv(tiny, "--set", "workers=2"), env=env, log=log)
    try:

        def mlp_b():
            return [run for run in _children(mlflow_client) if run.data.tags.get(Tag.ARCHITECTURE) == "MLP-b"]

        held_run_id = wait_until_epoch_1_logged(mlflow_client, mlp_b, "MLP-b", command, log_path)
        owner = mlflow_client.get_run(held_run_id).data.tags[Tag.PROCESS]
        worker_pid = int(owner.split(":")[1])
        assert worker_pid != command.pid
        os.kill(worker_pid, signal.SIGKILL)  # the worker process, mid-training
        code = command.wait(timeout=300)
    except BaseException:
        kill_9(command)
        raise
    assert code == 0, tail(log_path)
    assert "trainings on the Dask cluster tcp://127.0.0.1:" in log_path.read_text()
    children = _children(mlflow_client)
    finished = [run for run in children if run.info.status == "FINISHED"]
    assert sorted(run.data.tags[Tag.ARCHITECTURE] for run in finished) == ["MLP-a", "MLP-b", "MLP-c"]
    killed = mlflow_client.get_run(held_run_id)
    assert killed.info.status == "KILLED" and "Dask worker died" in killed.data.tags[Tag.END_REASON]
    (again,) = [run for run in finished if run.data.tags[Tag.ARCHITECTURE] == "MLP-b"]
    assert again.data.tags[Tag.PROCESS] != owner  # trained again by another worker process
    assert len(children) == 4  # the three models, and the one killed run
    assert runs_of(mlflow_client, "mlp", "attributes.status = 'RUNNING'") == []
    (parent,) = [run for run in runs_of(mlflow_client, "mlp") if run.data.tags.get(Tag.RUN_LEVEL) == "parent"]
    assert parent.info.status == "FINISHED"
    processes = {run.data.tags[Tag.PROCESS] for run in children}
    assert parent.data.tags[Tag.PROCESS] not in processes  # every training ran in a worker, none in the command
    fanned_loss = _losses(finished)
    # MLP-a and MLP-b are the same network with the same seed: equal up to round-off, whichever worker
    # trained them. (This check found that one training in about a dozen, in a worker, started from other
    # weights: Keras drew the initial weights' seeds from Python's shared `random`, which the worker's
    # event loop draws from too; tasks.training.fresh_model now builds with a generator of its own.)
    assert fanned_loss["MLP-a"] == pytest.approx(fanned_loss["MLP-b"], rel=ROUND_OFF)

    from flows.mlp import mlp_flow

    # The same models in one process, this one (a command's process differs from it only by its start-up).
    mlp_flow(profile="quick", architectures=json.loads(THREE_MLPS), force=True, **dict(tiny, epochs=2))
    again = [run for run in _children(mlflow_client) if run.data.tags[Tag.PROCESS] not in processes]
    assert len({run.data.tags[Tag.PROCESS] for run in again}) == 1 and len(again) == 3
    sequential_loss = _losses(again)
    print(f"final train and validation losses, 2 workers: {fanned_loss}; one process: {sequential_loss}")
    # One process computes with 2 TensorFlow threads, a worker with 1: the sums are ordered differently,
    # and the round-off grows over the steps of training; close, not equal (a test accuracy of a model
    # this barely trained can move by several points on such a difference).
    for name, losses in sequential_loss.items():
        assert fanned_loss[name] == pytest.approx(losses, rel=ROUND_OFF), name


DASK = str(Path(sys.executable).parent / "dask")


@pytest.mark.integration
@pytest.mark.faults
@pytest.mark.slow
def test_the_scheduler_gone_mid_part_stops_it_in_one_line_naming_it_and_leaves_no_run_running(
    tmp_path, prefect_server, tiny
):
    """A scheduler (and a worker holding MLP-b after epoch 1) of our own, an MLflow server and the test
    Prefect server, as a dask_address needs them; the scheduler is killed mid-training."""
    from mlflow import MlflowClient
    from prefect.settings import PREFECT_API_URL
    from test_faults_servers import MlflowServer

    server = MlflowServer(tmp_path)
    server.start(wait=False)  # boots while the scheduler and the worker start
    address = f"tcp://127.0.0.1:{free_port()}"
    env = _env(
        tmp_path,
        MLFLOW_TRACKING_URI=server.url,
        PREFECT_API_URL=PREFECT_API_URL.value(),
        PYTHONPATH=str(REPO),  # the worker runs this checkout's code, as the command does
        STUDYFLOW_TEST_HOLD_MODEL="mlp_b",
        STUDYFLOW_TEST_HOLD_ONCE=str(tmp_path / "held-once"),
    )
    started: list[subprocess.Popen] = []

    def start(name: str, argv: list[str]) -> subprocess.Popen:
        with open(tmp_path / f"{name}.log", "w") as log:
            started.append(
                subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )
        return started[-1]

    try:
        port = address.rsplit(":", 1)[1]
        scheduler = start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"])
        hold = str(Path(__file__).with_name("dask_hold.py"))
        start(
            "worker",
            [
                DASK,
                "worker",
                address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--preload",
                "studyflow.entrypoints.dask_worker",
                "--preload",
                hold,
            ],
        )
        server.wait_until_up()
        client = MlflowClient(server.url)
        log_path, stderr_path = tmp_path / "command.log", tmp_path / "command.err"
        with open(log_path, "w") as log, open(stderr_path, "w") as errors:
            command = subprocess.Popen(
                [sys.executable, "-m", "studyflow.entrypoints.cli", *_argv(tiny, "--set", f"dask_address={address}")],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=errors,
                start_new_session=True,
            )
        started.append(command)

        def mlp_b():
            return [run for run in _children(client) if run.data.tags.get(Tag.ARCHITECTURE) == "MLP-b"]

        held_run_id = wait_until_epoch_1_logged(client, mlp_b, "MLP-b", command, log_path, timeout_s=120)
        os.killpg(scheduler.pid, signal.SIGKILL)  # the scheduler, mid-training
        code = command.wait(timeout=120)
        stderr = stderr_path.read_text()
        assert code != 0, tail(log_path)
        # The command's own word is one line, its last: above it are the logs of Prefect (the failed
        # flow run's exception, with its traceback, as for any flow that fails) and of Dask's client.
        said = [line for line in stderr.splitlines() if line.startswith("studyflow:")]
        assert len(said) == 1 and f"studyflow: error: the Dask scheduler {address} is gone" in said[0], stderr[-3000:]
        assert stderr.splitlines()[-1] == said[0], stderr[-3000:]
        assert runs_of(client, "mlp", "attributes.status = 'RUNNING'") == []  # nothing left RUNNING
        assert client.get_run(held_run_id).info.status == "KILLED"
        (parent,) = [run for run in runs_of(client, "mlp") if run.data.tags.get(Tag.RUN_LEVEL) == "parent"]
        assert parent.info.status in ("FAILED", "KILLED")
    finally:
        for process in reversed(started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        server.stop()
