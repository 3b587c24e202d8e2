"""Trainings at once on Dask: one part's wall time with 1 process against 2 worker processes, and the
paper study's wall time projected for 1, 4 and 16 workers.

Measured: the mlp part with 8 trainings (MLP-1..4, seeds 0 and 1: the paper's architectures, two
replicates each), then the cnn part with 4 (CNN-1..4), on the quick profile, through the command
line's own entry (`studyflow run PART --set workers=N`, cli.main): once with workers=1 (one process,
TensorFlow on both cores), then with workers=2 (a local Dask cluster per part: 2 worker processes of
1 core each). Each set-up runs in a fresh process and a fresh studyflow home (its own store and step
results: nothing is reused between the two); its two commands share the process, so Python's,
TensorFlow's and Prefect's start-up is paid once per set-up. Printed: each part's time, its parent
run in MLflow (data loading, the cluster's start-up with its workers' imports, the trainings, the
summary and registration), and the process's wall time (the start-ups too); the ratio is 1-process
time / 2-worker time (> 1: the workers are faster). The set-ups run one after the other, so on a
shared machine each meets the load of its moment.

Projected: each part with several trainings (perceptron, mlp, cnn, mtl) runs once more with its
paper models, one after another (workers=1, quick sizes); each training's paper time is its warm
epoch (the time between its last two logged epochs, with their validation and test passes; its mean
epoch when it ran one) x the paper's epochs x (paper's training images / measured ones), plus its
run's time outside the epochs (building, recording). The perceptron's is its whole run x the
image ratio x the paper's iteration cap / the measured one (1000 / 100: an upper bound, as if every
pair ran to the cap and its recording grew with it; the part is seconds either way). A part
then takes its time outside the trainings (measured) + the makespan of its trainings on W workers
under longest-processing-time-first list scheduling (the longest training first, each to the worker
free first); parts run one after another, as the study runs them. The parts without trainings at
once (pca, inspect, report) are taken from the committed bench/results/study_quick.json (the quick
profile). The paper's MTL runs also log their models (a few hundred MB each), which the quick
sizes do not: not counted. Each worker is assumed to train at the measured one-process speed: workers with the cores
of this machine each (on 2 cores, 2 workers are what the ratio above measures).
--quick: 600 training images, 1 epoch, 1 MLP x 2 seeds and 2 CNNs; the projection from two models of
each part (one MTL model): the same path, its figures no measurement.
Run: .venv/bin/python -m bench.fan_out [--train-size N] [--epochs N] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    RESULTS_DIR,
    add_benchmark_arguments,
    epoch_ends_s,
    parse_arguments,
    recorded_options,
    write_results,
)
from bench.fan_out_schedule import paper_scale, paper_training_s, projected_wall_s

QUICK = {"mlps": "MLP-1", "cnns": "CNN-4,CNN-1", "train_size": 600, "test_size": 200, "epochs": 1}
# --quick projects from these models of each part instead of all of its paper models: two trainings to
# schedule per part, except the MTL part's one (its trainings cost the most).
QUICK_PROJECTION = {
    "perceptron": {"pairs": [[1, 0], [8, 3]]},
    "mlp": {"architectures": ("MLP-1", "MLP-4")},
    "cnn": {"architectures": ("CNN-4", "CNN-1")},
    "mtl": {"lambdas": [0.5], "include_single_task": False},
}
PROJECTED_WORKERS = (1, 4, 16)
FANNED_PARTS = ("perceptron", "mlp", "cnn", "mtl")  # study order
UNFANNED_PARTS = ("pca", "inspect", "report")


# ------------------------------------------------------------------------------ running parts

# One process runs the commands of one set-up in turn, as `studyflow run PART ...` would one by one,
# but pays Python's, TensorFlow's and Prefect's start-up once (tens of seconds on a loaded machine).
RUN_COMMANDS = """
import json, sys
from studyflow.entrypoints import cli
for argv in json.loads(sys.argv[1]):
    code = cli.main(argv)
    if code:
        sys.exit(code)
