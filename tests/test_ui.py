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
from conftest import assert_png, free_port, runs_of

from studyflow.tracking.names import Tag
from studyflow.tracking.store import TRAINING_VIEW

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (.ci/run installs Debian's chromium)"),
]


def _browser(url: str, *mode: str) -> subprocess.CompletedProcess:
    # The virtual-time budget lets the single-page app fetch its data and render before the dump.
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1400,900",
            "--virtual-time-budget=20000",
            *mode,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _page_text(url: str) -> str:
    result = _browser(url, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


# Sidebar entries of MLflow 3.17's two views, seen in their pages: only GenAI's has the Playground,
# only model training's the Model registry.
GENAI_ONLY, TRAINING_ONLY = "Playground", "Model registry"


def _genai_view(url: str) -> str:
    """The same page as a link without the model-training view opens it (a fresh browser: GenAI's)."""
    return url.replace(TRAINING_VIEW, "")


def _assert_rendered(shot: Path) -> bytes:
    """A screenshot of a drawn page, not of a blank or a loading one: more than 2 % of its pixels differ
    from its background (its commonest shade). Returns its pixels, to tell the pages apart."""
    from PIL import Image

    with Image.open(shot) as image:
        gray = image.convert("L")
    histogram = gray.histogram()
    drawn = 1 - max(histogram) / sum(histogram)
    assert drawn > 0.02, f"{shot}: only {drawn:.1%} of the page is drawn"
    return gray.tobytes()


def test_printed_links_open_the_training_pages_of_the_mlflow_ui(prefect_server, mlflow_client, tiny, tmp_path):
    from flows.cnn import cnn_flow
    from studyflow import paths, tracking

    cnn_flow(profile="quick", architectures={"CNN-a": [4]}, **tiny)
    (parent,) = [run for run in runs_of(mlflow_client, "cnn") if run.data.tags[Tag.RUN_LEVEL] == "parent"]
    (child,) = [run for run in runs_of(mlflow_client, "cnn") if run.data.tags[Tag.RUN_LEVEL] == "child"]
    port = free_port()
    ui = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "ui",
            "--backend-store-uri",
            tracking.tracking_uri(),
            "--default-artifact-root",
            str(paths.default_artifact_root()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
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
        # Each page beside the same page opened without the model-training view (GenAI's, in a fresh
        # browser): each view's own sidebar entry is checked on both, so that a link that loses the view,
        # or a new wording in MLflow's UI, fails here instead of passing.
        for name in ("runs", "run"):
            ours, genai = _page_text(pages[name]), _page_text(_genai_view(pages[name]))
            assert GENAI_ONLY in genai and TRAINING_ONLY not in genai, (
                f"MLflow's GenAI {name} page changed: update this test"
            )
            assert TRAINING_ONLY in ours and GENAI_ONLY not in ours, f"the {name} link opens the GenAI view"
        runs_page, run_page = _page_text(pages["runs"]), _page_text(pages["run"])
        assert "cnn-quick" in runs_page and "Run Name" in runs_page  # the runs table
        assert "CNN-a-seed-0" in run_page
        assert "Model metrics" in run_page and "System metrics" in run_page
        registry_page = _page_text(pages["registry"])
        assert "mnist-cnn" in registry_page and "Version 1" in registry_page
        shots = {}
        for name, url in pages.items():
            shot = tmp_path / f"mlflow-{name}.png"
            assert _browser(url, f"--screenshot={shot}").returncode == 0
            assert_png(shot, min_side=800)
            shots[name] = _assert_rendered(shot)
        assert len(set(shots.values())) == len(shots), "two pages gave the same screenshot"
        print(f"\nscreenshots: {tmp_path}")
    finally:
        os.killpg(ui.pid, signal.SIGTERM)  # the UI and the workers it started
        ui.wait(timeout=30)
