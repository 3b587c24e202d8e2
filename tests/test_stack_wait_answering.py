"""The native stack's wait for servers started at once (stack/native.py's wait_answering) and for its
Prefect workers, with real processes: one start-up budget for all of them, and a failure that names
the server that exited or did not answer, with its exit code or URL and the end of its log."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from conftest import free_port, native_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

native = native_stack()


def test_waiting_for_servers_names_the_one_that_exited_or_did_not_answer_with_its_log(tmp_path, monkeypatch):
    """Servers started at once are waited for within one start-up budget; a failure names the server
    that failed (not the one that answered), its URL or exit code, and the end of its log."""
    monkeypatch.setenv("STUDYFLOW_STACK_DIR", str(tmp_path))
    monkeypatch.setenv("STUDYFLOW_START_TIMEOUT", "20")
    (tmp_path / "logs").mkdir()
    answering_port, silent_port = free_port(), free_port()
    answering = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(answering_port), "--bind", "127.0.0.1", "--directory", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with open(tmp_path / "logs" / "failing.log", "w") as log:
            failing = subprocess.Popen(
                [sys.executable, "-c", "print('cannot open the store'); raise SystemExit(3)"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        with pytest.raises(native.StackError) as exited:
            native.wait_answering(
                {
                    "answering": (f"http://127.0.0.1:{answering_port}/", answering),
                    "failing": (f"http://127.0.0.1:{silent_port}/health", failing),
                }
            )
        assert str(exited.value).startswith("failing exited with code 3")
        assert "cannot open the store" in str(exited.value)
        native.wait_answering({"answering": (f"http://127.0.0.1:{answering_port}/", answering)})  # answers: returns

        monkeypatch.setenv("STUDYFLOW_START_TIMEOUT", "2")
        (tmp_path / "logs" / "silent.log").write_text("still migrating\n")
        started = time.monotonic()
        with pytest.raises(native.StackError) as silent:
            native.wait_answering(
                {
                    "answering": (f"http://127.0.0.1:{answering_port}/", answering),
                    "silent": (f"http://127.0.0.1:{silent_port}/health", None),
                }
            )
        assert 2 <= time.monotonic() - started < 15
        message = str(silent.value)
        assert message.startswith(f"silent did not answer on http://127.0.0.1:{silent_port}/health within 2 s")
        assert "STUDYFLOW_START_TIMEOUT" in message and "still migrating" in message
    finally:
        answering.terminate()
        answering.wait(10)


def test_a_prefect_worker_is_waited_for_within_the_start_up_budget(tmp_path, monkeypatch):
    """A stack worker that never appears on the pool fails `up` once STUDYFLOW_START_TIMEOUT is spent
    (not a fixed wait of its own), naming the setting; one that exits is named with its exit code."""
    from stack import workers

    monkeypatch.setenv("STUDYFLOW_STACK_DIR", str(tmp_path))
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "worker-1.log").write_text("importing prefect\n")
    settings = {"prefect_api_url": f"http://127.0.0.1:{free_port()}/api"}  # no Prefect server: never online
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        monkeypatch.setenv("STUDYFLOW_START_TIMEOUT", "2")
        started = time.monotonic()
        with pytest.raises(native.StackError) as silent:
            workers._wait_worker_online("worker-1", "host-worker-1", slow, settings)
        assert 2 <= time.monotonic() - started < 15
        assert "STUDYFLOW_START_TIMEOUT" in str(silent.value) and "importing prefect" in str(silent.value)
    finally:
        slow.kill()
        slow.wait()
    monkeypatch.setenv("STUDYFLOW_START_TIMEOUT", "60")
    failing = subprocess.Popen([sys.executable, "-c", "raise SystemExit(4)"])
    failing.wait()
    started = time.monotonic()
    with pytest.raises(native.StackError, match="exited with code 4"):
        workers._wait_worker_online("worker-1", "host-worker-1", failing, settings)
    assert time.monotonic() - started < 15
