"""Shared fixtures: every test writes into a temporary studyflow home with its own MLflow store.

Real components throughout: a real MLflow SQLite store, Prefect's test harness (a real temporary
Prefect server and database), the real datasets shipped in data/ (subsets keep it fast).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
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


@pytest.fixture(scope="session")
def postgres_url():
    """STUDYFLOW_TEST_POSTGRES_URL, else a throwaway PostgreSQL cluster of our own (skip if impossible).

    One cluster per session: each test names its own Optuna study in it."""
    given = os.environ.get("STUDYFLOW_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    debian_bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)  # not on PATH in Debian
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *map(str, debian_bins)])
    initdb, pg_ctl = shutil.which("initdb", path=search_path), shutil.which("pg_ctl", path=search_path)
    if not initdb or not pg_ctl:
        pytest.skip("no PostgreSQL reachable (set STUDYFLOW_TEST_POSTGRES_URL) and no initdb to start one")
    folder = Path(tempfile.mkdtemp(prefix="studyflow-pg-"))
    as_user = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    try:
        subprocess.run(as_user + [initdb, "-D", str(data), "-U", "postgres", "--auth=trust"], check=True,
                       capture_output=True, timeout=120)
        subprocess.run(as_user + [pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60", "-o",
                                  f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError, KeyError, LookupError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL cluster: {exc}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_user + [pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def runs_of(client, part: str, filter_string: str = ""):
    from studyflow import tracking

    return tracking.find_runs(client, part, filter_string)


def download(client, run_id: str, artifact: str) -> Path:
    return Path(client.download_artifacts(run_id, artifact))
