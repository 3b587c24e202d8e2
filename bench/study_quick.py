"""Wall time and peak memory of `studyflow run study --profile quick`, in total and per part, in
float32 and in mixed_bfloat16 (which the default precision, auto, picks on CPUs with native
bfloat16).

The study runs as a user runs it (the CLI, in a fresh process, on an empty embedded store); the
per-part times and the models' mean test accuracies are read back from the runs it recorded in MLflow.
--quick runs only the perceptron part, in float32: the same command and read-back, in seconds.
Run: .venv/bin/python -m bench.study_quick [--precisions float32,mixed_bfloat16] [--parts mlp,cnn]
     [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import add_benchmark_arguments, cpu_line, parse_arguments, write_results

# Child-run metrics averaged per part, to see what a precision costs in accuracy.
ACCURACY_METRICS = ("test_accuracy", "task1_test_accuracy", "task2_test_accuracy")
QUICK = {"precisions": "float32", "parts": "perceptron"}


def run_study(precision: str, parts: list[str] | None) -> dict:
    home = Path(tempfile.mkdtemp(prefix="bench-study-"))
    env = {**os.environ, "STUDYFLOW_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    env.pop("MLFLOW_TRACKING_URI", None)
    chosen = ["--set", f"parts={json.dumps(parts)}"] if parts else []  # none: the study's own, every part
    log = home / "study.log"  # a file, not a pipe: a server the study leaves behind cannot hold it open
    started = time.perf_counter()
    with log.open("w") as output:
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "studyflow.entrypoints.cli",
                "run",
                "study",
                "--profile",
                "quick",
                "--set",
                f"precision={precision}",
                *chosen,
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    wall_s = time.perf_counter() - started
    if completed.returncode != 0:
        print(log.read_text()[-3000:])
        raise SystemExit(f"the study failed (exit {completed.returncode})")
    # ru_maxrss of children is the largest child so far: exact for the first study, a lower bound after.
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    os.environ["STUDYFLOW_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # set by the previous study's connect(): read this one's store
    from studyflow import tracking

    client = tracking.connect()
    parent_runs = f"tags.`{tracking.Tag.RUN_LEVEL}` = '{tracking.RunLevel.PARENT}'"
    parts_s, accuracy = {}, {}
    for experiment in client.search_experiments():
        part = experiment.name.removeprefix(tracking.EXPERIMENT_PREFIX)
        for run in tracking.find_runs(client, part, parent_runs):
            parts_s[part] = (run.info.end_time - run.info.start_time) / 1000
            children = tracking.member_runs(client, part, run.info.run_id)
            for metric in ACCURACY_METRICS:
                values = [child.data.metrics[metric] for child in children if metric in child.data.metrics]
                if values and part in ("mlp", "cnn", "mtl"):
                    accuracy[f"{part}/{metric}"] = statistics.fmean(values)
    print(f"study --profile quick, {precision}: {wall_s:.1f} s wall, peak memory {peak_rss_mb:.0f} MB")
    for part, seconds in parts_s.items():
        print(f"  {part}: {seconds:.1f} s ({seconds / wall_s:.0%} of the study)")
    print("  mean test accuracy: " + ", ".join(f"{key} {value:.4f}" for key, value in sorted(accuracy.items())))
    return {"wall_s": wall_s, "peak_rss_mb": peak_rss_mb, "parts_s": parts_s, "mean_accuracy": accuracy}


def main() -> None:
    parser = add_benchmark_arguments(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--parts", help="comma-separated parts to run (default: the whole study)")
    args = parse_arguments(parser, QUICK)
    print(cpu_line(), flush=True)  # what decides a part's speed: AVX-512 for float32, AVX512_BF16/AMX for bfloat16
    parts = args.parts.split(",") if args.parts else None
    results = {precision: run_study(precision, parts) for precision in args.precisions.split(",")}
    if {"float32", "mixed_bfloat16"} <= set(results):
        f32, bf16 = results["float32"], results["mixed_bfloat16"]
        results["float32_over_mixed_bfloat16_wall"] = f32["wall_s"] / bf16["wall_s"]
        results["float32_over_mixed_bfloat16_parts"] = {
            part: f32["parts_s"][part] / bf16["parts_s"][part]
            for part in ("mlp", "cnn", "mtl")
            if part in f32["parts_s"] and part in bf16["parts_s"]
        }
        ratios = results["float32_over_mixed_bfloat16_parts"]
        print(
            f"mixed_bfloat16 speed-up (float32 time / bf16 time): "
            f"study x{results['float32_over_mixed_bfloat16_wall']:.2f}; "
            + ", ".join(f"{part} x{ratio:.2f}" for part, ratio in ratios.items())
        )
    write_results("study_quick", results, args)


if __name__ == "__main__":
    main()
