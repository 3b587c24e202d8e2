"""What every benchmark shares: the machine's description, medians, and the JSON result file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("tensorflow-cpu", "keras", "numpy", "mlflow", "prefect", "optuna", "scikit-learn"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return {"cores": os.cpu_count(), "cpu_model": cpu_model, "python": sys.version.split()[0],
            "platform": platform.platform(), "versions": versions,
            "env": {name: os.environ.get(name) for name in ("OPENBLAS_CORETYPE", "TF_ENABLE_ONEDNN_OPTS") if os.environ.get(name)}}


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def write_results(name: str, results: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {"benchmark": name, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), "results": results}
    path.write_text(json.dumps(payload, indent=2, default=float))
    print(f"results written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return path
