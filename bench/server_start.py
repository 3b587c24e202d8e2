"""How long Prefect's temporary server takes to answer, on a quiet machine and on saturated cores.

Each start is a command's own: a fresh process boots the server (studyflow.local_prefect, as every
`studyflow run` does) in a new Prefect home, so the server migrates a new database first, as on a
user's first command; then once more in the same home (a migrated database, every later command).
"Loaded" runs two busy processes per core beside it. The ratios say what a loaded machine costs;
the loaded seconds are what the start-up budget (STUDYFLOW_START_TIMEOUT, default 180 s) must cover.
Run: .venv/bin/python -m bench.server_start [--repeats 3] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time

from bench.common import (
    REPO_ROOT,
    add_benchmark_arguments,
    cpu_line,
    median,
    parse_arguments,
    saturated_cores,
    write_results,
)

# The seconds from the server's spawn to its first healthy answer (imports of the command excluded).
BOOT = """
import time
from studyflow.local_prefect import EarlyLocalServer
started = time.monotonic()
with EarlyLocalServer().ready():
    print(time.monotonic() - started)
"""
QUICK = {"repeats": 1}


def boot_s(prefect_home: str) -> float:
    env = {**os.environ, "PREFECT_HOME": prefect_home}
    env.pop("PREFECT_API_URL", None)
    finished = subprocess.run(
        [sys.executable, "-c", BOOT], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True
    )
    return float(finished.stdout.strip().splitlines()[-1])


def measure(repeats: int, loaded: bool) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"new_database_s": [], "migrated_database_s": []}
    with saturated_cores() if loaded else contextlib.nullcontext():
        time.sleep(1 if loaded else 0)  # the busy processes running before the first start
        for _ in range(repeats):
            home = tempfile.mkdtemp(prefix="bench-server-start-")
            times["new_database_s"].append(boot_s(home))
            times["migrated_database_s"].append(boot_s(home))
    return times


def main() -> None:
    parser = add_benchmark_arguments(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parse_arguments(parser, QUICK)
    print(cpu_line())
    results = {"quiet": measure(args.repeats, loaded=False), "loaded": measure(args.repeats, loaded=True)}
    for database in ("new_database_s", "migrated_database_s"):
        quiet, loaded = median(results["quiet"][database]), median(results["loaded"][database])
        results[f"{database.removesuffix('_s')}_loaded_over_quiet"] = loaded / quiet
        print(
            f"Prefect's temporary server, {database.removesuffix('_s').replace('_', ' ')}: quiet {quiet:.1f} s, "
            f"2 busy processes per core {loaded:.1f} s (median of {args.repeats}; x{loaded / quiet:.1f}); "
            f"slowest loaded {max(results['loaded'][database]):.1f} s"
        )
    write_results("server_start", results, args)


if __name__ == "__main__":
    main()
