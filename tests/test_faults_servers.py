"""Fault injection around the tracking server: it drops out mid-training, briefly (a restart within
MLflow's retry window), then for good. (A loss turning NaN is in test_faults_nan.py; sweep workers
sharing one PostgreSQL study are in test_sweeps.py, a killed one in test_faults_sweep_trials.py.) Real
servers, real tiny trainings; each test checks what MLflow and Prefect hold at the end, not only how
the call ended.

    nice -n 15 .venv/bin/python -m pytest tests/test_faults_servers.py -q
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import pytest
from holding import MlflowServer
from holding import metric_steps as _steps
from holding import read_flow_run as _flow_run
from holding import runs_of_flow_run as _runs_of_flow_run
from mlflow import MlflowClient

from studyflow.entrypoints.doctor import run_doctor
from studyflow.tracking.names import Tag

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parent.parent


PER_EPOCH = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
HTTP_RETRY_SETTINGS = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
)


# ---------------------------------------------------------------- a real MLflow server to stop


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """Session-scoped and started without waiting, so that it boots while Prefect's test server does
    (tests name `tracked_by` before `prefect_server`); `tracked_by` waits for it."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start(wait=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tracked_by(mlflow_server, monkeypatch):
    """Point studyflow at the server; restore the HTTP retry settings afterwards (connect() may set them)."""
    saved = {name: os.environ.get(name) for name in HTTP_RETRY_SETTINGS}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    for name in HTTP_RETRY_SETTINGS:
        monkeypatch.delenv(name, raising=False)  # the product's own defaults
    if mlflow_server.process.poll() is not None:
        mlflow_server.start()
    mlflow_server.wait_until_up()
    yield mlflow_server
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class ServerOutage(keras.callbacks.Callback):
    """After epoch 1 is logged (this callback runs after the metrics logger), stop the server, and
    start it again in the background: a restart while training goes on."""

    def __init__(self, server: MlflowServer):
        super().__init__()
        self.server = server
        self.times: dict[str, float] = {}
        self.restart = threading.Thread(target=self._restart)

    def _restart(self):
        self.server.start()
        self.times["back"] = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_test_begin(self, logs=None):  # validation: after the epoch's batches, before its logging
        if self.epoch == 1:
            self.times["epoch_2_trained"] = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.server.stop()
            self.times["down"] = time.monotonic()
            self.restart.start()
        elif epoch == 1:
            self.times["epoch_2_logged"] = time.monotonic()


def _train_with_callback(monkeypatch, callback) -> None:
    """Every architecture a flow trains gets `callback` after the product's own callbacks."""
    from tasks.architectures import tasks as architecture_training

    original = architecture_training.train

    def train(*args, **kwargs):
        kwargs["extra_callbacks"] = [*(kwargs.get("extra_callbacks") or []), callback]
        return original(*args, **kwargs)

    monkeypatch.setattr(architecture_training, "train", train)


# ---------------------------------------------------------------- item 4: the tracking server drops out


@pytest.mark.integration
def test_server_restarted_mid_training_loses_no_epoch(tracked_by, prefect_server, monkeypatch, tiny):
    """A restart within MLflow's retry window (studyflow's defaults): epoch 2's metrics wait for the
    server, every epoch ends up logged, the run and the flow run finish."""
    from flows.mlp import mlp_flow

    outage = ServerOutage(tracked_by)
    _train_with_callback(monkeypatch, outage)
    state = mlp_flow(architectures={"MLP-a": [16]}, **dict(tiny, epochs=3), return_state=True)
    outage.restart.join(timeout=180)

    assert state.is_completed(), state.message
    flow_run_id = state.state_details.flow_run_id
    assert _flow_run(flow_run_id).state.type.value == "COMPLETED"
    # Epoch 2 was trained while the server was down (a restart takes seconds, the epoch a fraction of
    # one), and its metrics were logged once it was back: the client waited for the server.
    times = outage.times
    assert times["down"] < times["epoch_2_trained"] < times["back"] <= times["epoch_2_logged"], times
    client = MlflowClient(tracked_by.url)
    runs = _runs_of_flow_run(client, "mlp", flow_run_id)
    assert set(runs) == {"mlp-quick", "MLP-a-seed-0"}
    assert {run.info.status for run in runs.values()} == {"FINISHED"}
    for metric in PER_EPOCH:
        assert _steps(client, runs["MLP-a-seed-0"].info.run_id, metric) == [1, 2, 3], metric
    assert runs["MLP-a-seed-0"].data.metrics["epochs_run"] == 3
    assert runs["MLP-a-seed-0"].outputs.model_outputs, "the model was logged after the restart"


