"""Running the `studyflow` command as a user does: this checkout's code, the venv's interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]
STUDYFLOW = [sys.executable, "-m", "studyflow.entrypoints.cli"]


def run_studyflow(
    *argv: str, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run a command to its end; its output captured as text."""
    return subprocess.run([*STUDYFLOW, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def start_studyflow(
    *argv: str, env: dict[str, str], log: IO, errors: IO | int = subprocess.STDOUT, cwd: Path = REPO
) -> subprocess.Popen:
    """Start a command in a session of its own (as a terminal's job: its processes can be found and
    signalled together), its output into `log` (and its errors into `errors` if given)."""
    return subprocess.Popen([*STUDYFLOW, *argv], cwd=cwd, env=env, stdout=log, stderr=errors, start_new_session=True)
