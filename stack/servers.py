"""The stack's servers, each a process it records (stack.bookkeeping): the MLflow server over the
PostgreSQL store, the Prefect server over its PostgreSQL database and the deployments registered on
it, the Dask scheduler and workers the flow runs send trainings to, optuna-dashboard over the Optuna
database, and the scoring server of the registry's champion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stack.bookkeeping import port_free, running, spawn, stop, tail, wait_answering
from stack.layout import (
    COMMAND,
    HOST,
    REPO_ROOT,
    VENV_BIN,
    WORK_POOL,
    StackError,
    base_env,
    database_url,
    logs_dir,
    optuna_storage,
    pids_dir,
    serve_port,
    stack_dir,
)


def start_mlflow(settings: dict) -> subprocess.Popen:
    artifacts = stack_dir() / "mlflow-artifacts"
    artifacts.mkdir(exist_ok=True)
    env = base_env(settings)
    env.update(
        {
            # The store's address holds the password: give it by environment, not on the command line.
            "MLFLOW_BACKEND_STORE_URI": database_url("psycopg", "mlflow", settings),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # far fewer processes and far less memory
        }
    )
    return spawn(
        "mlflow",
        [
            str(VENV_BIN / "mlflow"),
            "server",
            "--host",
            HOST,
            "--port",
            str(settings["ports"]["mlflow"]),
            "--workers",
            "1",
            "--serve-artifacts",
            "--artifacts-destination",
            str(artifacts),
        ],
        env,
    )


def start_prefect_server(settings: dict) -> subprocess.Popen:
    env = base_env(settings)
    env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url("asyncpg", "prefect", settings)
    return spawn(
        "prefect-server",
        [
            str(VENV_BIN / "prefect"),
            "server",
            "start",
            "--host",
            HOST,
            "--port",
            str(settings["ports"]["prefect"]),
            "--analytics-off",
        ],
        env,
    )


def register_deployments(settings: dict) -> None:
    """The documented registration command (stack/register.sh), against this stack."""
    env = base_env(settings)
    env["PREFECT"] = str(VENV_BIN / "prefect")
    with open(logs_dir() / "register.log", "ab") as log:
        result = subprocess.run(
            ["bash", str(REPO_ROOT / "stack" / "register.sh")],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        raise StackError(f"registering the deployments failed; log {logs_dir() / 'register.log'}:\n{tail('register')}")
    print(f"deployments registered on work pool {WORK_POOL!r}")


def start_dask(settings: dict) -> None:
    """A Dask scheduler on 127.0.0.1 and STUDYFLOW_DASK_WORKERS worker processes (one training at a
    time each, cores / workers TensorFlow threads, the training modules preloaded), logging to the
    stack's MLflow and Prefect servers. The flow runs of the stack's workers send their trainings there
    (STUDYFLOW_DASK_ADDRESS); this machine's step-results folder is theirs too."""
    if "dask_address" not in settings:  # a stack.json written before Dask was part of the stack
        return
    ports, workers = settings["ports"], settings["dask_workers"]
    if not running("dask-scheduler"):
        if not port_free(ports["dask"]):
            print(f"dask not started: port {ports['dask']} is in use (STUDYFLOW_DASK_PORT)")
            return
        scheduler = spawn(
            "dask-scheduler",
            [
                str(VENV_BIN / "dask"),
                "scheduler",
                "--host",
                HOST,
                "--port",
                str(ports["dask"]),
                "--dashboard-address",
                f"{HOST}:{ports['dask_dashboard']}",
            ],
            base_env(settings),
        )
        wait_answering({"dask-scheduler": (f"http://{HOST}:{ports['dask_dashboard']}/health", scheduler)})
    if workers > 0 and not running("dask-workers"):
        from studyflow.cluster import WORKER_PRELOAD, worker_environment

        env = {**base_env(settings), "MLFLOW_TRACKING_URI": settings["mlflow_url"], **worker_environment(workers)}
        spawn(
            "dask-workers",
            [
                str(VENV_BIN / "dask"),
                "worker",
                settings["dask_address"],
                "--host",
                HOST,
                "--nworkers",
                str(workers),
                "--nthreads",
                "1",
                "--preload",
                WORKER_PRELOAD,
                "--dashboard-address",
                f"{HOST}:0",
            ],
            env,
        )
    print(
        f"dask        {settings['dask_address']} ({workers} workers; dashboard "
        f"http://{HOST}:{ports['dask_dashboard']}/status)"
    )


def start_dashboard(settings: dict) -> None:
    """optuna-dashboard over the stack's Optuna database (the sweeps' studies when the shell points at
    the stack: `env` exports STUDYFLOW_OPTUNA_STORAGE)."""
    port = settings["ports"].get("dashboard", 8080)  # a stack.json written before the dashboard has none
    if not port_free(port):
        print(f"optuna-dashboard not started: port {port} is in use (STUDYFLOW_DASHBOARD_PORT)")
        return
    import optuna

    # optuna-dashboard reads an existing schema only (it never creates tables): Optuna creates it.
    optuna.storages.RDBStorage(optuna_storage(settings)).engine.dispose()
    process = spawn(
        "optuna-dashboard",
        [str(VENV_BIN / "optuna-dashboard"), optuna_storage(settings), "--host", HOST, "--port", str(port)],
        base_env(settings),
    )
    wait_answering({"optuna-dashboard": (f"http://{HOST}:{port}/api/studies", process)})
    print(f"optuna      http://{HOST}:{port} (optuna-dashboard over the PostgreSQL database optuna)")


def start_serve(settings: dict) -> bool:
    """`studyflow serve` for the stack's champion; False (and why) if it does not come up, e.g. no champion yet."""
    env = base_env(settings)
    env["MLFLOW_TRACKING_URI"] = settings["mlflow_url"]
    port = serve_port(settings)
    # The checkout's code, as the worker runs it; `studyflow serve` execs MLflow's scoring server.
    process = spawn("serve", [sys.executable, "-m", "studyflow.entrypoints.cli", "serve", "--port", str(port)], env)
    try:
        wait_answering({"serve": (f"http://{HOST}:{port}/ping", process)})
    except StackError:
        if process.poll() is None:
            stop("serve")
        else:  # it stopped by itself: said why in one line (e.g. no champion yet)
            (pids_dir() / "serve.json").unlink(missing_ok=True)
        reason = next((line for line in reversed(tail("serve").splitlines()) if "error" in line), tail("serve", 3))
        print(
            f"serve       not started: {reason.strip()}\n            (once a champion exists: "
            f"{Path(sys.executable)} {COMMAND} serve start; log {logs_dir() / 'serve.log'})"
        )
        return False
    print(f"serve       http://{HOST}:{port}/invocations (the champion of {settings['mlflow_url']})")
    return True
