"""How a run ends: FINISHED when its block ends, FAILED with the exception, KILLED when the work was
stopped from outside (Ctrl-C, SIGTERM, an exit), and a run left open closed with its reason. Used by
every run's block (studyflow.tracking.runs) and by what closes runs others left RUNNING (doctor,
the fan-out's gather, the sweeps).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import RunStatus, RunTag

from studyflow.tracking.names import Tag
from studyflow.tracking.store import server_problem


@contextmanager
def ending(client: MlflowClient, run_id: str, closed: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """End the run when the block ends: FINISHED, FAILED with the exception, or KILLED if interrupted;
    `closed()` true: the block ended the run itself, and that end stays."""
    try:
        yield
    except BaseException as exc:
        reason = stop_reason(exc)
        if reason is not None:
            close_run(client, run_id, RunStatus.KILLED, reason)
        else:
            close_run(client, run_id, RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    else:
        if not closed():
            client.set_terminated(run_id, status="FINISHED")


def stop_reason(exc: BaseException) -> str | None:
    """Why the work was stopped from outside (a signal, an exit), or None for a failure of its own.

    SIGTERM reaches a run as the command line's KeyboardInterrupt("signal 15") or, inside a flow run
    that Prefect's engine watches, as Prefect's TerminationSignal (named, not imported: tracking does
    not depend on Prefect)."""
    signal_number = getattr(exc, "signal", None) if type(exc).__name__ == "TerminationSignal" else None
    if isinstance(exc, KeyboardInterrupt) and exc.args and str(exc.args[0]).startswith("signal "):
        signal_number = int(str(exc.args[0]).split()[1])
    if signal_number == signal.SIGINT:
        return "interrupted (SIGINT: Ctrl-C)"
    if signal_number is not None and (isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "TerminationSignal"):
        return f"terminated ({signal.Signals(signal_number).name})"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (SIGINT: Ctrl-C)"
    if isinstance(exc, SystemExit):
        return f"interrupted: the process exited ({exc.code})"
    return None


def close_run(
    client: MlflowClient, run_id: str, status: int | str, reason: str, tags: dict[str, Any] | None = None
) -> bool:
    """End a run that is still RUNNING, with the reason (and `tags`); one already ended keeps its end.

    Never raises: closing bookkeeping must not hide the failure that led here. A tracking server
    that does not answer is not waited for (MLflow's retries would hold every open run's close for
    minutes); `studyflow doctor` closes the run as KILLED once the server is back."""
    status_text = status if isinstance(status, str) else RunStatus.to_string(status)
    uri = client.tracking_uri
    if uri.startswith(("http://", "https://")) and server_problem(uri) is not None:
        print(
            f"[studyflow] MLflow run {run_id} stays RUNNING: the tracking server {uri} does not answer. "
            "`studyflow doctor` closes it as KILLED once the server is back.",
            file=sys.stderr,
        )
        return False
    try:
        if client.get_run(run_id).info.status != "RUNNING":
            return False
        client.log_batch(
            run_id,
            tags=[RunTag(key, str(value)[:5000]) for key, value in {**(tags or {}), Tag.END_REASON: reason}.items()],
        )
        client.set_terminated(run_id, status=status_text)
        return True
    except Exception as exc:
        print(f"[studyflow] could not close MLflow run {run_id}: {exc}", file=sys.stderr)
        return False
