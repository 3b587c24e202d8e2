"""The native stack end to end: PostgreSQL, MLflow server, Prefect server and a worker, driven by the
documented commands (`stack/native.py up|worker|down`, `prefect deployment run`), checked through
the servers' REST APIs and PostgreSQL itself. The tests share one stack, started once; each test gets
it running with its default worker whatever the tests before it did (one brings it down, one swaps
its worker), so that each passes alone and in any order. (The wait for started servers to answer:
test_stack_wait_answering.py.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import PNG_SIGNATURE, free_port, native_stack

from studyflow import processes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
NATIVE = REPO_ROOT / "stack" / "native.py"
PREFECT = str(Path(sys.executable).parent / "prefect")
# one pair, at most 100 batch iterations, two seeds (replicates reach a deployment as a parameter like any
# other): seconds
QUICK_RUN = ["-p", "pairs=[[1,0]]", "-p", "max_epochs=100", "-p", "seeds=[0,1]"]
# Set by other test modules or by studyflow itself (mlflow.set_tracking_uri sets MLFLOW_TRACKING_URI,
# tracking.connect the HTTP retry settings): not passed on, so that the stack is the same whichever
# test files ran before this one.
NOT_INHERITED = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "PREFECT_API_URL",
    "PREFECT_HOME",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
)


native = native_stack()


def _postgres_installed() -> bool:
    try:
        native.postgres.pg_bin("pg_ctl")
        return True
    except native.StackError:
        return False


@pytest.fixture(scope="module")
def stack_home(tmp_path_factory):
    """The folder, free ports and environment of this module's native stack; the stack is brought
    down and the folder deleted at the end, whatever happens."""
    if not _postgres_installed():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/run must install it (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    # Not under pytest's tmp folder: as root, PostgreSQL runs as user `postgres`, who cannot enter it.
    folder = Path(tempfile.mkdtemp(prefix="studyflow-stack-"))
    folder.chmod(0o755)
    home = tmp_path_factory.mktemp("stack-home")
    env = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
    env.update(
        {
            "STUDYFLOW_STACK_DIR": str(folder / "stack"),
            "STUDYFLOW_HOME": str(home),  # what the flow runs write besides MLflow (data cache, reports)
            # Every port free, Dask's too: its defaults (8786, 8787) are what any other local cluster tries first.
            **{
                f"STUDYFLOW_{name}_PORT": str(free_port())
                for name in ("PG", "MLFLOW", "PREFECT", "SERVE", "DASHBOARD", "DASK", "DASK_DASHBOARD")
            },
        }
    )
    try:
        yield {"env": env, "dir": folder / "stack", "worker_swapped": False}
    finally:
        _native(env, "down", timeout=180)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def stack(stack_home):
    """The stack, up (started, or started again after a test brought it down) with one worker that
    tracks to the stack's MLflow (given back after a test swapped it)."""
    state, env = stack_home, stack_home["env"]
    if "settings" not in state or _native(env, "status").returncode != 0:  # not yet up, or a part stopped
        started = time.monotonic()
        result = _native(env, "up", timeout=420)
        assert result.returncode == 0, result.stdout + result.stderr
        state["up_seconds"] = time.monotonic() - started
        state["settings"] = json.loads((state["dir"] / "stack.json").read_text())
        state["cli_env"] = {
            **env,
            "PREFECT_API_URL": state["settings"]["prefect_api_url"],
            "PREFECT_HOME": str(state["dir"] / "prefect-home"),
        }
    if state["worker_swapped"]:
        stopped = _native(env, "worker", "stop")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        restarted = _native(env, "worker", "start")
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        state["worker_swapped"] = False
    return state


def _native(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(NATIVE), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
    )


