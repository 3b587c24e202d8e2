"""Prefect's temporary local server, booted in the background while a command imports its flow.

With no PREFECT_API_URL, Prefect starts a server in a subprocess the first time a flow runs, after
the seconds a command spends importing TensorFlow, MLflow and the flow and connecting to MLflow.
Booting it first overlaps the two (bench/results has the start-up times). The server is Prefect's own (`SubprocessASGIServer`, a
singleton per port): the flow finds it already started and uses it, and Prefect's exit hook stops
it, as it would have without us.

Flows then run without flow-run heartbeats. They feed zombie-run detection on a lasting server,
which a temporary one is not (it dies with the command; `studyflow doctor` closes what a killed
command left open), and each flow run's end waited for the heartbeat thread's one-second sleep.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class EarlyLocalServer:
    """Starts Prefect's temporary server in a thread, unless a Prefect server is configured.

    Everything is imported here, in the caller's thread (the flow would import it anyway): the
    thread itself imports nothing, so it cannot race the caller's imports of shared packages. It
    only spawns the server and polls its health. It is not a daemon: a command that stops early (a
    bad parameter) still waits at exit for the boot to end, then Prefect's exit hook stops the
    server; none is left running.
    """

    def __init__(self) -> None:
        from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

        self._thread: threading.Thread | None = None
        if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
            return  # a Prefect server is configured (or none may be started): nothing to boot
        from prefect.server.api.server import SubprocessASGIServer

        self._thread = threading.Thread(target=self._boot, args=(SubprocessASGIServer(),),
                                        name="prefect-local-server")
        self._thread.start()

    def _boot(self, server) -> None:
        try:
            server.start()
        except Exception:  # Prefect marks it not running: the flow's own start retries and reports it
            pass

    @contextmanager
    def ready(self) -> Iterator[None]:
        """Wait for the boot to end, then run the flows inside without heartbeats; with a configured
        Prefect server, change nothing. Every Prefect call of the command belongs inside: a call made
        during the boot would start the server a second time, racing this one (Prefect marks the
        server running before it answers)."""
        if self._thread is None:
            yield
            return
        self._thread.join()
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield
