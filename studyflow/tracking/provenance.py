"""Where a run came from: the code's git commit, the package versions, the Prefect run it belongs to."""

from __future__ import annotations

import getpass
import os
import subprocess
from functools import lru_cache
from importlib import metadata

from studyflow import paths

TRACKED_PACKAGES = ("studyflow", "tensorflow-cpu", "keras", "mlflow", "optuna", "prefect", "scikit-learn", "numpy")


@lru_cache(maxsize=1)
def code_version() -> tuple[str, bool]:
    """Git commit of the checkout and whether its tracked files differ from that commit."""
    root = paths.PACKAGE_ROOT
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            != ""
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, dirty


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {}
    for package in TRACKED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def prefect_ids() -> tuple[str, str]:
    """Ids of the Prefect flow run and task run we are inside, empty outside Prefect."""
    try:
        from prefect.runtime import flow_run, task_run

        return str(flow_run.id or ""), str(task_run.id or "")
    except Exception:  # Prefect absent or no run context: nothing to link
        return "", ""


def user() -> str:
    """Who ran it (MLflow's `mlflow.user`): the login name, else $USER, else "unknown"."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry for the uid (containers)
        return os.environ.get("USER", "unknown")


# Set in the environment of a local Dask cluster's workers when the flow reports to the command's
# temporary Prefect server: the workers have its address, but its pages end with the command.
TEMPORARY_PREFECT_SERVER_ENV = "STUDYFLOW_PREFECT_SERVER_IS_TEMPORARY"


def prefect_flow_run_url() -> str:
    """The Prefect UI page of the flow run we are inside: on the configured Prefect server
    (PREFECT_API_URL), else on the Prefect UI that `studyflow ui` serves over the local Prefect home
    once the command's temporary server is gone."""
    try:
        from prefect.runtime import flow_run
        from prefect.settings import PREFECT_API_URL
        from prefect.utilities.urls import url_for

        if not flow_run.id:
            return ""
        if not PREFECT_API_URL.value() or os.environ.get(TEMPORARY_PREFECT_SERVER_ENV):
            from studyflow.tracking.store import local_prefect_ui_base

            return f"{local_prefect_ui_base()}/runs/flow-run/{flow_run.id}"
        # url_for gives the UI's route (/runs/flow-run/<id>), as the flow's own "View at" log line
        # does; prefect.runtime's flow_run.ui_url builds /flow-runs/..., which the UI does not serve.
        return str(url_for("flow-run", obj_id=flow_run.id) or "")
    except Exception:  # Prefect absent or no run context
        return ""
