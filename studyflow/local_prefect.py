"""Prefect's temporary local server, booted in the background while a command imports its flow.

With no PREFECT_API_URL, Prefect starts a server in a subprocess the first time a flow runs: 6.5 s
here, after the 7 s a command spends importing TensorFlow, MLflow and the flow and connecting to
MLflow. Booting it first overlaps the two. The server is Prefect's own (`SubprocessASGIServer`, a
singleton per port): the flow finds it already started and uses it, and Prefect's exit hook stops
it, as it would have without us.
"""

from __future__ import annotations

import threading


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

        self.error: Exception | None = None
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
        except Exception as exc:  # the flow's own start retries it and reports the error its way
            self.error = exc

    def wait(self) -> None:
        """Block until the boot has ended; call before the first flow runs (two starts would race)."""
        if self._thread is not None:
            self._thread.join()
