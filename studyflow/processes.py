"""Which process is which: an identity that survives pid reuse, read from Linux's /proc.

A run records the identity of the process that has it open (`host:pid:start ticks`); a later check
tells a live owner from a dead one, on this host. The start time guards against a reused pid.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
from functools import lru_cache
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (after the command name, which may hold spaces and parentheses)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_ticks(pid: int) -> str | None:
    """The kernel's start time of a process (clock ticks since boot); None if there is no such process."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None  # field 22 of stat(5)


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def tree(pid: int) -> list[tuple[int, str]]:
    """The process and every process it started, directly or not, as (pid, start ticks)."""
    members, queue = [], [pid]
    while queue:
        current = queue.pop()
        started = start_ticks(current)
        if started is not None:
            members.append((current, started))
            queue.extend(
                int(entry.name)
                for entry in Path("/proc").iterdir()
                if entry.name.isdigit() and parent_pid(int(entry.name)) == current
            )
    return members


@lru_cache(maxsize=1)
def _identity(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{start_ticks(pid) or ''}"


def identity() -> str:
    """host:pid:start ticks of this process (computed once per process; a fork gets its own)."""
    return _identity(os.getpid())


def is_alive(token: str) -> bool | None:
    """True or False for a process of this host; None when the token names another host or is not one."""
    parts = token.rsplit(":", 2)
    if len(parts) != 3:
        return None
    host, pid, started = parts
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return (start_ticks(int(pid)) or "") == started


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with(parent_pid: int):
    """A subprocess preexec_fn: the child gets SIGTERM when the parent thread that started it ends
    (Linux's parent-death signal; it survives exec), and ends at once if the parent is already gone.
    Elsewhere it does nothing (the parent's own clean-up still stops its children)."""
    prctl = _prctl()  # looked up here: the child of a threaded process should do as little as it can

    def preexec() -> None:
        if prctl is None:
            return
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def _prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None
