"""A sweep on a Dask scheduler of its own (dask_address), as on a cluster of several machines: its trial
loops are plain Dask tasks that write to the MLflow server and the PostgreSQL study only, so it runs
without a Prefect server every worker reaches, which a part's steps need (tests/test_fanout_settings.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from commands import REPO, run_studyflow
from conftest import SMALL_MLP, free_port, prefect_home, sweep_runs, sweep_study
from holding import MlflowServer
from optuna.trial import TrialState

from studyflow.tracking.names import Tag

DASK = str(Path(sys.executable).parent / "dask")


@pytest.mark.integration  # an MLflow server, PostgreSQL, a Dask scheduler and worker
@pytest.mark.slow
def test_a_sweep_on_a_given_scheduler_needs_no_prefect_server_its_workers_reach(tmp_path, postgres_url, tiny):
    from distributed import Client
    from mlflow import MlflowClient

    server = MlflowServer(tmp_path)
    server.start(wait=False)  # boots while the scheduler and the worker start
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {name: value for name, value in os.environ.items() if name != "PREFECT_API_URL"}
    env.update(
        MLFLOW_TRACKING_URI=server.url,
        PREFECT_HOME=str(prefect_home(tmp_path / "prefect")),  # the command's own temporary server only
        STUDYFLOW_HOME=str(tmp_path / "home"),
        PYTHONPATH=str(REPO),  # the worker runs this checkout's code, as the command does
    )
    started: list[subprocess.Popen] = []

    def start(name: str, argv: list[str]) -> None:
        with open(tmp_path / f"{name}.log", "w") as log:
            started.append(
                subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )

    try:
        port = address.rsplit(":", 1)[1]
        start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"])
        worker = ["--nthreads", "1", "--no-dashboard", "--preload", "studyflow.entrypoints.dask_worker"]
        start("worker", [DASK, "worker", address, *worker])
        server.wait_until_up()
        with Client(address, timeout=60, set_as_default=False) as scheduler:
            scheduler.wait_for_workers(1, timeout=180)  # its preload imports TensorFlow first
        name = "remote-scheduler"
        result = run_studyflow(
            "sweep",
            "mlp",
            "--trials",
            "2",
            "--storage",
            postgres_url,
            "--set",
            f"study_name={name}",
            "--set",
            f"dask_address={address}",
            "--set",
            f"search_space={json.dumps(SMALL_MLP)}",
            *[f"--set={key}={value}" for key, value in tiny.items()],
            env=env,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert f"trials on the Dask cluster {address}" in result.stdout + result.stderr
        study = sweep_study(name, postgres_url)
        assert [trial.state for trial in study.trials] == [TrialState.COMPLETE] * 2
        (parent,), children = sweep_runs(MlflowClient(server.url), "mlp")
        assert parent.info.status == "FINISHED" and len(children) == 2
        assert all(run.info.status == "FINISHED" for run in children)
        trial_processes = {run.data.tags[Tag.PROCESS] for run in children}
        assert parent.data.tags[Tag.PROCESS] not in trial_processes  # trained in the Dask worker, not the command
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        server.stop()
