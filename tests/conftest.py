"""Shared fixtures: every test writes into a temporary studyflow home with its own MLflow store.

Real components throughout: a real MLflow SQLite store, Prefect's test harness (a real temporary
Prefect server and database), the real datasets shipped in data/ (subsets keep it fast).
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import pytest

# Set before studyflow, MLflow or Prefect are imported by any test module.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("PREFECT_API_URL", None)
# One Prefect home for the session's commands (studyflow's default, STUDYFLOW_HOME/.prefect, would be
# the checkout here: studyflow is imported before any test sets its own home).
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="studyflow-tests-prefect-"))

# The tiers' checks (tests/tiers.py), installed as this conftest's own fixture and hooks.
from tiers import (
    pytest_runtest_call,  # noqa: E402,F401
)

from studyflow.tracking.names import Tag, TrialAttr  # noqa: E402  (after the settings above)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# The tiny profile of every test that trains: real trainings, on subsets small enough for seconds.
# Read-only, so that no test can change it for the next. A test that needs more says so beside the
# assertion that needs it, e.g. `dict(tiny, epochs=2)` for a two-epoch history.
TINY: Mapping[str, int] = MappingProxyType({"epochs": 1, "train_size": 600, "test_size": 200})
SMALL_MLP = {"min_depth": 1, "max_depth": 3, "min_size": 8, "max_size": 64}  # a sweep's search space, tiny
# Replicates: the run level of a model's group run over its seeds; Student's t quantile 0.975 with 2
# degrees of freedom (tables), the factor of a 95 % interval over three seeds.
REPLICATE_GROUP, T_975_2DF = "replicate_group", 4.302652729911275


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
        subprocess.run(
            as_user + [initdb, "-D", str(data), "-U", "postgres", "--auth=trust"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            as_user
            + [
                pg_ctl,
                "-D",
                str(data),
                "-l",
                str(folder / "log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {port} -k {folder} -c listen_addresses=127.0.0.1",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (subprocess.SubprocessError, OSError, KeyError, LookupError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL cluster: {exc}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_user + [pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny() -> Mapping[str, int]:
    """The tiny profile's sizes (epochs, train_size, test_size), as flows and sweeps take them."""
    return TINY


@pytest.fixture(scope="session")
def empty_tracking_store(tmp_path_factory) -> Path:
    """An empty embedded MLflow store (mlflow.db) as tracking.connect() and MLflow make it, once per
    session. Creating MLflow's tables takes seconds; each test's store starts as a copy of this one."""
    from studyflow import tracking

    home = tmp_path_factory.mktemp("empty-store-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDYFLOW_HOME", str(home))
        patch.setenv("MLFLOW_TRACKING_URI", "")  # so that the context restores its absence:
        patch.delenv("MLFLOW_TRACKING_URI")  # connect() sets it (mlflow.set_tracking_uri does)
        tracking.connect().search_experiments()  # MLflow creates its tables at the first request
    store = home / "mlruns" / "mlflow.db"
    assert store.is_file(), f"no store at {store}"
    return store


@pytest.fixture
def mlflow_client(studyflow_home, empty_tracking_store):
    """A client of this test's own embedded store (a fresh copy of the empty one)."""
    from studyflow import tracking

    (studyflow_home / "mlruns").mkdir()
    shutil.copyfile(empty_tracking_store, studyflow_home / "mlruns" / "mlflow.db")
    return tracking.connect()


# Boots Prefect's temporary server in a Prefect home as a command does, and stops it: its database is then
# migrated, with Prefect's block types registered.
BOOT_PREFECT_SERVER = """
from studyflow.local_prefect import EarlyLocalServer

with EarlyLocalServer().ready():
    pass
"""


@functools.cache
def _booted_prefect_database() -> Path:
    """The database of a Prefect home whose temporary server has started once, made once per session."""
    home = Path(tempfile.mkdtemp(prefix="studyflow-tests-prefect-template-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-c", BOOT_PREFECT_SERVER],
        env={**os.environ, "PREFECT_HOME": str(home)},
        check=True,
        capture_output=True,
        timeout=300,
    )
    database = home / "prefect.db"
    connection = sqlite3.connect(database)
    try:  # the write-ahead log into the file itself: one file to copy
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return database


def prefect_home(folder: Path) -> Path:
    """`folder` as the PREFECT_HOME of a test's commands, with the database their temporary server
    would create (kept if a command made it already).

    An empty home costs the first command some seconds of migrating that database before its server
    answers; a test's home starts instead from one booted once per session (no flow run in it). The
    homes that benchmarks make for themselves (bench.fan_out, bench.study_quick, bench.tuning) still
    start empty, as on a user's first run."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "prefect.db").exists():
        shutil.copyfile(_booted_prefect_database(), folder / "prefect.db")
    return folder


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


def tiny_data(tiny):
    """The tiny MNIST subset and its training split, both drawn with seed 0."""
    from tasks.architectures.compute import training_data
    from tasks.data import load_dataset, subset

    dataset = subset(load_dataset("mnist"), tiny["train_size"], tiny["test_size"], seed=0)
    return dataset, training_data(dataset, 0.1, seed=0)


def tracked_parent(client, kind: str, name: str, dataset_digest: str):
    """A parent run of the quick profile, seed 0, for trainings called directly."""
    from studyflow import tracking

    return tracking.tracked_run(client, kind, name, profile="quick", seed=0, dataset_digest=dataset_digest)


def sweep_runs(client, kind: str):
    """The parent runs and the trial (child) runs of the sweeps of `kind` (mlp, cnn, mtl)."""
    runs = runs_of(client, f"sweep-{kind}")
    parents = [run for run in runs if run.data.tags.get(Tag.RUN_LEVEL) == "parent"]
    children = [run for run in runs if run.data.tags.get(Tag.RUN_LEVEL) == "child"]
    return parents, children


def sweep_study(name: str, url: str | None = None):
    """The Optuna study `name`, from `url` or the default storage."""
    import optuna

    from studyflow.paths import default_optuna_storage_url

    return optuna.load_study(study_name=name, storage=url or default_optuna_storage_url())


def assert_trials_linked(study, parent, children) -> None:
    """Every trial's run names its study and trial; every trial names its run; one parent."""
    by_number = {trial.number: trial for trial in study.trials}
    for run in children:
        tags = run.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags[Tag.OPTUNA_STUDY] == study.study_name
        trial = by_number[int(tags[Tag.TRIAL_NUMBER])]
        assert trial.user_attrs[TrialAttr.MLFLOW_RUN_ID] == run.info.run_id
        assert tags[Tag.TRIAL_STATE] == trial.state.name
    assert study.user_attrs[TrialAttr.MLFLOW_PARENT_RUN_ID] == parent.info.run_id


@functools.cache
def native_stack():
    """stack/native.py (the documented `stack/native.py up|worker|down`) loaded as a module, once."""
    spec = importlib.util.spec_from_file_location(
        "stack_native", Path(__file__).resolve().parents[1] / "stack" / "native.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
