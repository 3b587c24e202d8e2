"""Wall time and peak memory of `studyflow run study --profile quick`, in total and per part.

The study runs as a user runs it (the CLI, in a fresh process, on an empty embedded store); the
per-part times are read back from the parent runs it recorded in MLflow.
Run: .venv/bin/python -m bench.study_quick
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_results


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-study-"))
    env = {**os.environ, "STUDYFLOW_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    env.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "studyflow.cli", "run", "study", "--profile", "quick"],
                               env=env, capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    if completed.returncode != 0:
        print(completed.stderr[-3000:])
        raise SystemExit(f"the study failed (exit {completed.returncode})")
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    os.environ["STUDYFLOW_HOME"] = str(home)
    from studyflow import tracking

    client = tracking.connect()
    parts = {}
    for experiment in client.search_experiments():
        part = experiment.name.removeprefix(tracking.EXPERIMENT_PREFIX)
        for run in tracking.find_runs(client, part, "tags.`studyflow.run_level` = 'parent'"):
            parts[part] = (run.info.end_time - run.info.start_time) / 1000
    print(f"study --profile quick: {wall_s:.1f} s wall, peak memory {peak_rss_mb:.0f} MB")
    for part, seconds in parts.items():
        print(f"  {part}: {seconds:.1f} s ({seconds / wall_s:.0%} of the study)")
    write_results("study_quick", {"wall_s": wall_s, "peak_rss_mb": peak_rss_mb, "parts_s": parts})


if __name__ == "__main__":
    main()
