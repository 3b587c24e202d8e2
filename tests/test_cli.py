"""The real command line, as a user types it (slow: each call starts Python, Prefect and MLflow)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

STUDYFLOW = [sys.executable, "-m", "studyflow.cli"]


def _run(args, home: Path):
    env = {**os.environ, "STUDYFLOW_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    return subprocess.run(STUDYFLOW + args, capture_output=True, text=True, env=env, timeout=600)


def test_help_lists_the_parts(studyflow_home):
    result = _run(["run", "--help"], studyflow_home)
    assert result.returncode == 0
    for part in ("pca", "perceptron", "study"):
        assert part in result.stdout


def test_bad_parameter_is_rejected_with_its_name(studyflow_home):
    result = _run(["run", "perceptron", "--set", "pairs=[[1,11]]"], studyflow_home)
    assert result.returncode == 2
    assert "parameter 'pairs" in result.stderr
    assert not (studyflow_home / "mlruns" / "mlflow.db").exists()


def test_unreachable_tracking_server_is_reported_before_work(studyflow_home):
    env_uri = "http://127.0.0.1:9"
    env = {**os.environ, "STUDYFLOW_HOME": str(studyflow_home), "MLFLOW_TRACKING_URI": env_uri}
    result = subprocess.run(STUDYFLOW + ["run", "pca"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1 and env_uri in result.stderr
    # Said before anything starts: no Prefect server was booted (Prefect logs its stop at exit).
    assert "temporary server" not in result.stdout + result.stderr


@pytest.mark.slow
def test_run_perceptron_prints_ids_and_ui_command(studyflow_home):
    result = _run(["run", "perceptron", "--set", "pairs=[[1,0]]", "--set", "max_epochs=5"], studyflow_home)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "experiment studyflow-perceptron" in result.stdout
    # Exactly one temporary Prefect server was started and stopped: the early boot and the flow
    # did not start two, and none was left running.
    assert (result.stdout + result.stderr).count("Stopping temporary server") == 1
    assert "mlflow ui --backend-store-uri sqlite:///" in result.stdout
    from studyflow import tracking

    (parent,) = [r for r in tracking.find_runs(tracking.connect(), "perceptron") if r.info.run_name == "perceptron-quick"]
    assert parent.info.run_id in result.stdout and parent.info.status == "FINISHED"
