"""What `make compose-check` verifies from the host, through the stack's published ports on 127.0.0.1:
the flow run is Completed in Prefect; its MLflow run is there with metrics and a figure artifact
(downloaded through the MLflow server); the Prefect UI, MLflow UI, Dask dashboard and Optuna dashboard
answer. Standard library only: it runs with the host's python3, without the project's venv.

    python3 stack/compose_probe.py FLOW_RUN_ID
    # ports from MLFLOW_PORT, PREFECT_PORT, DASK_DASHBOARD_PORT, OPTUNA_DASHBOARD_PORT
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
import urllib.request

EXPERIMENT = "studyflow-perceptron"
FLOW_RUN_TAG = "studyflow.prefect_flow_run_id"


def url(port_variable: str, default: int, path: str) -> str:
    return f"http://127.0.0.1:{os.environ.get(port_variable, default)}{path}"


def get(address: str, data: dict | None = None) -> bytes:
    request = urllib.request.Request(
        address, data=None if data is None else json.dumps(data).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()
    except OSError as exc:  # HTTPError and URLError included
        raise SystemExit(f"compose-check: FAILED: {address}: {exc}") from None


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"compose-check: FAILED: {what}")
    print(f"  ok  {what}")


def main(flow_run_id: str) -> None:
    flow_run = json.loads(get(url("PREFECT_PORT", 4200, f"/api/flow_runs/{flow_run_id}")))
    check(
        flow_run["state"]["type"] == "COMPLETED",
        f"Prefect flow run {flow_run['name']} ({flow_run_id}) is {flow_run['state']['name']}",
    )

    mlflow = lambda path, data=None: json.loads(get(url("MLFLOW_PORT", 5000, path), data))  # noqa: E731
    experiment = mlflow(
        "/api/2.0/mlflow/experiments/get-by-name?" + urllib.parse.urlencode({"experiment_name": EXPERIMENT})
    )["experiment"]
    runs = mlflow(
        "/api/2.0/mlflow/runs/search",
        {"experiment_ids": [experiment["experiment_id"]], "filter": f"tags.`{FLOW_RUN_TAG}` = '{flow_run_id}'"},
    ).get("runs", [])
    parent_of = {
        run["info"]["run_id"]: {tag["key"]: tag["value"] for tag in run["data"].get("tags", [])}.get(
            "mlflow.parentRunId"
        )
        for run in runs
    }
    parents = [run for run in runs if parent_of[run["info"]["run_id"]] is None]
    check(len(parents) == 1, f"MLflow: one parent run in {EXPERIMENT} tagged with the flow run (found {len(parents)})")
    parent = parents[0]["info"]
    check(
        parent["status"] == "FINISHED",
        f"MLflow: parent run {parent['run_name']} ({parent['run_id']}) is {parent['status']}",
    )
    children = [run for run in runs if parent_of[run["info"]["run_id"]] == parent["run_id"]]
    check(len(children) >= 1, f"MLflow: {len(children)} child run(s) under it (one per pair and seed)")
    for run in parents + children:
        metrics = {metric["key"] for metric in run["data"].get("metrics", [])}
        check(bool(metrics), f"MLflow: run {run['info']['run_name']} has metrics ({', '.join(sorted(metrics))})")

    figures = mlflow(
        "/api/2.0/mlflow/artifacts/list?" + urllib.parse.urlencode({"run_id": parent["run_id"], "path": "figures"})
    ).get("files", [])
    pngs = [entry["path"] for entry in figures if entry["path"].endswith(".png")]
    check(bool(pngs), f"MLflow: figure artifacts of the parent run: {', '.join(pngs)}")
    image = get(
        url(
            "MLFLOW_PORT",
            5000,
            "/get-artifact?" + urllib.parse.urlencode({"run_id": parent["run_id"], "path": pngs[0]}),
        )
    )
    check(image.startswith(b"\x89PNG"), f"MLflow: {pngs[0]} downloads as a PNG image ({len(image)} bytes)")

    for name, address in (
        ("Prefect UI", url("PREFECT_PORT", 4200, "/")),
        ("MLflow UI", url("MLFLOW_PORT", 5000, "/")),
        ("Dask dashboard", url("DASK_DASHBOARD_PORT", 8787, "/status")),
        ("Optuna dashboard", url("OPTUNA_DASHBOARD_PORT", 8080, "/")),
    ):
        page = get(address)
        check(
            b"<html" in page[:2000].lower() or b"<!doctype html" in page[:2000].lower(),
            f"{name} answers on {address} ({len(page)} bytes of HTML)",
        )
    api_url = json.loads(get(url("PREFECT_PORT", 4200, "/ui-settings")))["api_url"]
    check(api_url == url("PREFECT_PORT", 4200, "/api"), f"Prefect UI: its pages call the API at {api_url}")


if __name__ == "__main__":
    main(sys.argv[1])
