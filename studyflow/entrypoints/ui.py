"""`studyflow ui`: the MLflow UI and a Prefect UI over the local stores of finished commands.

A command's temporary Prefect server ends with the command, but its database stays in the Prefect
home (`.prefect/` beside `mlruns/`): a Prefect server started on that home, with no services (it only
shows, it schedules nothing), shows those flow runs, their logs and their artifacts. The links
between the two UIs were written with these addresses: the Prefect artifacts link to MLflow at
`ui_base()` (port 5000 unless STUDYFLOW_MLFLOW_UI_URL says otherwise), and each MLflow run names its
flow run's page at `local_prefect_ui_base()` (port 4200 unless STUDYFLOW_PREFECT_UI_URL says
otherwise); so the UIs are served on those ports by default.
A store or Prefect server that is a lasting server already is not started again: its address is printed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from studyflow import paths, tracking
from studyflow.foreground import LocalServer, run_in_foreground
from studyflow.tracking.store import local_prefect_ui_base

VENV_BIN = Path(sys.executable).parent


def default_mlflow_port() -> int:
    """The port the MLflow links in Prefect's artifacts point at."""
    return urlsplit(tracking.ui_base()).port or 80


def default_prefect_port() -> int:
    """The port the flow-run links of the MLflow runs point at."""
    return urlsplit(local_prefect_ui_base()).port or 80


def mlflow_ui(port: int) -> LocalServer:
    argv = [*tracking.ui_argv(port), "--workers", "1"]
    # No job-execution consumers: a UI over finished runs has no jobs to run.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    training_runs = f"http://127.0.0.1:{port}/#/experiments{tracking.TRAINING_VIEW}"
    return LocalServer(
        "the MLflow UI",
        argv,
        f"http://127.0.0.1:{port}/health",
        training_runs,
        env,
        remedy=f"is port {port} free? (--mlflow-port)",
        log=paths.mlruns_dir() / "ui.log",
    )


def prefect_ui(port: int) -> LocalServer:
    argv = [
        str(VENV_BIN / "prefect"),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-services",
        "--analytics-off",
    ]
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env["PREFECT_UI_API_URL"] = f"http://127.0.0.1:{port}/api"
    home = Path(os.environ.get("PREFECT_HOME") or paths.prefect_home())
    return LocalServer(
        "the Prefect UI",
        argv,
        f"http://127.0.0.1:{port}/api/health",
        f"http://127.0.0.1:{port}/runs (the flow runs of {home})",
        env,
        remedy=f"is port {port} free? (--prefect-port)",
        log=home / "ui.log",
    )


def run_ui(mlflow_port: int | None, prefect_port: int | None) -> int:
    servers = []
    if tracking.uses_tracking_server():
        print(f"[studyflow] the MLflow UI is the tracking server's: {tracking.ui_base()}")
    else:
        servers.append(mlflow_ui(mlflow_port or default_mlflow_port()))
    if os.environ.get("PREFECT_API_URL"):
        print(
            f"[studyflow] the Prefect UI is the Prefect server's: {os.environ['PREFECT_API_URL'].removesuffix('/api')}"
        )
    else:
        servers.append(prefect_ui(prefect_port or default_prefect_port()))
    return run_in_foreground(servers) if servers else 0
