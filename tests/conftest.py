"""Shared fixtures: every test writes into a temporary studyflow home with its own MLflow store.

Real components throughout: a real MLflow SQLite store, Prefect's test harness (a real temporary
Prefect server and database), the real datasets shipped in data/ (subsets keep it fast).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before studyflow, MLflow or Prefect are imported by any test module.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("PREFECT_API_URL", None)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session", autouse=True)
def shared_data_cache(tmp_path_factory):
    """One decoded-array cache for the session, so only the first load pays for verification."""
    os.environ["STUDYFLOW_CACHE_DIR"] = str(tmp_path_factory.mktemp("data-cache"))
    yield


@pytest.fixture(autouse=True)
def studyflow_home(tmp_path, monkeypatch):
    """A fresh home per test: its own mlruns/ (SQLite store and artifacts) and reports/."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("STUDYFLOW_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("STUDYFLOW_DATA_DIR", raising=False)
    yield home


@pytest.fixture(scope="session")
def prefect_server():
    """A real temporary Prefect server and database for the flows under test (started once)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def mlflow_client(studyflow_home):
    from studyflow import tracking

    return tracking.connect()


def assert_png(path: Path, min_side: int = 100) -> None:
    """A real PNG a person could look at: right signature, decodable, not a thumbnail."""
    from PIL import Image

    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert min(image.size) >= min_side, f"{path} is only {image.size}"


def runs_of(client, part: str, filter_string: str = ""):
    from studyflow import tracking

    return tracking.find_runs(client, part, filter_string)


def download(client, run_id: str, artifact: str) -> Path:
    return Path(client.download_artifacts(run_id, artifact))
