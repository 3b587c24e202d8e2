"""The processes the stack started: each one's pid and start time in pids/<name>.json and its output in
logs/<name>.log, so that `down` stops exactly those (and their children), never a process that merely
reused the pid; and the wait for a started server to answer, within the start-up budget every local
server of the project gets (STUDYFLOW_START_TIMEOUT, studyflow.startup)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from stack.layout import HOST, REPO_ROOT, StackError, logs_dir, pids_dir
from studyflow import processes
from studyflow.startup import ServerStartError, budget_remedy, start_budget, wait_until_ready

STOP_TIMEOUT_S = 20


def _alive(pid: int, started: str) -> bool:
    return processes.start_ticks(pid) == started


def record(name: str) -> dict | None:
    path = pids_dir() / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def running(name: str) -> bool:
    entry = record(name)
    return bool(entry) and _alive(entry["pid"], entry["started"])


def spawn(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start a long-running process in its own session, logging to logs/<name>.log."""
    log = open(logs_dir() / f"{name}.log", "ab")
    log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
    log.flush()
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    entry = {"pid": process.pid, "started": processes.start_ticks(process.pid), "command": command}
    (pids_dir() / f"{name}.json").write_text(json.dumps(entry, indent=2))
    return process


def stop(name: str, first_signal: int = signal.SIGTERM) -> None:
    """Stop a recorded process and every descendant it had: signal, wait, then SIGKILL."""
    entry = record(name)
    if entry is None:
        return
    pid = entry["pid"]
    if _alive(pid, entry["started"]):
        members = processes.tree(pid)
        try:
            os.kill(pid, first_signal)
        except ProcessLookupError:
            pass
        _wait_gone([(pid, entry["started"])], STOP_TIMEOUT_S)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = [(member, started) for member, started in members if _alive(member, started)]
            if not left:
                break
            for member, _ in left:
                try:
                    os.kill(member, sig)
                except ProcessLookupError:
                    pass
            _wait_gone(left, 10)
        left = [member for member, started in members if _alive(member, started)]
        if left:
            raise StackError(f"{name}: processes {left} did not stop")
    (pids_dir() / f"{name}.json").unlink(missing_ok=True)
    print(f"stopped {name}")


def _wait_gone(members: list[tuple[int, str]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_alive(pid, started) for pid, started in members):
        time.sleep(0.2)


def tail(name: str, lines: int = 25) -> str:
    """The last lines of logs/<name>.log ("" before it exists)."""
    path = logs_dir() / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _answers_ok(url: str) -> bool:
    # Status 200 only, as the stack always waited for (studyflow.startup.answers takes any status below
    # 500): an endpoint that answers with an error is not ready yet.
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_answering(servers: dict[str, tuple[str, subprocess.Popen | None]]) -> None:
    """Wait until each server (name: its URL and its process, None if it ran already) answers 200 at
    its URL, all of them within one start-up budget, as servers started at once share it. StackError
    naming the first that exited, or one that did not answer in time, with the end of its log."""
    pending = dict(servers)

    def all_answer() -> bool:
        for name, (url, _) in list(pending.items()):
            if _answers_ok(url):
                del pending[name]
        return not pending

    def exited_code() -> int | None:
        return next(
            (code for _, process in pending.values() if process is not None and (code := process.poll()) is not None),
            None,
        )

    try:
        wait_until_ready(" and ".join(servers), all_answer, exited=exited_code)
    except ServerStartError:
        for name, (_, process) in pending.items():
            if process is not None and process.poll() is not None:
                raise StackError(
                    f"{name} exited with code {process.returncode}; its log "
                    f"{logs_dir() / (name + '.log')} ends:\n{tail(name)}"
                ) from None
        name, (url, _) = next(iter(pending.items()))
        raise StackError(
            f"{name} did not answer on {url} within {start_budget():g} s ({budget_remedy()}); "
            f"its log ends:\n{tail(name)}"
        ) from None
