"""The test tiers, kept true by construction (conftest.py installs these hooks).

A test is in the fast tier (`make test-fast`) unless it carries one of TIER_MARKS. A fast test runs in
this process only: it starts no server, no Python process, and trains for seconds. Three checks keep a
slow test from landing there unmarked, in `make test` as in `make test-fast`:

- at collection, a test that uses a server fixture and is not marked `integration` stops the session;
- while it runs, a fast test that starts a Python process (a studyflow command, a server, a tool of the
  environment, Prefect's temporary server, a Dask worker) fails at that call;
- a fast test that uses more CPU than FAST_TEST_CPU_BUDGET_S (its process's, every thread), or runs
  longer than FAST_TEST_WALL_BUDGET_S, fails, naming its time.
"""

from __future__ import annotations

import multiprocessing.process
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

TIER_MARKS = ("slow", "integration", "faults", "load")

# Fixtures that start a server (a Prefect test server, PostgreSQL, an MLflow server, the native stack):
# a test using one, directly or through another fixture, is an integration test.
SERVER_FIXTURES = frozenset({"prefect_server", "postgres_url", "mlflow_server", "stack"})

# What a fast test may take (its call, without the session's shared set-up). Its tiny trainings take
# seconds of CPU (4.6 s at most here); on the clock they take what the machine's other work leaves them
# (14 s at most here, at a load of 8 on 2 cores), so the clock's budget is a wide one.
FAST_TEST_CPU_BUDGET_S = 10.0
FAST_TEST_WALL_BUDGET_S = 60.0


class SlowTestInFastTier(AssertionError):
    """A test without a tier mark did what only a marked test may do."""


def tier_marks(item: pytest.Item) -> set[str]:
    return {mark.name for mark in item.iter_markers() if mark.name in TIER_MARKS}


def is_fast(item: pytest.Item) -> bool:
    return not tier_marks(item)


def unmarked_server_users(items: list[pytest.Item]) -> list[str]:
    """The tests that start a server through a fixture but are not marked integration."""
    return [
        f"{item.nodeid} (uses {', '.join(sorted(SERVER_FIXTURES & set(item.fixturenames)))})"
        for item in items
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())) and "integration" not in tier_marks(item)
    ]


def starts_python(args) -> bool:
    """Whether `args` (as given to subprocess.Popen) starts a Python interpreter or a Python script."""
    argv = shlex.split(args) if isinstance(args, str) else [str(arg) for arg in args]
    if not argv:
        return False
    executable = shutil.which(argv[0]) or argv[0]
    if Path(executable).name.startswith("python"):
        return True
    try:
        with open(executable, "rb") as program:
            first_line = program.readline(200)
    except OSError:
        return False
    return first_line.startswith(b"#!") and b"python" in first_line


def _refuse(what: str, started: list[str]):
    started.append(what)
    raise SlowTestInFastTier(
        f"a fast-tier test started {what}: mark it slow, or integration if it starts a "
        f"server ({', '.join(TIER_MARKS)}: pyproject.toml's markers)"
    )


@pytest.fixture(autouse=True)
def fast_tier_guard(request, monkeypatch):
    """In a fast test, starting a Python process (subprocess or multiprocessing) fails the test; other
    programs (git, bash, hadolint) are quick and start no server."""
    if not is_fast(request.node):
        yield
        return
    started: list[str] = []
    popen_init = subprocess.Popen.__init__

    def guarded_popen_init(self, args, *rest, **kwargs):
        if starts_python(kwargs.get("executable") or args):
            _refuse(f"a Python process ({args if isinstance(args, str) else shlex.join(map(str, args))})", started)
        popen_init(self, args, *rest, **kwargs)

    def guarded_process_start(process):
        _refuse(f"a process through multiprocessing ({process.name})", started)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded_popen_init)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", guarded_process_start)
    yield
    # Also when the code under test caught the refusal and went on.
    assert not started, f"a fast-tier test started {started[0]}"


def pytest_collection_modifyitems(config, items):
    unmarked = unmarked_server_users(items)
    if unmarked:
        raise pytest.UsageError("tests that start a server must be marked integration:\n  " + "\n  ".join(unmarked))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    started = time.process_time()
    try:
        return (yield)
    finally:
        item.user_properties.append(("cpu_s", round(time.process_time() - started, 2)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == "call" and report.passed and is_fast(item):
        cpu_s = dict(item.user_properties).get("cpu_s", 0.0)
        if cpu_s > FAST_TEST_CPU_BUDGET_S or report.duration > FAST_TEST_WALL_BUDGET_S:
            report.outcome = "failed"
            report.longrepr = (
                f"a fast-tier test took {cpu_s:.0f} s of CPU and {report.duration:.0f} s (budgets "
                f"{FAST_TEST_CPU_BUDGET_S:.0f} s and {FAST_TEST_WALL_BUDGET_S:.0f} s): make it "
                "lighter, or mark it slow"
            )
    return report
