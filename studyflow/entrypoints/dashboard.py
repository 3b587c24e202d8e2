"""`studyflow dashboard`: optuna-dashboard over the sweeps' Optuna storage, served on 127.0.0.1.

The sweeps' studies (trials, their values and parameters, intermediate values, importances) are in
an Optuna storage: SQLite `mlruns/optuna.db` by default, PostgreSQL in the stack. optuna-dashboard
is Optuna's own web UI for it; this runs the one installed in the project's environment, so no
environment has to be activated.
"""

from __future__ import annotations

import sys
from pathlib import Path

from studyflow import paths
from studyflow.errors import ConfigError
from studyflow.foreground import LocalServer, run_in_foreground

DEFAULT_PORT = 8080


def dashboard_command(storage: str | None, port: int) -> list[str]:
    """The optuna-dashboard command for `storage` (default: the sweeps' SQLite database)."""
    url = storage or paths.default_optuna_storage_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise ConfigError(
            f"no Optuna storage at {url} yet: run a sweep first (`studyflow sweep mlp --trials 6`), or give --storage"
        )
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port (1-65535)")
    executable = Path(sys.executable).parent / "optuna-dashboard"
    return [str(executable), url, "--host", "127.0.0.1", "--port", str(port)]


def run_dashboard(storage: str | None, port: int) -> int:
    """optuna-dashboard until Ctrl-C; its exit code."""
    command = dashboard_command(storage, port)
    address = f"http://127.0.0.1:{port}"
    print(f"[studyflow] optuna-dashboard over {command[1]}", flush=True)
    return run_in_foreground([LocalServer("optuna-dashboard", command, address, address)])
