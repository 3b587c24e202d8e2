"""The local stack without Docker: PostgreSQL, MLflow server, Prefect server and a worker on 127.0.0.1.

    .venv/bin/python stack/native.py up       # start all, register the deployments, start a worker
    .venv/bin/python stack/native.py status   # what runs, where, and the UIs' addresses
    eval "$(.venv/bin/python stack/native.py env)"   # point this shell at the stack
    .venv/bin/python stack/native.py worker start    # one more worker (scale out); `worker stop` stops them
    .venv/bin/python stack/native.py serve start     # serve the champion (again: a newer one); `serve stop`
    .venv/bin/python stack/native.py down     # stop exactly what `up` and `worker start` started

It is the docker-compose stack (docker-compose.yml) made of the machine's own programs, for machines
without Docker: PostgreSQL is the distribution's package (Debian: `apt-get install postgresql`) run
as its own cluster under the stack folder, MLflow and Prefect come from the project's venv.

Everything is under one folder, STUDYFLOW_STACK_DIR (default `.stack/` in the checkout):
    stack.json           ports and addresses of the running stack
    logs/<name>.log      one log per process (postgres, mlflow, prefect-server, register, worker-N, serve)
    pids/<name>.json     pid and start time of each process started, so that `down` stops exactly
                         those (and their children), never a process that merely reused the pid
    postgres/data        the PostgreSQL cluster (databases `mlflow` and `prefect`); its password is
                         generated on first use into postgres/password (mode 600)
    mlflow-artifacts/    the artifacts the MLflow server serves (--serve-artifacts)
    prefect-home/        PREFECT_HOME of the server and the workers
Data survives `down`; delete the folder to start afresh.

Ports (127.0.0.1 only): STUDYFLOW_PG_PORT (5433, beside a system cluster on 5432),
STUDYFLOW_MLFLOW_PORT (5000), STUDYFLOW_PREFECT_PORT (4200), STUDYFLOW_SERVE_PORT (5050: the champion's
scoring server, `studyflow serve`, started by `up` when the stack's registry has a champion),
STUDYFLOW_DASK_PORT (8786: the Dask scheduler the workers' flow runs send a part's trainings to;
its dashboard on STUDYFLOW_DASK_DASHBOARD_PORT, 8787) with STUDYFLOW_DASK_WORKERS Dask workers (2),
each with its share of the cores for TensorFlow.
PostgreSQL refuses to run as root: as root, its programs run as the OS user `postgres` (made by the
Debian package), which must be able to reach the stack folder.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from studyflow import processes
from studyflow.startup import start_budget  # STUDYFLOW_START_TIMEOUT, as for every local server

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's bin/, where mlflow and prefect are
HOST = "127.0.0.1"
PG_USER = "studyflow"
DATABASES = ("mlflow", "prefect", "optuna")
WORK_POOL = "studyflow"

STOP_TIMEOUT_S = 20


class StackError(RuntimeError):
    """The stack cannot start or stop; the message says which part and where its log is."""


# ---------------------------------------------------------------- layout and settings

def stack_dir() -> Path:
    return Path(os.environ.get("STUDYFLOW_STACK_DIR") or REPO_ROOT / ".stack").resolve()


def logs_dir() -> Path:
    return stack_dir() / "logs"


def pids_dir() -> Path:
    return stack_dir() / "pids"


def pg_dir() -> Path:
    return stack_dir() / "postgres"


def pg_data_dir() -> Path:
    return pg_dir() / "data"


def settings_file() -> Path:
    return stack_dir() / "stack.json"


def requested_settings() -> dict:
    ports = {
        "postgres": int(os.environ.get("STUDYFLOW_PG_PORT", "5433")),
        "mlflow": int(os.environ.get("STUDYFLOW_MLFLOW_PORT", "5000")),
        "prefect": int(os.environ.get("STUDYFLOW_PREFECT_PORT", "4200")),
        "serve": int(os.environ.get("STUDYFLOW_SERVE_PORT", "5050")),
        "dashboard": int(os.environ.get("STUDYFLOW_DASHBOARD_PORT", "8080")),
        "dask": int(os.environ.get("STUDYFLOW_DASK_PORT", "8786")),
        "dask_dashboard": int(os.environ.get("STUDYFLOW_DASK_DASHBOARD_PORT", "8787")),
    }
    return {
        "ports": ports,
        "mlflow_url": f"http://{HOST}:{ports['mlflow']}",
        "prefect_ui_url": f"http://{HOST}:{ports['prefect']}",
        "prefect_api_url": f"http://{HOST}:{ports['prefect']}/api",
        "dask_address": f"tcp://{HOST}:{ports['dask']}",
        "dask_workers": int(os.environ.get("STUDYFLOW_DASK_WORKERS", "2")),
    }


def saved_settings() -> dict:
    if not settings_file().exists():
        raise StackError(f"no stack under {stack_dir()}: run `stack/native.py up` first")
    return json.loads(settings_file().read_text())


def pg_password() -> str:
    """The cluster's password: made once, kept beside it (never in git, never on a command line)."""
    path = pg_dir() / "password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(os.environ.get("STUDYFLOW_PG_PASSWORD") or secrets.token_urlsafe(24))
    return path.read_text().strip()


