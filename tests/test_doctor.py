"""Reconciliation: a run left RUNNING by a SIGKILLed process is closed as KILLED, live runs are not.
The doctor's checks, with the free disk space it reads set by the test (not the host's)."""

import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
from mlflow.entities import ViewType

from studyflow import paths, tracking
from studyflow.entrypoints import doctor
from studyflow.entrypoints.doctor import close_orphaned_runs, run_doctor
from studyflow.tracking.names import Tag

DiskUsage = namedtuple("DiskUsage", "total used free")  # the shape of shutil.disk_usage's answer

KILLED_MID_RUN = """
import os, signal
from studyflow import tracking
client = tracking.connect()
with tracking.tracked_run(client, "unit", "doomed", profile="quick", seed=0, dataset_digest="d") as run:
    run.log_metrics({"train_loss": 1.0}, step=1)
    print(run.run_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_run_of_a_killed_process_is_closed_killed_and_a_live_one_is_kept(mlflow_client, studyflow_home):
    result = subprocess.run(
        [sys.executable, "-c", KILLED_MID_RUN],
        capture_output=True,
        text=True,
        env={**os.environ, "STUDYFLOW_HOME": str(studyflow_home)},
        timeout=120,
    )
    assert result.returncode == -9
    orphan_id = result.stdout.split()[0]
    assert mlflow_client.get_run(orphan_id).info.status == "RUNNING"
    with tracking.tracked_run(mlflow_client, "unit", "alive", profile="quick", seed=0, dataset_digest="d") as live:
        fixed = close_orphaned_runs(mlflow_client)
        assert mlflow_client.get_run(live.run_id).info.status == "RUNNING"
    assert len(fixed) == 1 and orphan_id in fixed[0]
    orphan = mlflow_client.get_run(orphan_id)
    assert orphan.info.status == "KILLED"
    assert "no longer exists" in orphan.data.tags[Tag.END_REASON]
    assert mlflow_client.get_metric_history(orphan_id, "train_loss")[0].value == 1.0  # nothing recorded is lost
    assert close_orphaned_runs(mlflow_client) == []


def _free_disk_space(monkeypatch, free_gb: float) -> list[Path]:
    """The doctor reads `free_gb` GB free wherever it looks; returns the paths it asked about."""
    asked = []

    def disk_usage(path):
        asked.append(Path(path))
        total, free = 500 * 10**9, int(free_gb * 10**9)
        return DiskUsage(total, total - free, free)

    monkeypatch.setattr(doctor.shutil, "disk_usage", disk_usage)
    return asked


@pytest.mark.parametrize(
    "free_gb, enough", [(50.0, True), (doctor.MIN_FREE_DISK_GB, True), (doctor.MIN_FREE_DISK_GB / 4, False)]
)
def test_doctor_reports_every_check_and_low_disk_space(mlflow_client, monkeypatch, free_gb, enough):
    asked = _free_disk_space(monkeypatch, free_gb)
    report = run_doctor()
    names = [name for name, _, _ in report.checks]
    assert names[:2] == ["tracking store", "Prefect API"] and "dataset mnist" in names and "disk space" in names
    assert asked == [paths.project_root()], "the doctor checks the disk studyflow writes to"
    checks = {name: (ok, detail) for name, ok, detail in report.checks}
    ok, detail = checks.pop("disk space")
    assert ok is enough and f"{free_gb:.1f} GB free" in detail, detail
    assert all(ok for ok, _ in checks.values()), checks  # the rest is healthy here
    assert report.healthy is enough


def test_doctor_leaves_no_run_behind(mlflow_client):
    run_doctor()
    run_doctor()
    experiment = mlflow_client.get_experiment_by_name("studyflow-doctor")
    runs = mlflow_client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
    assert runs and all(run.info.status == "FINISHED" and run.info.lifecycle_stage == "deleted" for run in runs)
