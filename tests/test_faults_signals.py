"""Fault injection, part 3: how a command stops. Ctrl-C sent to the terminal's process group, SIGTERM,
two identical commands at once, a read-only store, and a killed sweep's flow run. (A kill -9 of a
command, which leaves no process of it behind, is test_faults_resume's kill -9 of the study.)

Each test holds a training after its first epoch (tests/holding.py), so the signal lands
mid-training however fast or loaded the machine is, then checks what a user would: the exit code,
the MLflow runs (none RUNNING, the right end and reason), Prefect's flow runs, and the processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from commands import run_studyflow
from conftest import prefect_home, runs_of
from holding import (
    REPO,
    cli_statement,
    descendants,
    kill_9,
    prefect_flow_runs,
    start_held,
    tail,
    wait_gone,
    wait_until_epoch_1_logged,
)

from studyflow.steps import WAITING_FOR_STEP
from studyflow.tracking.names import Tag

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TWO_MLPS = '{"MLP-a": [16], "MLP-b": [16]}'


def _mlp_argv(tiny) -> list[str]:
    return [
        "run",
        "mlp",
        "--set",
        f"architectures={TWO_MLPS}",
        *[f"--set={name}={value}" for name, value in dict(tiny, epochs=2).items()],
    ]


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "PREFECT_HOME": str(prefect_home(tmp_path / "prefect")), "PYTHONUNBUFFERED": "1"}


def _mlp_b(client):
    return [run for run in runs_of(client, "mlp") if run.data.tags.get(Tag.ARCHITECTURE) == "MLP-b"]


def _held_mlp(tmp_path, client, tiny, name: str):
    """`studyflow run mlp` held after MLP-b's first epoch; returns the process, its log, MLP-b's run id
    and the processes it started (Prefect's temporary server)."""
    log_path = tmp_path / f"{name}.log"
    client.search_experiments()  # the store exists before the command writes to it
    process = start_held("mlp_b", cli_statement(_mlp_argv(tiny)), log_path, _env(tmp_path))
    try:
        run_id = wait_until_epoch_1_logged(client, lambda: _mlp_b(client), "MLP-b", process, log_path)
        started = descendants(process.pid)
    except BaseException:
        kill_9(process)
        raise
    assert started, "the command started no Prefect server of its own"
    return process, log_path, run_id, started


def test_ctrl_c_to_the_group_closes_the_runs_and_exits_130_leaving_no_process(tmp_path, mlflow_client, tiny):
    process, log_path, run_id, started = _held_mlp(tmp_path, mlflow_client, tiny, "ctrl-c")
    sent = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    try:
        code = process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        kill_9(process)
        pytest.fail(f"the command did not end within 120 s of Ctrl-C:\n{tail(log_path)}")
    seconds = time.monotonic() - sent
    print(f"Ctrl-C to exit: {seconds:.1f} s")
    assert code == 130, tail(log_path)
    assert "Traceback" not in tail(log_path) and "interrupted (SIGINT" in tail(log_path)
    assert wait_gone(started, 10) == [], "Prefect's temporary server outlived the command"
    run = mlflow_client.get_run(run_id)
    assert run.info.status == "KILLED" and "SIGINT" in run.data.tags[Tag.END_REASON]
    assert runs_of(mlflow_client, "mlp", "attributes.status = 'RUNNING'") == []
    flow_runs = prefect_flow_runs(tmp_path / "prefect")
    assert [state for name, state in flow_runs if name == "mlp"] in (["CRASHED"], ["CANCELLED"]), flow_runs


def test_sigterm_ends_the_runs_killed_with_the_reason(tmp_path, mlflow_client, tiny):
    process, log_path, run_id, started = _held_mlp(tmp_path, mlflow_client, tiny, "sigterm")
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        kill_9(process)
        pytest.fail(f"the command did not end within 120 s of SIGTERM:\n{tail(log_path)}")
    assert code == 128 + signal.SIGTERM, tail(log_path)
    run = mlflow_client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags[Tag.END_REASON] == "terminated (SIGTERM)"
    assert "terminated (SIGTERM); open runs were closed as KILLED" in tail(log_path)
    assert runs_of(mlflow_client, "mlp", "attributes.status = 'RUNNING'") == []
    assert wait_gone(started, 10) == []


def test_two_identical_commands_at_once_train_each_step_once(tmp_path, mlflow_client, tiny):
    """The second command reaches MLP-b while the first trains it: it waits for the first's result
    and reuses it (one MLP-b run in all), instead of training the same model again."""
    release = tmp_path / "release"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    mlflow_client.search_experiments()
    first = start_held("mlp_b", cli_statement(_mlp_argv(tiny)), first_log, _env(tmp_path / "first"), release)
    second = None
    try:
        wait_until_epoch_1_logged(mlflow_client, lambda: _mlp_b(mlflow_client), "MLP-b", first, first_log)
        with open(second_log, "w") as log:
            second = subprocess.Popen(
                [sys.executable, "-m", "studyflow.entrypoints.cli", *_mlp_argv(tiny)],
                cwd=REPO,
                env=_env(tmp_path / "second"),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 300
        (held,) = _mlp_b(mlflow_client)
        waiting = WAITING_FOR_STEP.format(owner=held.data.tags[Tag.PROCESS])  # the first command's process
        # Until the second says it waits for the first's MLP-b (after reusing MLP-a), it must not train
        # MLP-b itself: a run of its own would show here at once.
        while waiting not in second_log.read_text():
            assert len(_mlp_b(mlflow_client)) == 1, "the second command trains MLP-b too:\n" + tail(second_log)
            assert second.poll() is None, tail(second_log)
            assert time.monotonic() < deadline, tail(second_log)
            time.sleep(0.2)
        assert "reused finished run" in second_log.read_text() and len(_parents(mlflow_client)) == 2
        assert len(_mlp_b(mlflow_client)) == 1
        release.touch()
        assert first.wait(timeout=300) == 0, tail(first_log)
        assert second.wait(timeout=300) == 0, tail(second_log)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                kill_9(process)
    (mlp_b,) = _mlp_b(mlflow_client)
    assert mlp_b.info.status == "FINISHED"
    second_parent = _parents(mlflow_client)[-1]
    assert mlp_b.info.run_id in second_parent.data.tags[Tag.REUSED_RUN_IDS].split(",")
    assert runs_of(mlflow_client, "mlp", "attributes.status = 'RUNNING'") == []


def _parents(client):
    runs = [run for run in runs_of(client, "mlp") if run.data.tags.get(Tag.RUN_LEVEL) == "parent"]
    return sorted(runs, key=lambda run: run.info.start_time)


def _read_only_mounts_work(folder: Path) -> bool:
    probe = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && ! touch {folder}/probe",
        ],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def test_a_read_only_store_is_refused_in_one_line_before_anything_starts(studyflow_home):
    """mlruns/ mounted read-only (a private mount namespace: root ignores file modes, not mounts)."""
    mlruns = studyflow_home / "mlruns"
    mlruns.mkdir()
    if not shutil.which("unshare") or not _read_only_mounts_work(mlruns):
        pytest.skip("cannot mount a read-only folder here (needs root and unshare)")
    command = " ".join([sys.executable, "-m", "studyflow.entrypoints.cli", "run", "pca"])
    result = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            f"mount --bind {mlruns} {mlruns} && mount -o remount,bind,ro {mlruns} && exec {command}",
        ],
        cwd=REPO,
        env={**os.environ, "STUDYFLOW_HOME": str(studyflow_home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "read-only" in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert "temporary server" not in result.stdout + result.stderr  # refused before Prefect started
    assert list(mlruns.iterdir()) == []  # no store file was created


def test_a_killed_sweeps_flow_run_is_set_crashed_by_the_resume(tmp_path, mlflow_client, tiny):
    argv = [
        "sweep",
        "mlp",
        "--trials",
        "1",
        "--study-name",
        "killed-cli",
        "--set",
        'search_space={"min_depth": 1, "max_depth": 1, "min_size": 16, "max_size": 16}',
        "--set",
        "heartbeat_interval_s=1",
        "--set",
        "heartbeat_grace_s=3",
        *[f"--set={name}={value}" for name, value in dict(tiny, epochs=2).items()],
    ]
    log_path = tmp_path / "killed-sweep.log"
    mlflow_client.search_experiments()
    sweep = start_held("trial_0", cli_statement(argv), log_path, _env(tmp_path))
    try:
        from conftest import sweep_runs

        wait_until_epoch_1_logged(
            mlflow_client, lambda: sweep_runs(mlflow_client, "mlp")[1], "trial 0", sweep, log_path
        )
        started = descendants(sweep.pid)
    finally:
        kill_9(sweep)
    assert wait_gone(started, 10) == []
    assert prefect_flow_runs(tmp_path / "prefect") == [("sweep-mlp", "RUNNING")]  # what kill -9 leaves
    time.sleep(4)  # past the heartbeat's grace: the trial counts as dead
    resumed = run_studyflow(*argv, env=_env(tmp_path))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert prefect_flow_runs(tmp_path / "prefect") == [("sweep-mlp", "CRASHED"), ("sweep-mlp", "COMPLETED")]
    parents, children = sweep_runs(mlflow_client, "mlp")
    assert [run for run in parents + children if run.info.status == "RUNNING"] == []