def database_url(driver: str, database: str, settings: dict) -> str:
    return f"postgresql+{driver}://{PG_USER}:{pg_password()}@{HOST}:{settings['ports']['postgres']}/{database}"


def base_env(settings: dict) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        "PREFECT_HOME": str(stack_dir() / "prefect-home"),
        "PREFECT_API_URL": settings["prefect_api_url"],
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    })
    return env


# ---------------------------------------------------------------- processes we started

def _alive(pid: int, started: str) -> bool:
    return processes.start_ticks(pid) == started


def record(name: str) -> dict | None:
    path = pids_dir() / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def running(name: str) -> bool:
    entry = record(name)
    return bool(entry) and _alive(entry["pid"], entry["started"])


def spawn(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start a long-running process in its own session, logging to logs/<name>.log."""
    log = open(logs_dir() / f"{name}.log", "ab")
    log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
    log.flush()
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    entry = {"pid": process.pid, "started": processes.start_ticks(process.pid), "command": command}
    (pids_dir() / f"{name}.json").write_text(json.dumps(entry, indent=2))
    return process


def stop(name: str, first_signal: int = signal.SIGTERM) -> None:
    """Stop a recorded process and every descendant it had: signal, wait, then SIGKILL."""
    entry = record(name)
    if entry is None:
        return
    pid = entry["pid"]
    if _alive(pid, entry["started"]):
        members = processes.tree(pid)
        try:
            os.kill(pid, first_signal)
        except ProcessLookupError:
            pass
        _wait_gone([(pid, entry["started"])], STOP_TIMEOUT_S)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = [(member, started) for member, started in members if _alive(member, started)]
            if not left:
                break
            for member, _ in left:
                try:
                    os.kill(member, sig)
                except ProcessLookupError:
                    pass
            _wait_gone(left, 10)
        left = [member for member, started in members if _alive(member, started)]
        if left:
            raise StackError(f"{name}: processes {left} did not stop")
    (pids_dir() / f"{name}.json").unlink(missing_ok=True)
    print(f"stopped {name}")


def _wait_gone(members: list[tuple[int, str]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_alive(pid, started) for pid, started in members):
        time.sleep(0.2)


def _tail(name: str, lines: int = 25) -> str:
    path = logs_dir() / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _wait_http(name: str, url: str, process: subprocess.Popen | None, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise StackError(f"{name} exited with code {process.returncode}; its log "
                             f"{logs_dir() / (name + '.log')} ends:\n{_tail(name)}")
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise StackError(f"{name} did not answer on {url}; its log ends:\n{_tail(name)}")


# ---------------------------------------------------------------- PostgreSQL

def _pg_bin(program: str) -> str:
    """A PostgreSQL server program: STUDYFLOW_PG_BIN, else the newest Debian install, else PATH."""
    override = os.environ.get("STUDYFLOW_PG_BIN")
    if override:
        candidates = [Path(override)]
    else:
        installed = [path for path in Path("/usr/lib/postgresql").glob("*/bin") if path.parent.name.isdigit()]
        candidates = sorted(installed, key=lambda path: int(path.parent.name), reverse=True)
    for folder in candidates:
        if (folder / program).exists():
            return str(folder / program)
    found = shutil.which(program)
    if found:
        return found
    raise StackError(f"PostgreSQL's {program} not found: install PostgreSQL (Debian: apt-get install "
                     f"postgresql) or set STUDYFLOW_PG_BIN to its bin folder")


def _as_pg_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; as root, run its programs as the OS user `postgres`."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _chown_to_pg_owner(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def start_postgres(settings: dict) -> None:
    data = pg_data_dir()
    log = logs_dir() / "postgres.log"
    log.touch()
    _chown_to_pg_owner(log)
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o700)
        _chown_to_pg_owner(data)
        # initdb reads the password from a file only its user can read; it is removed at once.
        password_file = pg_dir() / "initdb-password"
        password_file.touch(mode=0o600)
        password_file.write_text(pg_password() + "\n")
        _chown_to_pg_owner(password_file)
        command = _as_pg_owner([_pg_bin("initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={password_file}",
                                "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"])
        try:
            result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StackError(f"initdb failed for {data} (as root, the OS user `postgres` must be able to "
                             f"reach it; set STUDYFLOW_STACK_DIR elsewhere if not):\n{result.stderr}")
    # TCP on 127.0.0.1 only, no Unix socket (its path would depend on the folder's depth).
    options = f"-p {settings['ports']['postgres']} -c listen_addresses={HOST} -c unix_socket_directories=''"
    command = _as_pg_owner([_pg_bin("pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w", "-t", "60",
                            "-o", options])
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise StackError(f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{_tail('postgres')}")
    _create_databases(settings)
    print(f"postgres    127.0.0.1:{settings['ports']['postgres']} (data {data})")


def _create_databases(settings: dict) -> None:
    import psycopg

    conninfo = dict(host=HOST, port=settings["ports"]["postgres"], user=PG_USER, password=pg_password(),
                    dbname="postgres", connect_timeout=10)
    with psycopg.connect(**conninfo, autocommit=True) as connection:
        existing = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
        for name in DATABASES:
            if name not in existing:
                connection.execute(f'CREATE DATABASE "{name}"')


def postgres_running() -> bool:
    pid_file = pg_data_dir() / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    return processes.start_ticks(pid) is not None


def stop_postgres() -> None:
    if not postgres_running():
        return
    command = _as_pg_owner([_pg_bin("pg_ctl"), "stop", "-D", str(pg_data_dir()), "-m", "fast", "-w", "-t", "60"])
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise StackError(f"PostgreSQL did not stop:\n{result.stdout}{result.stderr}")
    print("stopped postgres")


# ---------------------------------------------------------------- the servers and the worker

def start_mlflow(settings: dict) -> subprocess.Popen:
    artifacts = stack_dir() / "mlflow-artifacts"
    artifacts.mkdir(exist_ok=True)
    env = base_env(settings)
    env.update({
        # The store's address holds the password: give it by environment, not on the command line.
        "MLFLOW_BACKEND_STORE_URI": database_url("psycopg", "mlflow", settings),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # far fewer processes and far less memory
    })
    return spawn("mlflow", [
        str(VENV_BIN / "mlflow"), "server", "--host", HOST, "--port", str(settings["ports"]["mlflow"]),
        "--workers", "1", "--serve-artifacts", "--artifacts-destination", str(artifacts),
    ], env)


def start_prefect_server(settings: dict) -> subprocess.Popen:
    env = base_env(settings)
    env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url("asyncpg", "prefect", settings)
    return spawn("prefect-server", [
        str(VENV_BIN / "prefect"), "server", "start", "--host", HOST, "--port", str(settings["ports"]["prefect"]),
        "--analytics-off",
    ], env)


def register_deployments(settings: dict) -> None:
    """The documented registration command (stack/register.sh), against this stack."""
    env = base_env(settings)
    env["PREFECT"] = str(VENV_BIN / "prefect")
    with open(logs_dir() / "register.log", "ab") as log:
        result = subprocess.run(["bash", str(REPO_ROOT / "stack" / "register.sh")], cwd=REPO_ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise StackError(f"registering the deployments failed; log {logs_dir() / 'register.log'}:\n"
                         f"{_tail('register')}")
    print(f"deployments registered on work pool {WORK_POOL!r}")


def worker_names() -> list[str]:
    return sorted((path.stem for path in pids_dir().glob("worker-*.json")), key=lambda name: int(name.split("-")[1]))


def start_worker(settings: dict, tracking_uri: str | None = None, wait: bool = True) -> str:
    """One more process worker on the pool; its flow runs inherit its environment."""
    taken = {int(name.split("-")[1]) for name in worker_names()}
    index = next(number for number in range(1, len(taken) + 2) if number not in taken)
    name = f"worker-{index}"
    env = base_env(settings)
    env.update({
        "MLFLOW_TRACKING_URI": tracking_uri or settings["mlflow_url"],
        "STUDYFLOW_CODE_DIR": str(REPO_ROOT),  # the pull step of prefect.yaml runs the code from here
        "STUDYFLOW_OPTUNA_STORAGE": optuna_storage(settings),  # sweeps' studies where optuna-dashboard reads them
        **({"STUDYFLOW_DASK_ADDRESS": settings["dask_address"]} if settings.get("dask_workers") else {}),
        "PREFECT_WORKER_QUERY_SECONDS": os.environ.get("PREFECT_WORKER_QUERY_SECONDS", "2"),
    })
    worker_name = f"{socket.gethostname()}-{name}-{os.getpid()}"
    process = spawn(name, [
        # --limit 1: a flow run uses both cores; run more at once with more workers.
        str(VENV_BIN / "prefect"), "worker", "start", "--pool", WORK_POOL, "--type", "process",
        "--name", worker_name, "--limit", "1", "--install-policy", "never",
    ], env)
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
        print(f"warning: MLflow tracking server {tracking_uri} is unreachable ({exc}); this worker's "
              "flow runs will fail until it answers", file=sys.stderr)


def _wait_worker_online(name: str, worker_name: str, process: subprocess.Popen, settings: dict) -> None:
    url = f"{settings['prefect_api_url']}/work_pools/{WORK_POOL}/workers/filter"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"{name} exited with code {process.returncode}; its log ends:\n{_tail(name)}")
        request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if any(worker["name"] == worker_name for worker in json.load(response)):
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise StackError(f"{name} did not come online; its log ends:\n{_tail(name)}")


def start_dask(settings: dict) -> None:
    """A Dask scheduler on 127.0.0.1 and STUDYFLOW_DASK_WORKERS worker processes (one training at a
    time each, cores / workers TensorFlow threads, the training modules preloaded), logging to the
    stack's MLflow and Prefect servers. The flow runs of the stack's workers send their trainings there
    (STUDYFLOW_DASK_ADDRESS); this machine's step-results folder is theirs too."""
    if "dask_address" not in settings:  # a stack.json written before Dask was part of the stack
        return
    ports, workers = settings["ports"], settings["dask_workers"]
    if not running("dask-scheduler"):
        if not _port_free(ports["dask"]):
            print(f"dask not started: port {ports['dask']} is in use (STUDYFLOW_DASK_PORT)")
            return
        scheduler = spawn("dask-scheduler", [str(VENV_BIN / "dask"), "scheduler", "--host", HOST,
                                             "--port", str(ports["dask"]),
                                             "--dashboard-address", f"{HOST}:{ports['dask_dashboard']}"],
                          base_env(settings))
        _wait_http("dask-scheduler", f"http://{HOST}:{ports['dask_dashboard']}/health", scheduler,
                   time.monotonic() + start_budget())
    if workers > 0 and not running("dask-workers"):
        from studyflow.cluster import WORKER_PRELOAD, worker_environment

        env = {**base_env(settings), "MLFLOW_TRACKING_URI": settings["mlflow_url"], **worker_environment(workers)}
        spawn("dask-workers", [str(VENV_BIN / "dask"), "worker", settings["dask_address"], "--host", HOST,
                               "--nworkers", str(workers), "--nthreads", "1", "--preload", WORKER_PRELOAD,
                               "--dashboard-address", f"{HOST}:0"], env)
    print(f"dask        {settings['dask_address']} ({workers} workers; dashboard "
          f"http://{HOST}:{ports['dask_dashboard']}/status)")


def optuna_storage(settings: dict) -> str:
    return database_url("psycopg", "optuna", settings)


def start_dashboard(settings: dict) -> None:
    """optuna-dashboard over the stack's Optuna database (the sweeps' studies when the shell points at
    the stack: `env` exports STUDYFLOW_OPTUNA_STORAGE)."""
    port = settings["ports"].get("dashboard", 8080)  # a stack.json written before the dashboard has none
    if not _port_free(port):
        print(f"optuna-dashboard not started: port {port} is in use (STUDYFLOW_DASHBOARD_PORT)")
        return
    import optuna

    # optuna-dashboard reads an existing schema only (it never creates tables): Optuna creates it.
    optuna.storages.RDBStorage(optuna_storage(settings)).engine.dispose()
    process = spawn("optuna-dashboard", [str(VENV_BIN / "optuna-dashboard"), optuna_storage(settings),
                                         "--host", HOST, "--port", str(port)], base_env(settings))
    _wait_http("optuna-dashboard", f"http://{HOST}:{port}/api/studies", process,
               time.monotonic() + start_budget())
    print(f"optuna      http://{HOST}:{port} (optuna-dashboard over the PostgreSQL database optuna)")


def serve_port(settings: dict) -> int:
    return settings["ports"].get("serve", 5050)  # a stack.json written before serving has no entry


def start_serve(settings: dict) -> bool:
    """`studyflow serve` for the stack's champion; False (and why) if it does not come up, e.g. no champion yet."""
    env = base_env(settings)
    env["MLFLOW_TRACKING_URI"] = settings["mlflow_url"]
    port = serve_port(settings)
    # The checkout's code, as the worker runs it; `studyflow serve` execs MLflow's scoring server.
    process = spawn("serve", [sys.executable, "-m", "studyflow.cli", "serve", "--port", str(port)], env)
    try:
        _wait_http("serve", f"http://{HOST}:{port}/ping", process, time.monotonic() + start_budget())
    except StackError:
        if process.poll() is None:
            stop("serve")
        else:  # it stopped by itself: said why in one line (e.g. no champion yet)
            (pids_dir() / "serve.json").unlink(missing_ok=True)
        reason = next((line for line in reversed(_tail("serve").splitlines()) if "error" in line), _tail("serve", 3))
        print(f"serve       not started: {reason.strip()}\n            (once a champion exists: "
              f"{Path(sys.executable)} {Path(__file__)} serve start; log {logs_dir() / 'serve.log'})")
        return False
    print(f"serve       http://{HOST}:{port}/invocations (the champion of {settings['mlflow_url']})")
    return True


# ---------------------------------------------------------------- commands

def up() -> None:
    settings = requested_settings()
    if settings_file().exists() and (running("mlflow") or running("prefect-server") or postgres_running()):
        settings = saved_settings()  # parts of it run: complete it on the same ports
    for folder in (stack_dir(), logs_dir(), pids_dir(), pg_dir()):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)  # as root, PostgreSQL (user `postgres`) must reach postgres/ and logs/
    started = time.monotonic()
    try:
        wanted = {"postgres": not postgres_running(), "mlflow": not running("mlflow"),
                  "prefect": not running("prefect-server")}
        busy = [f"{name} port {settings['ports'][name]}" for name, start in wanted.items()
                if start and not _port_free(settings["ports"][name])]
        if busy:
            raise StackError(f"in use by another program: {', '.join(busy)}; stop it or choose other ports "
                             "(STUDYFLOW_PG_PORT, STUDYFLOW_MLFLOW_PORT, STUDYFLOW_PREFECT_PORT)")
        settings_file().write_text(json.dumps(settings, indent=2))
        if wanted["postgres"]:
            start_postgres(settings)
        deadline = time.monotonic() + start_budget()
        # Both servers start at once: each takes seconds to tens of seconds to answer.
        mlflow = start_mlflow(settings) if wanted["mlflow"] else None
        prefect = start_prefect_server(settings) if wanted["prefect"] else None
        _wait_http("mlflow", settings["mlflow_url"] + "/health", mlflow, deadline)
        print(f"mlflow      {settings['mlflow_url']} (PostgreSQL store, artifacts in {stack_dir() / 'mlflow-artifacts'})")
        _wait_http("prefect-server", settings["prefect_api_url"] + "/health", prefect, deadline)
        print(f"prefect     {settings['prefect_ui_url']} (PostgreSQL database)")
        register_deployments(settings)
        start_dask(settings)  # before the workers: their flow runs send trainings to it
        if not any(running(name) for name in worker_names()):
            start_worker(settings)
        if not running("optuna-dashboard"):
            start_dashboard(settings)
    except BaseException as exc:
        print(f"stack did not come up ({type(exc).__name__}: {exc}); stopping what was started", file=sys.stderr)
        down()
        raise
    if not running("serve"):
        start_serve(settings)  # optional: the stack is up without it (no champion yet)
    print(f"stack up in {time.monotonic() - started:.0f} s; logs in {logs_dir()}\n"
          f'point a shell at it: eval "$({Path(sys.executable)} {Path(__file__)} env)"')