"""


def run_commands(commands: list[tuple[str, dict[str, object]]], label: str) -> dict:
    """`studyflow run PART --profile quick --set NAME=VALUE ...` for each (part, assignments), in
    turn in one fresh process and one fresh studyflow home; the process's wall time."""
    home = Path(tempfile.mkdtemp(prefix="bench-fan-"))
    env = {**os.environ, "STUDYFLOW_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    for name in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "STUDYFLOW_DASK_ADDRESS"):
        env.pop(name, None)
    argvs = [
        [
            "run",
            part,
            "--profile",
            "quick",
            *[
                f"--set={name}={value if isinstance(value, str) else json.dumps(value)}"
                for name, value in assignments.items()
            ],
        ]
        for part, assignments in commands
    ]
    log = home / "commands.log"  # a file, not a pipe: a server the process leaves behind cannot hold it open
    started = time.perf_counter()
    with log.open("w") as output:
        completed = subprocess.run(
            [sys.executable, "-c", RUN_COMMANDS, json.dumps(argvs)], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    wall_s = time.perf_counter() - started
    if completed.returncode != 0:
        print(log.read_text()[-3000:])
        raise SystemExit(f"{label} failed (exit {completed.returncode}); its log: {log}")
    return {"home": home, "wall_s": wall_s}


def read_part(home: Path, part: str) -> dict:
    """The part's parent run's duration and, per training (child run), its duration, epochs and epoch times."""
    os.environ["STUDYFLOW_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # set by the previous connect(): read this home's store
    from studyflow import tracking

    client = tracking.connect()
    parent_filter = f"tags.`{tracking.Tag.RUN_LEVEL}` = '{tracking.RunLevel.PARENT}'"
    (parent,) = tracking.find_runs(client, part, parent_filter)
    trainings = {}
    for child in tracking.member_runs(client, part, parent.info.run_id):
        metrics = child.data.metrics
        trainings[child.info.run_name] = {
            "run_s": _duration_s(child),
            "epochs": int(metrics.get("epochs_run", 1)),
            "epochs_s": metrics.get("train_time_s"),
            "warm_epoch_s": _warm_epoch_s(client, child),
        }
    return {"part_s": _duration_s(parent), "trainings": trainings}


def _duration_s(run) -> float:
    return (run.info.end_time - run.info.start_time) / 1000


def _warm_epoch_s(client, run) -> float | None:
    """The time between the run's last two epochs (their logged metrics); the mean epoch if it ran
    one (the first epoch also traces the model's graph); None for a run without epochs (perceptron)."""
    ends = epoch_ends_s(client, run.info.run_id)
    if len(ends) >= 2:
        return ends[-1] - ends[-2]
    return run.data.metrics.get("epoch_time_s")


# ------------------------------------------------------------------------------ the comparison


def compare(commands: dict[str, dict[str, object]]) -> dict:
    """The parts with workers=1, then with workers=2, each set-up in a fresh process and home; their
    times and ratios (1 process / 2 workers)."""
    result = {"process": {}}
    for workers in (1, 2):
        ran = run_commands(
            [(part, {**assignments, "workers": workers}) for part, assignments in commands.items()],
            f"workers={workers}",
        )
        result["process"][f"workers_{workers}_s"] = ran["wall_s"]
        for part in commands:
            read = read_part(ran["home"], part)
            result.setdefault(part, {})[f"workers_{workers}"] = {
                "part_s": read["part_s"],
                "trainings": len(read["trainings"]),
                "train_time_s": sum(t["epochs_s"] or 0.0 for t in read["trainings"].values()),
            }
    process = result["process"]
    process["ratio"] = process["workers_1_s"] / process["workers_2_s"]
    for part in commands:
        one, two = result[part]["workers_1"], result[part]["workers_2"]
        result[part]["ratio"] = one["part_s"] / two["part_s"]
        print(
            f"{part}, {one['trainings']} trainings: 1 process {one['part_s']:.1f} s, 2 workers {two['part_s']:.1f} s "
            f"(cluster start-up included): x{result[part]['ratio']:.2f}"
        )
    print(
        f"the process running {' then '.join(commands)}: 1 process {process['workers_1_s']:.1f} s, 2 workers "
        f"{process['workers_2_s']:.1f} s (start-up included): x{process['ratio']:.2f}"
    )
    return result


# ------------------------------------------------------------------------------ the paper projection


def project(sizes: dict[str, int], models: dict[str, dict] | None = None) -> dict:
    """Each fanned part with its paper models (or `models`' settings of the part), workers=1; the paper
    study's projected wall times."""
    measured = {
        part: dict(sizes) if part != "perceptron" else {k: v for k, v in sizes.items() if k != "epochs"}
        for part in FANNED_PARTS
    }
    for part, settings in (models or {}).items():
        measured[part].update(settings)
    ran = run_commands(list(measured.items()), "the projection's parts")
    parts = {}
    for part in FANNED_PARTS:
        read = read_part(ran["home"], part)
        images_ratio, paper_epochs = paper_scale(part, measured[part])
        trainings = {
            name: paper_training_s(training, images_ratio, paper_epochs) for name, training in read["trainings"].items()
        }
        overhead_s = max(0.0, read["part_s"] - sum(t["run_s"] for t in read["trainings"].values()))
        parts[part] = {
            "overhead_s": overhead_s,
            "trainings_s": sorted(trainings.values(), reverse=True),
            "paper_training_s": trainings,
            "measured": read,
            "images_ratio": images_ratio,
            "paper_epochs": paper_epochs,
        }
        print(
            f"  {part}: {len(trainings)} trainings, paper times "
            + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in trainings.items())
            + f"; outside them {overhead_s:.1f} s"
        )
    study_quick = json.loads((RESULTS_DIR / "study_quick.json").read_text())["results"]["float32"]["parts_s"]
    unfanned = {part: study_quick[part] for part in UNFANNED_PARTS}
    unfanned_s = sum(unfanned.values())
    walls = {str(workers): projected_wall_s(parts, unfanned_s, workers) for workers in PROJECTED_WORKERS}
    print(
        f"paper study projected (LPT list scheduling per part, parts in turn, {unfanned_s:.0f} s of pca, inspect "
        "and report from study_quick.json): "
        + ", ".join(
            f"{workers} worker{'s' if workers != '1' else ''} {seconds / 60:.1f} min"
            for workers, seconds in walls.items()
        )
        + f"; 1 / 16 workers: x{walls['1'] / walls['16']:.1f}"
    )
    return {
        "scheduling": "longest processing time first list scheduling, per part; parts one after another",
        "parts": parts,
        "unfanned_s": unfanned,
        "wall_s": walls,
    }


def quick_projection_models() -> dict[str, dict]:
    """QUICK_PROJECTION, each architecture named with its widths (the study's reference)."""
    from studyflow import reference

    models = {part: dict(settings) for part, settings in QUICK_PROJECTION.items()}
    for part in ("mlp", "cnn"):
        named = reference.named_architectures(part)
        models[part]["architectures"] = {name: named[name] for name in QUICK_PROJECTION[part]["architectures"]}
    return models


def main() -> None:
    parser = add_benchmark_arguments(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    parser.add_argument(
        "--mlps", default="MLP-1,MLP-2,MLP-3,MLP-4", help="MLPs of the comparison, each with seeds 0 and 1"
    )
    parser.add_argument("--cnns", default="CNN-1,CNN-2,CNN-3,CNN-4", help="CNNs of the comparison, seed 0")
    parser.add_argument("--train-size", type=int, help="training images (default: each part's quick profile)")
    parser.add_argument("--test-size", type=int, help="test images (default: each part's quick profile)")
    parser.add_argument("--epochs", type=int, help="epochs (default: each part's quick profile)")
    args = parse_arguments(parser, QUICK)
    from studyflow import reference

    sizes = {
        name: value
        for name, value in {"train_size": args.train_size, "test_size": args.test_size, "epochs": args.epochs}.items()
        if value is not None
    }
    mlps, cnns = reference.named_architectures("mlp"), reference.named_architectures("cnn")
    comparison = compare(
        {
            "mlp": {"architectures": {name: mlps[name] for name in args.mlps.split(",")}, "seeds": [0, 1], **sizes},
            "cnn": {"architectures": {name: cnns[name] for name in args.cnns.split(",")}, **sizes},
        }
    )
    projection = project(sizes, quick_projection_models() if args.quick else None)
    write_results(
        "fan_out", {"settings": recorded_options(args), "comparison": comparison, "projection": projection}, args
    )


if __name__ == "__main__":
    main()
