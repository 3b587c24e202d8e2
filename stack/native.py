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

This module holds the commands; the parts they start and stop are the modules of the package `stack`
beside it: layout (folder, settings), bookkeeping (the processes started), postgres, servers, workers.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script (`python stack/native.py`, the documented command line), Python puts this folder
    # first on sys.path, not the checkout: the checkout instead, so that this folder's modules import as
    # the package `stack` and none of them shadows a top-level module of the same name.
    _HERE = Path(__file__).resolve().parent
    sys.path[:] = [str(_HERE.parent)] + [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

from stack import postgres, servers, workers
from stack.bookkeeping import port_free, record, running, stop, wait_answering
from stack.layout import (
    HOST,
    WORK_POOL,
    StackError,
    logs_dir,
    optuna_storage,
    pg_dir,
    pids_dir,
    requested_settings,
    saved_settings,
    serve_port,
    settings_file,
    stack_dir,
)


def up() -> None:
    settings = requested_settings()
    if settings_file().exists() and (running("mlflow") or running("prefect-server") or postgres.postgres_running()):
        settings = saved_settings()  # parts of it run: complete it on the same ports
    for folder in (stack_dir(), logs_dir(), pids_dir(), pg_dir()):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)  # as root, PostgreSQL (user `postgres`) must reach postgres/ and logs/
    started = time.monotonic()
    try:
        wanted = {
            "postgres": not postgres.postgres_running(),
            "mlflow": not running("mlflow"),
            "prefect": not running("prefect-server"),
        }
        busy = [
            f"{name} port {settings['ports'][name]}"
            for name, start in wanted.items()
            if start and not port_free(settings["ports"][name])
        ]
        if busy:
            raise StackError(
                f"in use by another program: {', '.join(busy)}; stop it or choose other ports "
                "(STUDYFLOW_PG_PORT, STUDYFLOW_MLFLOW_PORT, STUDYFLOW_PREFECT_PORT)"
            )
        settings_file().write_text(json.dumps(settings, indent=2))
        if wanted["postgres"]:
            postgres.start_postgres(settings)
        # Both servers start at once, within one start-up budget: each takes seconds to tens of seconds.
        mlflow = servers.start_mlflow(settings) if wanted["mlflow"] else None
        prefect = servers.start_prefect_server(settings) if wanted["prefect"] else None
        wait_answering(
            {
                "mlflow": (settings["mlflow_url"] + "/health", mlflow),
                "prefect-server": (settings["prefect_api_url"] + "/health", prefect),
            }
        )
        print(
            f"mlflow      {settings['mlflow_url']} (PostgreSQL store, artifacts in {stack_dir() / 'mlflow-artifacts'})"
        )
        print(f"prefect     {settings['prefect_ui_url']} (PostgreSQL database)")
        servers.register_deployments(settings)
        servers.start_dask(settings)  # before the workers: their flow runs send trainings to it
        if not any(running(name) for name in workers.worker_names()):
            workers.start_worker(settings)
        if not running("optuna-dashboard"):
            servers.start_dashboard(settings)
    except BaseException as exc:
        print(f"stack did not come up ({type(exc).__name__}: {exc}); stopping what was started", file=sys.stderr)
        down()
        raise
    if not running("serve"):
        servers.start_serve(settings)  # optional: the stack is up without it (no champion yet)
    print(
        f"stack up in {time.monotonic() - started:.0f} s; logs in {logs_dir()}\n"
        f'point a shell at it: eval "$({Path(sys.executable)} {Path(__file__)} env)"'
    )


def down() -> None:
    if not stack_dir().exists():
        return
    stop("serve")
    stop("optuna-dashboard")
    for name in reversed(workers.worker_names()):
        stop(name, signal.SIGINT)  # a worker ignores SIGTERM for a while; SIGINT stops it at once
    stop("dask-workers")
    stop("dask-scheduler")
    stop("prefect-server")
    stop("mlflow")
    postgres.stop_postgres()


def status() -> int:
    settings = saved_settings()
    rows = [
        ("postgres", postgres.postgres_running(), f"127.0.0.1:{settings['ports']['postgres']}"),
        ("mlflow", running("mlflow"), settings["mlflow_url"]),
        ("prefect-server", running("prefect-server"), settings["prefect_ui_url"]),
    ]
    rows += [(name, running(name), f"work pool {WORK_POOL}") for name in workers.worker_names()]
    if record("optuna-dashboard") is not None:
        rows.append(
            (
                "optuna-dashboard",
                running("optuna-dashboard"),
                f"http://{HOST}:{settings['ports'].get('dashboard', 8080)}",
            )
        )
    if record("dask-scheduler") is not None:
        rows.append(
            (
                "dask-scheduler",
                running("dask-scheduler"),
                f"{settings['dask_address']} (http://{HOST}:{settings['ports']['dask_dashboard']}/status)",
            )
        )
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
    worker.add_argument(
        "--tracking-uri", help="MLflow tracking server for this worker's flow runs (default: the stack's)"
    )
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
            if args.action == "start" and not servers.start_serve(saved_settings()):
                return 1
        elif args.action == "start":
            workers.start_worker(saved_settings(), tracking_uri=args.tracking_uri)
        else:
            for name in reversed(workers.worker_names()):
                stop(name, signal.SIGINT)
    except StackError as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
