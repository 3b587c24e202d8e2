"""The start-up budget of every local server a command starts, and how a slow or failed start is told.

Prefect's temporary server, a local Dask cluster, the scoring server, optuna-dashboard and the UIs of
`studyflow ui` all start in processes that import large packages (and Prefect's server migrates a
new database first). On a quiet 2-core machine that takes seconds; on a loaded one (another command,
an install, a browser) it takes many times longer, and Prefect's own default budget (20 s, counted
in its own sleeps) made every command fail there. So each start here gets one wall-clock budget,
`STUDYFLOW_START_TIMEOUT` seconds (default 180), says once what it waits for when it takes longer
than a few seconds, and fails as a StudyflowError: one line naming the server, the cause and the
remedy, never a traceback. Stopping what was started is the caller's job (each caller owns its
process).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from studyflow.errors import ConfigError, StudyflowError

START_TIMEOUT_ENV = "STUDYFLOW_START_TIMEOUT"
DEFAULT_START_TIMEOUT_S = 180.0
NOTICE_AFTER_S = 5.0  # a start quicker than this says nothing
POLL_INTERVAL_S = 0.25


class ServerStartError(StudyflowError, RuntimeError):
    """A local server did not start within its budget, or its process ended before it answered."""


def start_budget() -> float:
    """Seconds a local server may take to answer: STUDYFLOW_START_TIMEOUT, else 180."""
    text = os.environ.get(START_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_START_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{START_TIMEOUT_ENV}={text!r} is not a positive number of seconds")
    return seconds


def budget_remedy() -> str:
    return f"on a busy machine, give it longer with {START_TIMEOUT_ENV}=<seconds> (now {start_budget():g})"


def notice(what: str) -> None:
    print(
        f"[studyflow] waiting for {what} to start (up to {start_budget():g} s; {START_TIMEOUT_ENV} sets it)",
        file=sys.stderr,
        flush=True,
    )


@contextmanager
def slow_start_notice(what: str, after_s: float = NOTICE_AFTER_S) -> Iterator[None]:
    """Around a start that blocks: one line if it is still going after `after_s` seconds."""
    timer = threading.Timer(after_s, notice, args=(what,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def wait_until_ready(
    what: str, is_ready: Callable[[], bool], *, exited: Callable[[], int | None] = lambda: None, remedy: str = ""
) -> float:
    """Poll `is_ready` until it is true; the seconds it took. ServerStartError once the budget is spent
    or once `exited` returns the exit code of a process that ended before it answered."""
    budget = start_budget()
    started = time.monotonic()
    told = False
    while True:
        if is_ready():
            return time.monotonic() - started
        code = exited()
        if code is not None:
            raise ServerStartError(
                f"{what} exited with code {code} before it answered" + (f"; {remedy}" if remedy else "")
            )
        waited = time.monotonic() - started
        if waited >= budget:
            raise ServerStartError(
                f"{what} did not answer within {budget:g} s; " + (f"{remedy}, or " if remedy else "") + budget_remedy()
            )
        if not told and waited >= NOTICE_AFTER_S:
            notice(what)
            told = True
        time.sleep(POLL_INTERVAL_S)


def answers(url: str, timeout_s: float = 2.0) -> bool:
    """True when an HTTP GET of `url` answers with a status below 500."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False
