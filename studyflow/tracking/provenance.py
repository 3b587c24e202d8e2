"""Where a run came from: the code's git commit, the package versions, the Prefect run it belongs to."""

from __future__ import annotations

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
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip() != ""
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
