"""Worker processes: each runs one spec (`python -m bench.tuning --worker SPEC`) in an environment
without the tuned variables, and hands its result back as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import REPO_ROOT
from bench.tuning.plan import TUNING_VARIABLES


def base_env() -> dict:
    env = {key: value for key, value in os.environ.items() if key not in TUNING_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_worker(name: str, spec: dict, env_extra: dict, workdir: Path) -> dict:
    """Run one worker process; its result, or the error with the tail of its output."""
    tag = "".join(char if char.isalnum() else "-" for char in name)
    spec_path, out_path = workdir / f"{tag}.spec.json", workdir / f"{tag}.out.json"
    spec_path.write_text(json.dumps({**spec, "out": str(out_path)}))
    print(f"... {name}", flush=True)
    started = time.perf_counter()
    env = {key: value for key, value in {**base_env(), **env_extra}.items() if value is not None}  # None: unset
    completed = subprocess.run(
        [sys.executable, "-m", "bench.tuning", "--worker", str(spec_path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0 or not out_path.exists():
        tail = (completed.stdout + completed.stderr)[-3000:]
        print(f"    FAILED (exit {completed.returncode}) after {elapsed:.0f} s:\n{tail}", flush=True)
        return {"error": f"exit {completed.returncode}: {tail}", "process_s": elapsed}
    print(f"    done in {elapsed:.0f} s", flush=True)
    return {**json.loads(out_path.read_text()), "process_s": elapsed, "env": env_extra}
