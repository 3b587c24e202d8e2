"""`studyflow ui` after a finished command: the MLflow UI shows its runs and a Prefect UI its flow runs
(from the database the command's temporary server left), each linking to the other at the ports
served, and Ctrl-C stops both with nothing left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from commands import run_studyflow, start_studyflow
from conftest import free_port, prefect_home
from holding import tail

from studyflow.tracking.names import Tag

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _post_json(url: str, body: dict) -> list[dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _wait_for_line(log_path: Path, pattern: str, process: subprocess.Popen, timeout_s: float = 240) -> re.Match:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if match := re.search(pattern, log_path.read_text(errors="replace")):
            return match
        assert process.poll() is None, f"`studyflow ui` exited with {process.returncode}:\n{tail(log_path)}"
        time.sleep(0.2)
    pytest.fail(f"no line matching {pattern!r} within {timeout_s:.0f} s:\n{tail(log_path)}")


def test_ui_shows_a_finished_commands_runs_and_flow_runs_linked_both_ways(studyflow_home, mlflow_client, tmp_path):
    mlflow_port, prefect_port = free_port(), free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home(tmp_path / "prefect")),
        "PYTHONUNBUFFERED": "1",
        # The addresses a user's `studyflow ui` serves at (5000 and 4200 unless set): here free ports.
        "STUDYFLOW_MLFLOW_UI_URL": f"http://127.0.0.1:{mlflow_port}",
        "STUDYFLOW_PREFECT_UI_URL": f"http://127.0.0.1:{prefect_port}",
    }
    pairs = ["pairs=[[1, 0]]", "max_epochs=5", "train_size=600", "test_size=200"]
    finished = run_studyflow("run", "perceptron", *(f"--set={setting}" for setting in pairs), env=env)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "studyflow ui" in finished.stdout  # the console says how to see it afterwards
    (parent,) = [
        run
        for run in mlflow_client.search_runs(
            [mlflow_client.get_experiment_by_name("studyflow-perceptron").experiment_id]
        )
        if run.data.tags.get(Tag.RUN_LEVEL) == "parent"
    ]

    log_path = tmp_path / "ui.log"
    with log_path.open("w") as log:
        ui = start_studyflow("ui", env=env, log=log)
    try:
        mlflow_page = _wait_for_line(log_path, r"the MLflow UI: (\S+)", ui).group(1)
        _wait_for_line(log_path, r"Ctrl-C stops them", ui)
        assert (
            mlflow_page.startswith(f"http://127.0.0.1:{mlflow_port}/")
            and "workflowType=machine_learning" in mlflow_page
        )
        assert f"http://127.0.0.1:{prefect_port}/runs" in log_path.read_text()

        # MLflow: the command's runs, through the UI's own server.
        searched = _post_json(
            f"http://127.0.0.1:{mlflow_port}/api/2.0/mlflow/runs/search",
            {"experiment_ids": [parent.info.experiment_id]},
        )
        assert parent.info.run_id in {run["info"]["run_id"] for run in searched["runs"]}
        # Prefect: the command's flow run, finished, from the database its temporary server left.
        prefect_api = f"http://127.0.0.1:{prefect_port}/api"
        flow_runs = _post_json(f"{prefect_api}/flow_runs/filter", {})
        (flow_run,) = [run for run in flow_runs if run["id"] == parent.data.tags[Tag.PREFECT_FLOW_RUN_ID]]
        assert flow_run["state_type"] == "COMPLETED"
        # The links both ways point at the ports served.
        assert (
            parent.data.tags[Tag.PREFECT_FLOW_RUN_URL]
            == f"http://127.0.0.1:{prefect_port}/runs/flow-run/{flow_run['id']}"
        )
        links = [
            artifact["data"]
            for artifact in _post_json(f"{prefect_api}/artifacts/filter", {})
            if artifact["type"] == "markdown" or artifact["type"] == "link"
        ]
        mlflow_links = re.findall(r"https?://[^\s)\]]+", " ".join(map(str, links)))
        assert any(parent.info.run_id in link for link in mlflow_links), links
        assert all(link.startswith(f"http://127.0.0.1:{mlflow_port}/") for link in mlflow_links), mlflow_links
        page = urllib.request.Request(parent.data.tags[Tag.PREFECT_FLOW_RUN_URL], headers={"Accept": "text/html"})
        with urllib.request.urlopen(page, timeout=30) as response:  # as a browser asks for it
            assert response.status == 200 and b"<!DOCTYPE html>" in response.read(200)  # the UI's page

        os.killpg(ui.pid, signal.SIGINT)  # a terminal's Ctrl-C
        assert ui.wait(timeout=60) == 130, tail(log_path)
        assert "stopped the MLflow UI and the Prefect UI" in log_path.read_text()
        assert "Traceback" not in log_path.read_text()
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _answers(f"http://127.0.0.1:{mlflow_port}/health") | _answers(
        f"http://127.0.0.1:{prefect_port}/api/health"
    ):
        time.sleep(0.2)
    assert not _answers(f"http://127.0.0.1:{mlflow_port}/health"), "the MLflow UI outlived Ctrl-C"
    assert not _answers(f"http://127.0.0.1:{prefect_port}/api/health"), "the Prefect UI outlived Ctrl-C"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False