def _run_deployment(stack: dict, name: str, *params: str) -> tuple[subprocess.CompletedProcess, str, float]:
    started = time.monotonic()
    result = subprocess.run(
        [PREFECT, "deployment", "run", name, *params, "--watch", "--watch-timeout", "240"],
        env=stack["cli_env"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    seconds = time.monotonic() - started
    match = re.search(r"UUID: ([0-9a-f-]{36})", result.stdout)
    assert match, result.stdout + result.stderr
    return result, match.group(1), seconds


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _flow_run(stack: dict, flow_run_id: str) -> dict:
    return _get(f"{stack['settings']['prefect_api_url']}/flow_runs/{flow_run_id}")


def test_up_serves_both_uis_and_registers_every_deployment(stack):
    settings = stack["settings"]
    for address in (settings["mlflow_url"], settings["prefect_ui_url"]):
        assert urllib.parse.urlsplit(address).hostname == "127.0.0.1"
    assert _get(settings["prefect_api_url"] + "/health") is True
    with urllib.request.urlopen(settings["mlflow_url"] + "/health", timeout=10) as response:
        assert response.status == 200
    deployments = _post(settings["prefect_api_url"] + "/deployments/filter", {})
    pool = _get(settings["prefect_api_url"] + "/work_pools/studyflow")
    assert pool["type"] == "process"
    flows = {flow["id"]: flow["name"] for flow in _post(settings["prefect_api_url"] + "/flows/filter", {})}
    registered = {f"{flows[item['flow_id']]}/{item['name']}": item for item in deployments}
    declared = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]
    assert len(registered) == len(declared), sorted(registered)
    for name in ("pca/quick", "perceptron/quick", "study/quick"):
        assert name in registered, sorted(registered)
        assert registered[name]["work_pool_name"] == "studyflow"
        assert registered[name]["parameters"] == {"profile": "quick"}
    studies = _get(f"http://127.0.0.1:{settings['ports']['dashboard']}/api/studies")  # optuna-dashboard
    assert studies["study_summaries"] == []  # the stack's own (empty) Optuna database
    status = _native(stack["env"], "status")
    assert status.returncode == 0, status.stdout + status.stderr
    print(f"\nstack up in {stack['up_seconds']:.0f} s")


def test_deployment_run_completes_on_the_worker_and_lands_in_the_postgres_backed_mlflow(stack):
    result, flow_run_id, seconds = _run_deployment(stack, "perceptron/quick", *QUICK_RUN)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert _flow_run(stack, flow_run_id)["state"]["type"] == "COMPLETED"
    print(f"\nprefect deployment run -> Completed in {seconds:.1f} s")

    api = stack["settings"]["mlflow_url"] + "/api/2.0/mlflow"
    experiment = _get(f"{api}/experiments/get-by-name?experiment_name=studyflow-perceptron")["experiment"]
    assert experiment["artifact_location"].startswith("mlflow-artifacts:")  # served by the server
    runs = _post(
        f"{api}/runs/search",
        {
            "experiment_ids": [experiment["experiment_id"]],
            "filter": f"tags.`studyflow.prefect_flow_run_id` = '{flow_run_id}'",
        },
    )["runs"]
    by_name = {run["info"]["run_name"]: run for run in runs}
    assert set(by_name) == {
        "perceptron-quick",
        "perceptron-1-vs-0-replicates",
        "perceptron-1-vs-0-seed-0",
        "perceptron-1-vs-0-seed-1",
    }, sorted(by_name)
    assert all(run["info"]["status"] == "FINISHED" for run in runs)
    parent, group, child = (
        by_name[name] for name in ("perceptron-quick", "perceptron-1-vs-0-replicates", "perceptron-1-vs-0-seed-0")
    )
    # two seeds: the seed runs are nested under the pair's replicate group, itself under the parent
    assert {tag["key"]: tag["value"] for tag in group["data"]["tags"]}["mlflow.parentRunId"] == parent["info"]["run_id"]
    assert {tag["key"]: tag["value"] for tag in child["data"]["tags"]}["mlflow.parentRunId"] == group["info"]["run_id"]
    assert "test_accuracy_ci95_low" in {metric["key"] for metric in group["data"]["metrics"]}
    params = {param["key"]: param["value"] for param in parent["data"]["params"]}
    assert params["max_epochs"] == "100" and params["profile"] == "quick" and params["seeds"] == "[0, 1]"
    tables = _get(f"{api}/artifacts/list?run_id={parent['info']['run_id']}&path=tables")["files"]
    assert "tables/perceptron_summary.csv" in {item["path"] for item in tables}  # one pair: no differences

    child_id = child["info"]["run_id"]
    history = _get(f"{api}/metrics/get-history?run_id={child_id}&metric_key=train_error")["metrics"]
    assert 1 <= len(history) <= 100 and [point["step"] for point in history] == list(range(1, len(history) + 1))
    metrics = {metric["key"]: metric["value"] for metric in child["data"]["metrics"]}
    assert metrics["test_accuracy"] > 0.9  # 1 vs 0 is easy within 100 iterations

    listed = _get(f"{api}/artifacts/list?run_id={child_id}&path=figures")["files"]
    assert "figures/weights.png" in {item["path"] for item in listed}
    download = (
        f"{stack['settings']['mlflow_url']}/get-artifact?"
        f"{urllib.parse.urlencode({'path': 'figures/weights.png', 'run_uuid': child_id})}"
    )
    with urllib.request.urlopen(download, timeout=30) as response:
        assert response.read(8) == PNG_SIGNATURE
    stored = (
        stack["dir"]
        / "mlflow-artifacts"
        / experiment["experiment_id"]
        / child_id
        / "artifacts"
        / "figures"
        / "weights.png"
    )
    assert stored.is_file()  # the server's artifact folder, not the worker's

    import psycopg

    with psycopg.connect(
        host="127.0.0.1",
        port=stack["settings"]["ports"]["postgres"],
        user="studyflow",
        password=native_password(stack),
        dbname="mlflow",
    ) as connection:
        row = connection.execute("SELECT status FROM runs WHERE run_uuid = %s", (child_id,)).fetchone()
    assert row == ("FINISHED",)


def native_password(stack: dict) -> str:
    return (stack["dir"] / "postgres" / "password").read_text().strip()


def test_a_worker_with_an_unreachable_tracking_server_fails_its_flow_runs_naming_the_url(stack):
    unreachable = f"http://127.0.0.1:{free_port()}"
    stack["worker_swapped"] = True  # the next test's `stack` starts the default worker again
    assert _native(stack["env"], "worker", "stop").returncode == 0
    started = _native(stack["env"], "worker", "start", "--tracking-uri", unreachable)
    assert started.returncode == 0, started.stdout + started.stderr
    assert unreachable in started.stderr  # said at once, when the worker starts

    result, flow_run_id, _ = _run_deployment(stack, "perceptron/quick", *QUICK_RUN)
    assert result.returncode != 0
    state = _flow_run(stack, flow_run_id)["state"]
    assert state["type"] == "FAILED"
    assert "TrackingError" in state["message"] and unreachable in state["message"], state["message"]


def test_down_stops_every_process_it_started(stack):
    tracked = []
    for record in (stack["dir"] / "pids").glob("*.json"):
        entry = json.loads(record.read_text())
        tracked += processes.tree(entry["pid"])
    postmaster = int((stack["dir"] / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
    tracked += processes.tree(postmaster)
    assert len(tracked) >= 5, tracked

    result = _native(stack["env"], "down", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr

    def alive(pid: int, started: str) -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        fields = stat.rsplit(")", 1)[1].split()
        return fields[19] == started and fields[0] != "Z"  # a zombie awaiting its reaper is gone

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid, started) for pid, started in tracked):
        time.sleep(0.2)
    assert [pid for pid, started in tracked if alive(pid, started)] == []
    assert list((stack["dir"] / "pids").glob("*.json")) == []
    for port in stack["settings"]["ports"].values():
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