def down() -> None:
    if not stack_dir().exists():
        return
    stop("serve")
    stop("optuna-dashboard")
    for name in reversed(worker_names()):
        stop(name, signal.SIGINT)  # a worker ignores SIGTERM for a while; SIGINT stops it at once
    stop("dask-workers")
    stop("dask-scheduler")
    stop("prefect-server")
    stop("mlflow")
    stop_postgres()


def status() -> int:
    settings = saved_settings()
    rows = [("postgres", postgres_running(), f"127.0.0.1:{settings['ports']['postgres']}"),
            ("mlflow", running("mlflow"), settings["mlflow_url"]),
            ("prefect-server", running("prefect-server"), settings["prefect_ui_url"])]
    rows += [(name, running(name), f"work pool {WORK_POOL}") for name in worker_names()]
    if record("optuna-dashboard") is not None:
        rows.append(("optuna-dashboard", running("optuna-dashboard"),
                     f"http://{HOST}:{settings['ports'].get('dashboard', 8080)}"))
    if record("dask-scheduler") is not None:
        rows.append(("dask-scheduler", running("dask-scheduler"),
                     f"{settings['dask_address']} (http://{HOST}:{settings['ports']['dask_dashboard']}/status)"))
        rows.append(("dask-workers", running("dask-workers"), f"{settings['dask_workers']} worker processes"))
    if record("serve") is not None:  # started (it is not while there is no champion)
        rows.append(("serve", running("serve"), f"http://{HOST}:{serve_port(settings)}/invocations"))
    for name, alive, where in rows:
        print(f"{name:<15} {'running' if alive else 'stopped':<8} {where}")
    return 0 if all(alive for _, alive, _ in rows) else 1


