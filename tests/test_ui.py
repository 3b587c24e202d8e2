"""The MLflow UI in a real browser (Debian's Chromium, headless): the links studyflow prints and
publishes open the model-training pages (runs table, a run with its model and system metrics, the
registry), never the GenAI ones. Screenshots of the three pages are kept under the test's folder."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from studyflow.tracking.names import Tag

from conftest import assert_png, free_port, runs_of

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.integration,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (.ci/run installs Debian's chromium)")]


def _browser(url: str, *mode: str) -> subprocess.CompletedProcess:
    # The virtual-time budget lets the single-page app fetch its data and render before the dump.
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                           "--virtual-time-budget=20000", *mode, url], capture_output=True, text=True, timeout=120)


def _page_text(url: str) -> str:
    result = _browser(url, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_printed_links_open_the_training_pages_of_the_mlflow_ui(prefect_server, mlflow_client, tiny, tmp_path):
    from flows.cnn import cnn_flow
    from studyflow import paths, tracking

    cnn_flow(profile="quick", architectures={"CNN-a": [4]}, **tiny)
    (parent,) = [run for run in runs_of(mlflow_client, "cnn") if run.data.tags[Tag.RUN_LEVEL] == "parent"]
    (child,) = [run for run in runs_of(mlflow_client, "cnn") if run.data.tags[Tag.RUN_LEVEL] == "child"]
    port = free_port()
    ui = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri",
                           tracking.tracking_uri(), "--default-artifact-root", str(paths.default_artifact_root()),
                           "--host", "127.0.0.1", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                          env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=5)
                break
            except OSError:
                assert ui.poll() is None and time.monotonic() < deadline, "the MLflow UI did not start"
                time.sleep(0.5)
        pages = {
            "runs": tracking.experiment_url(parent.info.experiment_id),
            "run": tracking.run_url(child.info.experiment_id, child.info.run_id),
            "registry": tracking.registered_model_url("mnist-cnn"),
        }
        pages = {name: url.replace(tracking.ui_base(), base) for name, url in pages.items()}
        runs_page = _page_text(pages["runs"])
        assert "cnn-quick" in runs_page and "Detect Issues" not in runs_page  # the runs table, not GenAI's overview
        run_page = _page_text(pages["run"])
        assert "CNN-a-seed-0" in run_page
        assert "Model metrics" in run_page and "System metrics" in run_page and "Evaluations" not in run_page
        registry_page = _page_text(pages["registry"])
        assert "mnist-cnn" in registry_page and "Version 1" in registry_page
        for name, url in pages.items():
            shot = tmp_path / f"mlflow-{name}.png"
            assert _browser(url, f"--screenshot={shot}").returncode == 0
            assert_png(shot, min_side=800)
        print(f"\nscreenshots: {tmp_path}")
    finally:
        os.killpg(ui.pid, signal.SIGTERM)  # the UI and the workers it started
        ui.wait(timeout=30)
