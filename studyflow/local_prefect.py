"""Prefect's temporary local server, booted in the background while a command imports its flow.

With no PREFECT_API_URL, Prefect starts a server in a subprocess the first time a flow runs, after
the seconds a command spends importing TensorFlow, MLflow and the flow and connecting to MLflow.
Booting it first overlaps the two (bench/results has the start-up times). The server is Prefect's
own (`SubprocessASGIServer`, a singleton per port): the flow finds it already started and uses it,
and Prefect's exit hook stops it, as it would have without us.

The server runs in a session of its own, so the Ctrl-C a terminal sends to the command's process
group reaches the command only: the server outlives the flow's last report (the flow run ends
Crashed, the MLflow runs KILLED) and is stopped by the command's exit hook. It also dies with the
command whatever kills it (Linux's parent-death signal), so kill -9 leaves no server behind. That
signal fires when the thread that started the server ends, so the boot thread lives as long as the
command (a daemon, asleep after the boot).

Its start has studyflow's start-up budget (studyflow.startup), on the wall clock, not Prefect's 20 s
of counted sleeps: a new database's migrations on a loaded machine take longer. Past a few seconds
of waiting the command says so; past the budget it stops the server and fails in one line.

Flows then run without flow-run heartbeats. They feed zombie-run detection on a lasting server,
which a temporary one is not (it dies with the command; `studyflow doctor` closes what a killed
command left open), and each flow run's end waited for the heartbeat thread's one-second sleep.
"""

from __future__ import annotations

import fcntl
import math
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from studyflow import processes, startup

SERVER_NAME = "Prefect's temporary server"
REMEDY = "start a lasting one (`prefect server start`) and set PREFECT_API_URL to its /api"


class _OwnSessionSubprocess:
    """`subprocess` for Prefect's server module: every process it starts gets its own session and
    dies with this one."""

    def __getattr__(self, name: str):
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args, **kwargs):  # noqa: N802 (subprocess's name)
        return subprocess.Popen(*args, start_new_session=True, preexec_fn=processes.die_with(os.getpid()), **kwargs)


class EarlyLocalServer:
    """Starts Prefect's temporary server in a thread, unless a Prefect server is configured.

    Everything is imported here, in the caller's thread (the flow would import it anyway): the
    thread itself imports nothing, so it cannot race the caller's imports of shared packages. It
    only spawns the server, polls its health, then sleeps until the command exits (see above).
    """

    def __init__(self) -> None:
        from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

        self._thread: threading.Thread | None = None
        if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
            return  # a Prefect server is configured (or none may be started): nothing to boot
        from prefect.server.api import server as server_module
        from prefect.settings import PREFECT_HOME

        self._home = Path(PREFECT_HOME.value())
        self._home.mkdir(parents=True, exist_ok=True)  # the server keeps its database there
        self._budget = startup.start_budget()
        server_module.subprocess = _OwnSessionSubprocess()
        self._server = server_module.SubprocessASGIServer()
        self._failure: BaseException | None = None
        self._booted = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._boot, name="prefect-local-server", daemon=True)
        self._thread.start()

    def _boot(self) -> None:
        try:
            with _start_lock(self._home):
                # Prefect's own loop counts only its sleeps; ready() holds the wall-clock budget.
                self._server.start(timeout=math.ceil(self._budget))
        except Exception as exc:  # told by ready(), in the command's thread
            self._failure = exc
        finally:
            self._booted.set()
        threading.Event().wait()  # the server dies with this thread: keep it until the command exits

    def _wait(self) -> None:
        """Until the server answers; ServerStartError (and no server left) if it cannot."""
        if not self._booted.wait(startup.NOTICE_AFTER_S):
            startup.notice(SERVER_NAME)
            self._booted.wait(max(0.0, self._budget - (time.monotonic() - self._started)))
        if self._booted.is_set() and self._failure is None:
            return
        self._server.stop()
        remedy = f"{REMEDY}, or {startup.budget_remedy()}"
        if self._failure is None or str(self._failure).startswith("Timed out"):  # Prefect's own count ran out
            raise startup.ServerStartError(f"{SERVER_NAME} did not answer within {self._budget:g} s; {remedy}")
        cause = (
            str(self._failure).split(" stdout:")[0].strip().splitlines()[0]
            if str(self._failure)
            else type(self._failure).__name__
        )
        raise startup.ServerStartError(f"{SERVER_NAME} did not start ({cause}); {remedy}")

    @contextmanager
    def ready(self) -> Iterator[None]:
        """Wait for the boot to end, then run the flows inside without heartbeats; with a configured
        Prefect server, change nothing. Every Prefect call of the command belongs inside: a call made
        during the boot would start the server a second time, racing this one (Prefect marks the
        server running before it answers)."""
        if self._thread is None:
            yield
            return
        self._wait()
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


@contextmanager
def _start_lock(home: Path) -> Iterator[None]:
    """One server start at a time per Prefect home: two commands started at once on a new home would
    otherwise both migrate its database. The second waits for the first to answer, then starts its
    own server on the migrated database. The lock is the kernel's, so a killed holder frees it."""
    with (home / "server-start.lock").open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
