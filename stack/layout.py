"""The stack's folder and settings: where each part lives under STUDYFLOW_STACK_DIR, which ports and
addresses the stack uses (asked for by environment on `up`, saved in stack.json for the other
commands), the PostgreSQL password and the database URLs built from it, and the environment every
process of the stack starts with."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMAND = Path(__file__).with_name("native.py")  # the stack's command, as its messages name it
VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's bin/, where mlflow and prefect are
HOST = "127.0.0.1"
PG_USER = "studyflow"
DATABASES = ("mlflow", "prefect", "optuna")
WORK_POOL = "studyflow"


class StackError(RuntimeError):
    """The stack cannot start or stop; the message says which part and where its log is."""


def stack_dir() -> Path:
    return Path(os.environ.get("STUDYFLOW_STACK_DIR") or REPO_ROOT / ".stack").resolve()


def logs_dir() -> Path:
    return stack_dir() / "logs"


def pids_dir() -> Path:
    return stack_dir() / "pids"


def pg_dir() -> Path:
    return stack_dir() / "postgres"


def pg_data_dir() -> Path:
    return pg_dir() / "data"


def settings_file() -> Path:
    return stack_dir() / "stack.json"


def requested_settings() -> dict:
    ports = {
        "postgres": int(os.environ.get("STUDYFLOW_PG_PORT", "5433")),
        "mlflow": int(os.environ.get("STUDYFLOW_MLFLOW_PORT", "5000")),
        "prefect": int(os.environ.get("STUDYFLOW_PREFECT_PORT", "4200")),
        "serve": int(os.environ.get("STUDYFLOW_SERVE_PORT", "5050")),
        "dashboard": int(os.environ.get("STUDYFLOW_DASHBOARD_PORT", "8080")),
        "dask": int(os.environ.get("STUDYFLOW_DASK_PORT", "8786")),
        "dask_dashboard": int(os.environ.get("STUDYFLOW_DASK_DASHBOARD_PORT", "8787")),
    }
    return {
        "ports": ports,
        "mlflow_url": f"http://{HOST}:{ports['mlflow']}",
        "prefect_ui_url": f"http://{HOST}:{ports['prefect']}",
        "prefect_api_url": f"http://{HOST}:{ports['prefect']}/api",
        "dask_address": f"tcp://{HOST}:{ports['dask']}",
        "dask_workers": int(os.environ.get("STUDYFLOW_DASK_WORKERS", "2")),
    }


def saved_settings() -> dict:
    if not settings_file().exists():
        raise StackError(f"no stack under {stack_dir()}: run `stack/native.py up` first")
    return json.loads(settings_file().read_text())


def serve_port(settings: dict) -> int:
    return settings["ports"].get("serve", 5050)  # a stack.json written before serving has no entry


def pg_password() -> str:
    """The cluster's password: made once, kept beside it (never in git, never on a command line)."""
    path = pg_dir() / "password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(os.environ.get("STUDYFLOW_PG_PASSWORD") or secrets.token_urlsafe(24))
    return path.read_text().strip()


def database_url(driver: str, database: str, settings: dict) -> str:
    return f"postgresql+{driver}://{PG_USER}:{pg_password()}@{HOST}:{settings['ports']['postgres']}/{database}"


def optuna_storage(settings: dict) -> str:
    return database_url("psycopg", "optuna", settings)


def base_env(settings: dict) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "PREFECT_HOME": str(stack_dir() / "prefect-home"),
            "PREFECT_API_URL": settings["prefect_api_url"],
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
        }
    )
    return env
