"""`python -m bench.tuning`: run the selected sections and write tuning.json (see the package's doc)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import bench.tuning
import studyflow  # noqa: F401  (sets the libraries' environment defaults, inherited by every child process)
from bench import common
from bench.tuning.mlflow_logging import logging_section, run_logging_worker
from bench.tuning.plan import QUICK, SECTIONS, TRAINING_SECTIONS, Plan
from bench.tuning.startup import startup_section
from bench.tuning.training import run_training_worker, training_sections
from studyflow.machine import cpu_flags


def worker_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    started = time.perf_counter()
    result = run_logging_worker(spec) if spec["kind"] == "logging" else run_training_worker(spec)
    result["wall_s"] = time.perf_counter() - started
    Path(spec["out"]).write_text(json.dumps(result, default=float))


def main() -> None:
    parser = common.add_benchmark_arguments(
        argparse.ArgumentParser(
            prog="python -m bench.tuning",
            description=bench.tuning.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections (default: all)")
    parser.add_argument("--no-study-run", action="store_true", help="startup: skip `studyflow run pca --profile quick`")
    parser.add_argument("--out-dir", dest="out", help=argparse.SUPPRESS)  # the former name of --out
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker)
        return
    selected = {section.strip() for section in args.only.split(",") if section.strip()}
    unknown = selected - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    plan = QUICK if args.quick else Plan()
    workdir = Path(tempfile.mkdtemp(prefix="bench-tuning-"))
    if args.quick:
        print("--quick: a smoke test with tiny step counts; its figures are not measurements")
    started = time.perf_counter()
    results = {
        "quick": args.quick,
        "sections": sorted(selected),
        "plan": dataclasses.asdict(plan),
        "cpu_flags": cpu_flags(),
    }
    parts = []
    if selected & TRAINING_SECTIONS:
        parts.append(
            ("training", lambda: training_sections(selected, plan, workdir, results, default_at_end=not args.quick))
        )
    if "logging" in selected:
        parts.append(("logging", lambda: logging_section(plan, workdir, results)))
    if "startup" in selected:
        parts.append(("startup", lambda: startup_section(plan, workdir, results, not args.no_study_run)))
    for name, part in parts:
        try:
            part()
        except Exception as exc:  # write what was measured even if one part breaks
            print(f"{name}: FAILED {type(exc).__name__}: {exc}")
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    errors = [row for row in results.get("rows", []) if "error" in row]
    errors += [name for name, worker in results.get("workers", {}).items() if "error" in worker]
    errors += [name for name in ("training", "logging", "startup") if "error" in results.get(name, {})]
    results["wall_s"] = time.perf_counter() - started
    print(f"\ntuning: {results['wall_s'] / 60:.1f} min wall, {len(errors)} error(s); work files in {workdir}")
    common.write_results("tuning", results, args)  # --quick without --out: a temporary folder
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
