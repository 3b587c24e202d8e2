"""Fault injection, part 4: the servers a command starts, on a loaded machine and past their budget.

Load: every core is saturated by busy processes (two per core), and each test starts from a fresh
home with no Prefect database, as on a busy laptop's first run: the temporary Prefect server of each
command has a new database to migrate on a machine with no idle core. Commands must wait for their
servers, not fail. These are marked `load`: `make test` runs them alone, after the other tests, so
that the busy processes load only the commands under test and not the timing of every other test.

Past the budget: a server that does not answer within STUDYFLOW_START_TIMEOUT stops the command with
one line naming it, its cause and the remedy, exit 1, and no process left behind.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from commands import start_studyflow
from conftest import runs_of
from holding import tail

import bench.common
from studyflow.tracking.names import RunLevel, Tag

pytestmark = [pytest.mark.faults, pytest.mark.slow]

COMMAND_TIMEOUT_S = 1500  # a hung command fails the test instead of the whole run


@pytest.fixture
def saturated_cores():
    """Two busy processes per core, stopped however the test ends."""
    with bench.common.saturated_cores(per_core=2) as hogs:
        yield hogs


def _start(argv: list[str], home: Path, log_path: Path, **env_changes: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "STUDYFLOW_HOME": str(home),
        "PREFECT_HOME": str(home / ".prefect"),
        "PYTHONUNBUFFERED": "1",
        **env_changes,
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    with log_path.open("w") as log:  # its own session, as a terminal's job: its processes can be found
        return start_studyflow(*argv, env=env, log=log)


def _finish(process: subprocess.Popen, log_path: Path) -> tuple[int, float]:
    try:
        return process.wait(timeout=COMMAND_TIMEOUT_S), time.monotonic()
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{process.args[3:]} did not end within {COMMAND_TIMEOUT_S} s:\n{tail(log_path)}")


def _run_at_once(commands: dict[str, list[str]], home: Path) -> None:
    """Start every command at the same moment; each must exit 0 with no traceback."""
    assert not (home / ".prefect" / "prefect.db").exists(), "the home must start with no Prefect database"
    started = time.monotonic()
    processes = {
        name: (_start(argv, home, home / f"{name}.log"), home / f"{name}.log") for name, argv in commands.items()
    }
    for name, (process, log_path) in processes.items():
        code, ended = _finish(process, log_path)
        print(f"{name} on saturated cores: exit {code} after {ended - started:.0f} s")
        assert code == 0, f"{name} failed on a loaded machine:\n{tail(log_path)}"
        assert "Traceback" not in log_path.read_text(errors="replace"), tail(log_path)


@pytest.mark.load
def test_two_first_commands_at_once_on_saturated_cores_both_finish(saturated_cores, studyflow_home, mlflow_client):
    _run_at_once({"pca": ["run", "pca"], "perceptron": ["run", "perceptron"]}, studyflow_home)
    for part in ("pca", "perceptron"):
        runs = runs_of(mlflow_client, part)
        assert runs and {run.info.status for run in runs} == {"FINISHED"}, [run.info.status for run in runs]


@pytest.mark.load
def test_a_fanned_part_and_a_sweep_on_saturated_cores_both_finish(saturated_cores, studyflow_home, mlflow_client, tiny):
    sizes = [f"--set={name}={value}" for name, value in tiny.items()]
    _run_at_once(
        {
            "mlp-workers-2": [
                "run",
                "mlp",
                "--set",
                "workers=2",
                "--set",
                'architectures={"MLP-a": [32], "MLP-b": [16]}',
                *sizes,
            ],
            "sweep-mlp": ["sweep", "mlp", "--trials", "2", *sizes],
        },
        studyflow_home,
    )
    said = (studyflow_home / "mlp-workers-2.log").read_text().count("[studyflow] precision auto -> ")
    assert said == 1, "the command says once which precision auto chose, and why"
    children = f"tags.`{Tag.RUN_LEVEL}` = '{RunLevel.CHILD}'"
    trained = runs_of(mlflow_client, "mlp", children)
    assert sorted(run.info.status for run in trained) == ["FINISHED", "FINISHED"]
    trials = runs_of(mlflow_client, "sweep-mlp", children)
    assert len(trials) == 2 and {run.info.status for run in trials} == {"FINISHED"}


def _session_processes(session_id: int) -> list[int]:
    """The processes of a session (the command's and whatever it started in it or left behind)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == session_id:
                    found.append(int(entry.name))
            except ProcessLookupError:
                continue
    return found


def test_a_prefect_server_past_its_start_budget_is_one_line_exit_1_and_no_process(studyflow_home, mlflow_client):
    log_path = studyflow_home / "budget.log"
    # One second: less than any start of Prefect's server takes, which imports its app first.
    process = _start(
        ["run", "perceptron", "--set", "pairs=[[1, 0]]"], studyflow_home, log_path, STUDYFLOW_START_TIMEOUT="1"
    )
    code, _ = _finish(process, log_path)
    output = log_path.read_text(errors="replace")
    assert code == 1, output
    errors = [line for line in output.splitlines() if line.startswith("studyflow: error:")]
    assert len(errors) == 1, output
    assert "Prefect's temporary server did not answer within 1 s" in errors[0]  # the server and the cause
    assert "STUDYFLOW_START_TIMEOUT" in errors[0] and "PREFECT_API_URL" in errors[0]  # the two remedies
    assert "Traceback" not in output
    # Prefect's server runs in a session of its own: none of this command's may be left anywhere.
    deadline = time.monotonic() + 10
    while (
        left := [pid for pid in _server_processes() if f"PREFECT_HOME={studyflow_home}" in _environ(pid)]
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], f"Prefect server processes of the command left running: {left}"
    assert _session_processes(process.pid) == []
    assert runs_of(mlflow_client, "perceptron") == []  # refused before any run was opened


def _server_processes() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"prefect.server.api.server:create_app" in command:
                pids.append(int(entry.name))
    return pids


def _environ(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
