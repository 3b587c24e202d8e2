"""What every benchmark shares: the command line's --quick and --out, the machine's description,
medians, and the JSON result file."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from studyflow.machine import cpu_flags, cpuinfo

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = RESULTS_DIR.parent.parent
# MNIST's and Fashion-MNIST's sets alike: what a paper profile's train_size/test_size None means
FULL_TRAIN_IMAGES, FULL_TEST_IMAGES = 60_000, 10_000


def add_benchmark_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--quick and --out, the two options every benchmark takes."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny data, 1 epoch and the fewest repeats and trials: a smoke test of the same code "
        "path in seconds to a minute; its figures are not measurements",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="folder of the JSON result (default: bench/results/; with --quick, a new temporary "
        "folder, so that a smoke test never overwrites the committed figures)",
    )
    return parser


def parse_arguments(parser: argparse.ArgumentParser, quick_defaults: dict) -> argparse.Namespace:
    """Parse the command line; with --quick, `quick_defaults` replace the defaults (an option given
    on the command line still wins)."""
    args = parser.parse_args()
    if args.quick:
        parser.set_defaults(**quick_defaults)
        args = parser.parse_args()
        print("--quick: a smoke test on tiny data; its figures are not measurements", flush=True)
    return args


def recorded_options(args: argparse.Namespace) -> dict:
    """The options that set a benchmark's work, for its result (without --quick, --out and where its
    store was kept)."""
    return {key: value for key, value in vars(args).items() if key not in ("quick", "out", "home")}


def isolated_home(prefix: str, kept: str | None = None) -> Path:
    """A studyflow home (tracking store, caches) for this process, with no tracking server: a new
    temporary one, or `kept`, a folder a benchmark is told to keep (created if missing)."""
    if kept:
        home = Path(kept).resolve()
        home.mkdir(parents=True, exist_ok=True)
    else:
        home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["STUDYFLOW_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    return home


# The CPU's extensions that decide training speed here: AVX-512 for float32, native bfloat16
# (AVX512_BF16, AMX) for mixed_bfloat16 (studyflow's precision=auto uses it only where present).
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_line() -> str:
    """The CPU named with its speed-relevant flags, for a benchmark's printout."""
    flags = [flag for flag in cpu_flags() if flag in SPEED_FLAGS]
    return f"{cpuinfo('model name') or 'unknown CPU'}, {os.cpu_count()} cores, flags: {' '.join(flags) or 'none'}"


@contextlib.contextmanager
def saturated_cores(per_core: int = 2):
    """Busy processes, `per_core` for each core, as a loaded machine has; stopped however the block ends."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(per_core * (os.cpu_count() or 1))
    ]
    try:
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait(timeout=30)


def machine() -> dict:
    versions = {}
    for package in ("tensorflow-cpu", "keras", "numpy", "mlflow", "prefect", "optuna", "scikit-learn"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpuinfo("model name") or "unknown",
        "cpu_flags": [flag for flag in cpu_flags() if flag in SPEED_FLAGS],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "env": {
            name: os.environ[name] for name in ("OPENBLAS_CORETYPE", "TF_ENABLE_ONEDNN_OPTS") if os.environ.get(name)
        },
    }


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def run_studyflow(part: str, overrides: dict, profile: str = "paper") -> float:
    """`studyflow run <part> --profile <profile> --set NAME=VALUE...` in its own process, as a user runs
    it (this benchmark's STUDYFLOW_HOME); its wall seconds. A failure raises with the end of its stderr."""
    command = [
        sys.executable,
        "-m",
        "studyflow.entrypoints.cli",
        "run",
        part,
        "--profile",
        profile,
        *(f"--set={key}={json.dumps(value)}" for key, value in overrides.items()),
    ]
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=os.environ)
    if finished.returncode != 0:
        raise RuntimeError(
            f"studyflow run {part} {overrides} failed ({finished.returncode}): {finished.stderr[-2000:]}"
        )
    return time.perf_counter() - started


def epoch_ends_s(client, run_id: str) -> list[float]:
    """When each epoch of a training run ended (after its test pass), in seconds: the timestamps of
    its per-epoch metrics in MLflow, logged once per epoch."""
    history = sorted(client.get_metric_history(run_id, "train_loss"), key=lambda metric: metric.step)
    return [metric.timestamp / 1000 for metric in history]


def results_dir(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    return Path(tempfile.mkdtemp(prefix="bench-quick-")) if args.quick else RESULTS_DIR


def write_results(name: str, results: dict, args: argparse.Namespace) -> Path:
    """`<name>.json` in the folder `args` name (see results_dir), with the machine's description."""
    folder = results_dir(args)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    payload = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **({"quick": True} if args.quick else {}),
        "machine": machine(),
        "results": results,
    }
    path.write_text(json.dumps(payload, indent=2, default=float))
    print(f"results written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return path
