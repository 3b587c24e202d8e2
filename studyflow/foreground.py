"""Servers a command keeps in the foreground until Ctrl-C: the scoring server (`studyflow serve`),
optuna-dashboard (`studyflow dashboard`) and the MLflow and Prefect UIs (`studyflow ui`).

Each is a child process in a session of its own, with whatever it starts (MLflow's UI runs uvicorn,
Prefect's server its services), and dies with the command however the command ends (Linux's
parent-death signal, kill -9 included); a Ctrl-C of the command stops each one's whole group.
The command waits for each to answer within the start-up budget (studyflow.startup), printing what
it waits for when that takes more than a few seconds; then prints its address, waits for Ctrl-C or
for a server to end, and stops every server it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from studyflow import processes
from studyflow.startup import answers, wait_until_ready

STOP_TIMEOUT_S = 15


@dataclass(frozen=True)
class LocalServer:
    name: str  # what it is, as a user calls it: "the MLflow UI"
    argv: list[str]
    health_url: str  # answers once the server is ready
    address: str  # where a user goes, printed once it is ready
    env: dict[str, str] | None = None
    remedy: str = field(default="")  # what to do when it does not start
    log: Path | None = None  # where its output goes (default: the console)


def run_in_foreground(servers: list[LocalServer]) -> int:
    """Start `servers` in turn, each ready before the next; then serve until Ctrl-C (exit code 130) or
    until one of them ends (its exit code). ServerStartError if one does not start."""
    started: list[tuple[LocalServer, subprocess.Popen]] = []
    try:
        for server in servers:
            process = _spawn(server)
            started.append((server, process))
            remedy = "; ".join(filter(None, [server.remedy, server.log and f"its log: {server.log}"]))
            wait_until_ready(
                server.name, lambda url=server.health_url: answers(url), exited=process.poll, remedy=remedy
            )
            print(f"[studyflow] {server.name}: {server.address}", flush=True)
        print("[studyflow] Ctrl-C stops " + ("it" if len(servers) == 1 else "them"), flush=True)
        while True:
            for server, process in started:
                if process.poll() is not None:
                    print(f"[studyflow] {server.name} ended (exit code {process.returncode})", file=sys.stderr)
                    return process.returncode or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("[studyflow] stopped " + " and ".join(server.name for server, _ in started), file=sys.stderr)
        return 130
    finally:
        _stop([process for _, process in started])


def _spawn(server: LocalServer) -> subprocess.Popen:
    if server.log is None:
        output = None
    else:
        server.log.parent.mkdir(parents=True, exist_ok=True)
        output = server.log.open("a")
    try:
        return subprocess.Popen(
            server.argv,
            env=server.env,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
            preexec_fn=processes.die_with(os.getpid()),
        )
    finally:
        if output:
            output.close()  # the child has its own copy


def _stop(started: list[subprocess.Popen]) -> None:
    """SIGTERM to each server's process group, SIGKILL to any group left after STOP_TIMEOUT_S."""
    for process in started:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in started:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal_group(process, signal.SIGKILL)  # what the server itself left running
        process.wait()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:  # the whole group is gone
        pass
