"""Every path the product uses, in one place.

The project root is the checkout that holds this package (an editable install, the normal way to
run studyflow); `STUDYFLOW_HOME` moves everything that is written (tracking store, caches,
reports) elsewhere, e.g. into a temporary folder in tests.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def project_root() -> Path:
    """Where studyflow writes: STUDYFLOW_HOME, else the checkout, else the working directory."""
    home = os.environ.get("STUDYFLOW_HOME")
    if home:
        return Path(home).resolve()
    if (PACKAGE_ROOT / "pyproject.toml").exists():
        return PACKAGE_ROOT
    return Path.cwd()


def data_dir() -> Path:
    """Folder of the datasets: STUDYFLOW_DATA_DIR, else the copies shipped in the repository."""
    override = os.environ.get("STUDYFLOW_DATA_DIR")
    return Path(override).resolve() if override else PACKAGE_ROOT / "data"


def data_cache_dir() -> Path:
    """Decoded arrays of verified datasets, so a second load skips gunzip and hashing."""
    override = os.environ.get("STUDYFLOW_CACHE_DIR")
    return Path(override).resolve() if override else project_root() / "data" / "cache"


def mlruns_dir() -> Path:
    return project_root() / "mlruns"


def default_tracking_uri() -> str:
    return "sqlite:///" + str(mlruns_dir() / "mlflow.db")


def default_optuna_storage_url() -> str:
    """The sweeps' Optuna database when no storage is given: STUDYFLOW_OPTUNA_STORAGE (the stacks set
    it to their PostgreSQL database), else SQLite beside the tracking store."""
    return os.environ.get("STUDYFLOW_OPTUNA_STORAGE") or "sqlite:///" + str(mlruns_dir() / "optuna.db")


def step_results_dir() -> Path:
    """Reusable steps' results and locks (studyflow.steps): STUDYFLOW_STEP_RESULTS, else beside the
    tracking store they refer to. A Dask cluster's workers must see it at the same path."""
    override = os.environ.get("STUDYFLOW_STEP_RESULTS")
    return Path(override).resolve() if override else mlruns_dir() / "step-results"


def unlogged_metrics_dir() -> Path:
    """Metrics a tracking store did not take (it was down), one JSON-lines file per MLflow run."""
    return mlruns_dir() / "unlogged"


def default_artifact_root() -> Path:
    return mlruns_dir() / "artifacts"


def prefect_home() -> Path:
    """Prefect's local-mode state (its temporary server's database), unless PREFECT_HOME is set."""
    return project_root() / ".prefect"


def reports_dir() -> Path:
    return project_root() / "reports"
