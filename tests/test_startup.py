"""The start-up budget of the local servers a command starts (studyflow.startup): its setting, the
line said while waiting, and the one-line failures."""

from __future__ import annotations

import threading
import time

import pytest

from studyflow import startup
from studyflow.errors import ConfigError


def test_the_budget_is_180_s_unless_set_and_a_bad_setting_is_refused(monkeypatch):
    monkeypatch.delenv(startup.START_TIMEOUT_ENV, raising=False)
    assert startup.start_budget() == 180
    monkeypatch.setenv(startup.START_TIMEOUT_ENV, "600")
    assert startup.start_budget() == 600
    for bad in ("0", "-5", "soon", "nan", "inf"):
        monkeypatch.setenv(startup.START_TIMEOUT_ENV, bad)
        with pytest.raises(ConfigError, match="STUDYFLOW_START_TIMEOUT"):
            startup.start_budget()


def test_a_slow_start_says_once_what_it_waits_for(monkeypatch, capsys):
    monkeypatch.setattr(startup, "NOTICE_AFTER_S", 0.2)
    monkeypatch.setattr(startup, "POLL_INTERVAL_S", 0.05)
    ready_at = time.monotonic() + 0.8
    waited = startup.wait_until_ready("the test server", lambda: time.monotonic() >= ready_at)
    assert waited >= 0.7
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["[studyflow] waiting for the test server to start (up to 180 s; STUDYFLOW_START_TIMEOUT sets it)"]


def test_a_quick_start_says_nothing(capsys):
    startup.wait_until_ready("the test server", lambda: True)
    with startup.slow_start_notice("the test server"):
        pass
    assert capsys.readouterr().err == ""


def test_past_the_budget_the_error_names_the_server_the_budget_and_both_remedies(monkeypatch):
    monkeypatch.setenv(startup.START_TIMEOUT_ENV, "0.5")
    with pytest.raises(startup.ServerStartError) as raised:
        startup.wait_until_ready("the test server", lambda: False, remedy="is port 1 free?")
    assert str(raised.value) == (
        "the test server did not answer within 0.5 s; is port 1 free?, or on a busy machine, "
        "give it longer with STUDYFLOW_START_TIMEOUT=<seconds> (now 0.5)"
    )


def test_a_server_that_exits_before_it_answers_fails_at_once_with_its_exit_code(monkeypatch):
    monkeypatch.setenv(startup.START_TIMEOUT_ENV, "60")
    started = time.monotonic()
    with pytest.raises(startup.ServerStartError, match="the test server exited with code 3 before it answered"):
        startup.wait_until_ready("the test server", lambda: False, exited=lambda: 3)
    assert time.monotonic() - started < 5  # not the whole budget


def test_a_blocking_start_is_told_while_it_blocks(monkeypatch, capsys):
    done = threading.Event()
    with startup.slow_start_notice("the test cluster", after_s=0.1):
        done.wait(0.5)
    assert "waiting for the test cluster to start" in capsys.readouterr().err