def print_env() -> None:
    settings = saved_settings()
    print(f"export MLFLOW_TRACKING_URI={settings['mlflow_url']}")
    print(f"export PREFECT_API_URL={settings['prefect_api_url']}")
    print(f"export STUDYFLOW_OPTUNA_STORAGE='{optuna_storage(settings)}'")
    if settings.get("dask_workers"):
        print(f"export STUDYFLOW_DASK_ADDRESS={settings['dask_address']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack/native.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start PostgreSQL, MLflow, Prefect, register the deployments, start a worker")
    commands.add_parser("down", help="stop everything the stack started")
    commands.add_parser("status", help="what runs (exit 1 if a part is stopped)")
    commands.add_parser("env", help="shell exports pointing at the stack (MLFLOW_TRACKING_URI, PREFECT_API_URL)")
    worker = commands.add_parser("worker", help="start one more worker, or stop the workers")
    worker.add_argument("action", choices=("start", "stop"))
    worker.add_argument("--tracking-uri", help="MLflow tracking server for this worker's flow runs "
                                               "(default: the stack's)")
    serve = commands.add_parser("serve", help="serve the stack's champion (start: again, for a newer one), or stop")
    serve.add_argument("action", choices=("start", "stop"))
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up()
        elif args.command == "down":
            down()
        elif args.command == "status":
            return status()
        elif args.command == "env":
            print_env()
        elif args.command == "serve":
            stop("serve")
            if args.action == "start" and not start_serve(saved_settings()):
                return 1
        elif args.action == "start":
            start_worker(saved_settings(), tracking_uri=args.tracking_uri)
        else:
            for name in reversed(worker_names()):
                stop(name, signal.SIGINT)
    except StackError as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
