"""The test tiers, kept true by construction (conftest.py installs these hooks).

A test is in the fast tier (`make test-fast`) unless it carries one of TIER_MARKS. A fast test runs in
this process only: it starts no server, no Python process, and trains for seconds. Three checks keep a
slow test from landing there unmarked, in `make test` as in `make test-fast`:

- at collection, a test that uses a server fixture and is not marked `integration` stops the session;
- while it runs, a fast test that starts a Python process (a studyflow command, a server, a tool of the
  environment, Prefect's temporary server, a Dask worker) fails at that call;
- a fast test that runs longer than FAST_TEST_BUDGET_S fails, naming its time.
"""

from __future__ import annotations

import multiprocessing.process
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

TIER_MARKS = ("slow", "integration", "faults", "load")

# Fixtures that start a server (a Prefect test server, PostgreSQL, an MLflow server, the native stack):
# a test using one, directly or through another fixture, is an integration test.
SERVER_FIXTURES = frozenset({"prefect_server", "postgres_url", "mlflow_server", "stack"})

# The longest a fast test may run (its call, without the session's shared set-up): its tiny trainings take
# a few seconds, up to 10 s on 2 cores shared with other work; the margin is for such a machine.
FAST_TEST_BUDGET_S = 20.0


class SlowTestInFastTier(AssertionError):
    """A test without a tier mark did what only a marked test may do."""


def tier_marks(item: pytest.Item) -> set[str]:
    return {mark.name for mark in item.iter_markers() if mark.name in TIER_MARKS}


def is_fast(item: pytest.Item) -> bool:
    return not tier_marks(item)


def unmarked_server_users(items: list[pytest.Item]) -> list[str]:
    """The tests that start a server through a fixture but are not marked integration."""
    return [f"{item.nodeid} (uses {', '.join(sorted(SERVER_FIXTURES & set(item.fixturenames)))})"
            for item in items
            if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())) and "integration" not in tier_marks(item)]


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
    raise SlowTestInFastTier(f"a fast-tier test started {what}: mark it slow, or integration if it starts a "
                             f"server ({', '.join(TIER_MARKS)}: pyproject.toml's markers)")


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
            _refuse(f"a Python process ({args if isinstance(args, str) else shlex.join(map(str, args))})",
                    started)
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
def pytest_runtest_makereport(item, call):
    report = yield
    if (call.when == "call" and report.passed and is_fast(item)
            and report.duration > FAST_TEST_BUDGET_S):
        report.outcome = "failed"
        report.longrepr = (f"a fast-tier test took {report.duration:.0f} s (budget {FAST_TEST_BUDGET_S:.0f} s): "
                           f"make it lighter, or mark it slow")
    return report
