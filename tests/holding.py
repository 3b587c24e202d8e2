"""Holding a training at a point the test chooses, so that a kill, a Ctrl-C or a second command
lands mid-training however fast or loaded the machine is; a real MLflow server to stop and start
under a training; and reading what the product left."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port, runs_of
from mlflow.exceptions import MlflowException

REPO = Path(__file__).resolve().parents[1]
MLFLOW = str(Path(sys.executable).parent / "mlflow")

# Runs a Python statement (argv[2]) as the product runs it, with one change: the Keras model named
# argv[1] pauses at the end of its first epoch, after the product's own callbacks have logged that
# epoch to MLflow, until the test kills the process. So the kill falls mid-training however fast or
# loaded the machine is. Without the pause it is a race: a quick-profile CNN trains one epoch, and
# its run ends moments after logging it.
HOLD_AFTER_EPOCH_1 = r"""
import os, sys, time

import studyflow  # its library settings, before Keras is imported
import keras

held_model, statement = sys.argv[1], sys.argv[2]
release_file = sys.argv[3] if len(sys.argv) > 3 else None  # held until it exists; else until killed
HOLD_S = 900


class HoldAfterEpoch1(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            print(f"test: holding {held_model} after epoch 1", flush=True)
            deadline = time.monotonic() + HOLD_S
            while time.monotonic() < deadline:
                if release_file and os.path.exists(release_file):
                    return
                time.sleep(0.1)
            raise RuntimeError(f"{held_model} was held {HOLD_S} s after epoch 1 and never released")


fit = keras.Model.fit


def held_fit(self, *args, callbacks=None, **kwargs):
    if self.name == held_model:
        callbacks = [*(callbacks or []), HoldAfterEpoch1()]  # last: after the product's own callbacks
    return fit(self, *args, callbacks=callbacks, **kwargs)


keras.Model.fit = held_fit
exec(statement)
"""


def start_held(
    held_model: str, statement: str, log_path: Path, env: dict, release_file: Path | None = None
) -> subprocess.Popen:
    """Run `statement` in a new session (its own process group, as a terminal's job), with the Keras
    model `held_model` held after epoch 1 until `release_file` exists, or until the test kills it."""
    release = [str(release_file)] if release_file else []
    with open(log_path, "w") as log:  # a file, not a pipe nobody reads: a full pipe would stall the child
        return subprocess.Popen(
            [sys.executable, "-c", HOLD_AFTER_EPOCH_1, held_model, statement, *release],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def cli_statement(argv: list[str], quick_profile: dict[str, dict] | None = None) -> str:
    """The statement that runs `studyflow ARGV`, in the held process or with `python -c`.

    `quick_profile` (part -> settings) gives those parts' quick profile these settings first: a study's
    command takes no sizes for its parts, and a test of what a study does needs the quick profile's
    code, not its data."""
    lines = ["import sys", "from studyflow.entrypoints import cli"]
    if quick_profile:
        lines.append("from studyflow.config.parts import PART_CONFIGS")
        lines += [
            f"PART_CONFIGS[{part!r}].PROFILE_DEFAULTS['quick'].update({settings!r})"
            for part, settings in quick_profile.items()
        ]
    return "\n".join([*lines, f"sys.exit(cli.main({argv!r}))"])


def descendants(pid: int) -> list[tuple[int, str]]:
    """Every process started by `pid`, directly or not, as (pid, start ticks)."""
    from studyflow import processes

    return processes.tree(pid)[1:]


def alive(members: list[tuple[int, str]]) -> list[int]:
    from studyflow import processes

    return [pid for pid, started in members if (processes.start_ticks(pid) or "") == started and started]


def wait_gone(members: list[tuple[int, str]], timeout_s: float) -> list[int]:
    """The processes still alive after `timeout_s` (empty once all are gone)."""
    deadline = time.monotonic() + timeout_s
    while (left := alive(members)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-3000:]


def wait_until_epoch_1_logged(
    client, candidates, what: str, process: subprocess.Popen, log_path: Path, timeout_s: float = 600
) -> str:
    """The id of the run `candidates()` finds, once the product has it RUNNING with epoch 1 logged (what
    it signals in the store); fails at once if the process ends or the run ends un-held."""
    deadline = time.monotonic() + timeout_s
    store_error = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the process ended (code {process.returncode}) before {what} logged epoch 1:\n{tail(log_path)}"
            )
        try:
            runs = candidates()
            for run in runs:
                if run.info.status == "RUNNING" and client.get_metric_history(run.info.run_id, "val_accuracy"):
                    return run.info.run_id
        except MlflowException as exc:  # the SQLite store is busy: the process writes to it too
            store_error = exc
            runs = []
        ended = [run.info.status for run in runs if run.info.status != "RUNNING"]
        if ended:
            pytest.fail(f"{what} ended {ended} instead of being held after epoch 1:\n{tail(log_path)}")
        time.sleep(0.2)
    pytest.fail(
        f"{what} was not RUNNING with epoch 1 logged within {timeout_s:.0f} s "
        f"(last store error: {store_error}):\n{tail(log_path)}"
    )


def kill_9(process: subprocess.Popen) -> None:
    """SIGKILL the process only, as `kill -9 <pid>` would; then whatever it started (Prefect's local
    server, in its process group)."""
    try:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def prefect_flow_runs(prefect_home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(prefect_home / "prefect.db") as database:
        rows = database.execute(
            "select f.name, r.state_type from flow_run r join flow f on f.id = r.flow_id order by r.created"
        ).fetchall()
    return [(name, state) for name, state in rows]


def read_flow_run(flow_run_id):
    """The flow run as the Prefect server holds it."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        return prefect.read_flow_run(flow_run_id)


def runs_of_flow_run(client, part: str, flow_run_id) -> dict[str, object]:
    """The runs of `part` that one Prefect flow run made, by run name."""
    runs = runs_of(client, part, f"tags.`studyflow.prefect_flow_run_id` = '{flow_run_id}'")
    return {run.info.run_name: run for run in runs}


def metric_steps(client, run_id: str, metric: str) -> list[int]:
    return [point.step for point in client.get_metric_history(run_id, metric)]


class MlflowServer:
    """`mlflow server` on 127.0.0.1 with its own SQLite store and artifacts; stopped and started at will
    (same port, same store), as an operator restarting it would."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process: subprocess.Popen | None = None

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def start(self, wait: bool = True) -> None:
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # 2 processes, not 15
        env.pop("MLFLOW_TRACKING_URI", None)
        with open(self.folder / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    MLFLOW,
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    self.url.rsplit(":", 1)[1],
                    "--workers",
                    "1",
                    "--backend-store-uri",
                    f"sqlite:///{self.folder / 'mlflow.db'}",
                    "--serve-artifacts",
                    "--artifacts-destination",
                    str(self.folder / "artifacts"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )  # its own process group: stop() ends the server and its workers
        if wait:
            self.wait_until_up()

    def wait_until_up(self, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not come up: {(self.folder / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        assert not self.answers(), "the stopped server still answers"
