"""The start-up lever: imports and the command line in fresh processes, and when a real part's flow
and first task start on an empty store."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench import common
from bench.common import REPO_ROOT
from bench.tuning.plan import IMPORTS, Plan
from bench.tuning.workers import base_env


def timed_command(arguments: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    completed = subprocess.run(arguments, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments[1:])} exited {completed.returncode}: {completed.stderr[-1500:]}")
    return elapsed, completed.stdout


def startup_section(plan: Plan, workdir: Path, results: dict, with_study_run: bool) -> None:
    env = base_env()
    startup = {}
    print()
    for name in plan.imports:
        code = f"import time; t = time.perf_counter(); {IMPORTS[name]}; print(time.perf_counter() - t)"
        walls, import_times = [], []
        for _ in range(plan.startup_repeats):
            wall, output = timed_command([sys.executable, "-c", code], env)
            walls.append(wall)
            import_times.append(float(output.strip().splitlines()[-1]))
        startup[name] = {
            "import_s": common.median(import_times),
            "process_s": common.median(walls),
            "process_s_repeats": walls,
        }
        print(
            f"startup    import {name:<30} {common.median(import_times):6.2f} s  "
            f"(whole process {common.median(walls):.2f} s)"
        )
    walls = [
        timed_command([sys.executable, "-m", "studyflow.entrypoints.cli", "run", "pca", "--help"], env)[0]
        for _ in range(plan.startup_repeats)
    ]
    startup["studyflow run pca --help"] = {"process_s": common.median(walls), "process_s_repeats": walls}
    print(f"startup    {'studyflow run pca --help':<37} {common.median(walls):6.2f} s  (whole process)")
    if with_study_run:
        startup["studyflow run pca --profile quick"] = pca_quick_run(workdir)
    results["startup"] = startup


def pca_quick_run(workdir: Path) -> dict:
    """A real part on an empty store, with Prefect's local mode: when its flow and first task appear."""
    home = workdir / "pca-home"
    env = {**base_env(), "STUDYFLOW_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    for name in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL"):
        env.pop(name, None)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "studyflow.entrypoints.cli", "run", "pca", "--profile", "quick"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    marks, tail = {}, []
    for line in process.stdout:
        now = time.perf_counter() - started
        if "Beginning flow run" in line:
            marks.setdefault("flow_started_s", now)
        if "Task run '" in line:  # the first task's first log line: at the latest its end
            marks.setdefault("first_task_logged_s", now)
        tail = (tail + [line.rstrip()])[-20:]
    returncode = process.wait()
    total = time.perf_counter() - started
    if returncode != 0:
        raise RuntimeError(f"studyflow run pca --profile quick exited {returncode}:\n" + "\n".join(tail))
    result = {"total_s": total, **marks}
    shown = ", ".join(f"{key.removesuffix('_s').replace('_', ' ')} at {value:.1f} s" for key, value in marks.items())
    print(
        f"startup    {'studyflow run pca --profile quick':<37} {total:6.2f} s total "
        f"({shown or 'no Prefect log lines seen'})"
    )
    return result
