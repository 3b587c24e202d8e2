"""Reconciliation: a run left RUNNING by a SIGKILLed process is closed as KILLED, live runs are not."""

import os
import subprocess
import sys

from studyflow import tracking
from studyflow.doctor import close_orphaned_runs, run_doctor

KILLED_MID_RUN = """
import os, signal
from studyflow import tracking
client = tracking.connect()
with tracking.tracked_run(client, "unit", "doomed", profile="quick", seed=0, dataset_digest="d") as run:
    run.log_metrics({"train_loss": 1.0}, step=1)
    print(run.run_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_run_of_a_killed_process_is_closed_killed_and_a_live_one_is_kept(mlflow_client, studyflow_home):
    result = subprocess.run([sys.executable, "-c", KILLED_MID_RUN], capture_output=True, text=True,
                            env={**os.environ, "STUDYFLOW_HOME": str(studyflow_home)}, timeout=120)
    assert result.returncode == -9
    orphan_id = result.stdout.split()[0]
    assert mlflow_client.get_run(orphan_id).info.status == "RUNNING"
    with tracking.tracked_run(mlflow_client, "unit", "alive", profile="quick", seed=0, dataset_digest="d") as live:
        fixed = close_orphaned_runs(mlflow_client)
        assert mlflow_client.get_run(live.run_id).info.status == "RUNNING"
    assert len(fixed) == 1 and orphan_id in fixed[0]
    orphan = mlflow_client.get_run(orphan_id)
    assert orphan.info.status == "KILLED"
    assert "no longer exists" in orphan.data.tags["studyflow.end_reason"]
    assert mlflow_client.get_metric_history(orphan_id, "train_loss")[0].value == 1.0  # nothing recorded is lost
    assert close_orphaned_runs(mlflow_client) == []


def test_doctor_reports_every_check(mlflow_client):
    report = run_doctor()
    names = [name for name, _, _ in report.checks]
    assert names[:2] == ["tracking store", "Prefect API"] and "dataset mnist" in names and "disk space" in names
    assert report.healthy
