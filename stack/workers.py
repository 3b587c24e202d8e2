"""The stack's Prefect workers: process workers on the work pool `studyflow`, worker-1, worker-2, ...
(`up` starts one, `worker start` one more each time); their flow runs inherit their environment,
which points them at the stack's MLflow, Optuna database and Dask scheduler."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

from stack.bookkeeping import spawn, tail
from stack.layout import REPO_ROOT, VENV_BIN, WORK_POOL, StackError, base_env, optuna_storage, pids_dir
from studyflow.startup import ServerStartError, wait_until_ready


def worker_names() -> list[str]:
    return sorted((path.stem for path in pids_dir().glob("worker-*.json")), key=lambda name: int(name.split("-")[1]))


def start_worker(settings: dict, tracking_uri: str | None = None, wait: bool = True) -> str:
    """One more process worker on the pool; its flow runs inherit its environment."""
    taken = {int(name.split("-")[1]) for name in worker_names()}
    index = next(number for number in range(1, len(taken) + 2) if number not in taken)
    name = f"worker-{index}"
    env = base_env(settings)
    env.update(
        {
            "MLFLOW_TRACKING_URI": tracking_uri or settings["mlflow_url"],
            "STUDYFLOW_CODE_DIR": str(REPO_ROOT),  # the pull step of prefect.yaml runs the code from here
            "STUDYFLOW_OPTUNA_STORAGE": optuna_storage(settings),  # sweeps' studies where optuna-dashboard reads them
            **({"STUDYFLOW_DASK_ADDRESS": settings["dask_address"]} if settings.get("dask_workers") else {}),
            "PREFECT_WORKER_QUERY_SECONDS": os.environ.get("PREFECT_WORKER_QUERY_SECONDS", "2"),
        }
    )
    worker_name = f"{socket.gethostname()}-{name}-{os.getpid()}"
    process = spawn(
        name,
        [
            # --limit 1: a flow run uses both cores; run more at once with more workers.
            str(VENV_BIN / "prefect"),
            "worker",
            "start",
            "--pool",
            WORK_POOL,
            "--type",
            "process",
            "--name",
            worker_name,
            "--limit",
            "1",
            "--install-policy",
            "never",
        ],
        env,
    )
    if wait:
        _wait_worker_online(name, worker_name, process, settings)
    print(f"{name}     polling work pool {WORK_POOL!r} (tracking {env['MLFLOW_TRACKING_URI']})")
    _warn_if_unreachable(env["MLFLOW_TRACKING_URI"])
    return name


def _warn_if_unreachable(tracking_uri: str) -> None:
    """Say so now: each flow run of this worker would fail on it (studyflow.tracking.connect)."""
    try:
        with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=5):
            return
    except (urllib.error.URLError, OSError) as exc:
        print(
            f"warning: MLflow tracking server {tracking_uri} is unreachable ({exc}); this worker's "
            "flow runs will fail until it answers",
            file=sys.stderr,
        )


def _wait_worker_online(name: str, worker_name: str, process: subprocess.Popen, settings: dict) -> None:
    """Until the Prefect server lists the worker on the pool, within the start-up budget that every
    server of the stack has (STUDYFLOW_START_TIMEOUT): the worker imports Prefect before it polls."""
    url = f"{settings['prefect_api_url']}/work_pools/{WORK_POOL}/workers/filter"

    def online() -> bool:
        request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return any(worker["name"] == worker_name for worker in json.load(response))
        except (urllib.error.URLError, OSError):
            return False

    try:
        wait_until_ready(name, online, exited=process.poll)
    except ServerStartError as exc:
        raise StackError(f"{name} did not come online ({exc}); its log ends:\n{tail(name)}") from None