LONG_OUTAGE_CHILD = r"""
import json, sys, time
from pathlib import Path

import keras
import tasks.architectures.tasks as architecture_training
from flows.mlp import mlp_flow

handshake, sizes = Path(sys.argv[1]), json.loads(sys.argv[2])


class WaitForOutage(keras.callbacks.Callback):
    # After epoch 1 is logged: tell the test, and go on only once it has stopped the server.
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            (handshake / "epoch-1-logged").touch()
            deadline = time.monotonic() + 120
            while not (handshake / "server-down").exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("the test never stopped the server")
                time.sleep(0.1)


original = architecture_training.train


def train(*args, **kwargs):
    kwargs["extra_callbacks"] = [WaitForOutage()]
    return original(*args, **kwargs)


architecture_training.train = train
state = mlp_flow(architectures={"MLP-a": [16]}, **sizes, return_state=True)
print("FLOW_RUN", state.state_details.flow_run_id, flush=True)
sys.exit(0 if state.is_completed() else 1)
"""


@pytest.mark.integration
def test_server_gone_for_good_stops_training_naming_the_url_and_keeps_the_unlogged_epoch(
    tracked_by, prefect_server, studyflow_home, tmp_path, tiny
):
    """The server stays down past the retry window (shortened here to seconds): the flow fails with a
    TrackingError naming the URL, the epoch that could not be logged is in a local file, and once the
    server is back `studyflow doctor` closes the runs the dead process left RUNNING."""
    from prefect.settings import PREFECT_API_URL

    handshake = tmp_path / "handshake"
    handshake.mkdir()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracked_by.url,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "STUDYFLOW_HOME": str(studyflow_home),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }
    sizes = json.dumps(dict(tiny, epochs=3))
    child = subprocess.Popen(
        [sys.executable, "-c", LONG_OUTAGE_CHILD, str(handshake), sizes],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not (handshake / "epoch-1-logged").exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never logged epoch 1"
            time.sleep(0.2)
        tracked_by.stop()
        (handshake / "server-down").touch()
        out, err = child.communicate(timeout=240)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 1, out[-3000:] + err[-3000:]
    assert f"stays RUNNING: the tracking server {tracked_by.url} does not answer" in err  # no second wait
    flow_run_id = re.search(r"FLOW_RUN (\S+)", out).group(1)
    # Prefect: the flow run failed, and says why and where.
    flow_state = _flow_run(flow_run_id).state
    assert flow_state.type.value == "FAILED"
    assert "TrackingError" in flow_state.message and tracked_by.url in flow_state.message, flow_state.message
    # The epoch that the server never received is on disk, named in the message.
    unlogged_files = [path for path in studyflow_home.rglob("*.jsonl") if "unlogged" in str(path)]
    assert len(unlogged_files) == 1, unlogged_files
    assert str(unlogged_files[0]) in flow_state.message
    unlogged = [json.loads(line) for line in unlogged_files[0].read_text().splitlines()]
    assert {item["step"] for item in unlogged} == {2} and set(PER_EPOCH) <= {item["key"] for item in unlogged}

    # The server comes back: the dead process's runs are still RUNNING, with what it did log.
    tracked_by.start()
    client = MlflowClient(tracked_by.url)
    runs = _runs_of_flow_run(client, "mlp", flow_run_id)
    assert set(runs) == {"mlp-quick", "MLP-a-seed-0"}
    assert {run.info.status for run in runs.values()} == {"RUNNING"}
    child_run_id = runs["MLP-a-seed-0"].info.run_id
    assert {item["run_id"] for item in unlogged} == {child_run_id}
    for metric in PER_EPOCH:  # epoch 1 in the store, epoch 2 in the file: no gap
        assert _steps(client, child_run_id, metric) == [1], metric

    fixed = run_doctor().fixed  # what `studyflow doctor` runs
    assert sum("RUNNING -> KILLED" in line for line in fixed) == 2, fixed
    for run in _runs_of_flow_run(client, "mlp", flow_run_id).values():
        assert run.info.status == "KILLED"
        assert "no longer exists" in run.data.tags[Tag.END_REASON]
