"""`studyflow serve`: MLflow's scoring server for a registered model, run from the project's environment.

The model URI is resolved against the configured tracking store first (MLFLOW_TRACKING_URI, else
the embedded store), so a missing champion, an unknown model or a taken port is one line before any
server starts. The alias is resolved once: the server serves that version until it is restarted.
Then it runs `mlflow models serve --env-manager local` in the foreground (studyflow.foreground: the
start-up budget, Ctrl-C), with the venv's bin/ first on PATH: MLflow execs `uvicorn` from PATH,
which without this needs an activated venv.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from studyflow import paths, tracking
from studyflow.errors import ModelSourceError, ServingError
from studyflow.foreground import LocalServer, run_in_foreground
from studyflow.tracking.names import CHAMPION_URI, KERAS_MODEL_VERSION_TAG

DEFAULT_MODEL_URI = CHAMPION_URI
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5050
# Read by the served model (tasks/serving/classifier.py, which imports nothing from the project): the
# most images one request may hold; more is answered 413, so one request cannot hold the server long.
MAX_BATCH_VARIABLE = "STUDYFLOW_SERVE_MAX_BATCH"
DEFAULT_MAX_BATCH = 1000
VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's bin/, where mlflow and uvicorn are


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServingError(f"cannot serve on {host}:{port}: {exc.strerror}; choose another with --port") from None


def resolve(model_uri: str) -> tuple[str, str]:
    """The URI to serve (an alias pinned to its version) and a description of it; ModelSourceError if none."""
    from studyflow.tracking.model_source import resolve_model_source

    tracking.check_server()
    if tracking.uses_embedded_store() and not (paths.mlruns_dir() / "mlflow.db").exists():
        raise ModelSourceError(
            f"model {model_uri!r} not found: there is no tracking store yet at {tracking.tracking_uri()} "
            "(run `studyflow run cnn` first)"
        )
    client = tracking.connect()
    source = resolve_model_source(client, model_uri)
    if source.registered_version is None:
        return model_uri, f"{model_uri} (run {source.run_id})"
    name, version = source.registered_version.split("/")
    what = f"{name} version {version}" + (f" ({model_uri})" if "@" in model_uri else "")
    if KERAS_MODEL_VERSION_TAG not in client.get_model_version(name, version).tags:
        print(
            f"[studyflow] warning: {name} version {version} was registered before the serving contract: it "
            "takes float32 (n, 28, 28) images and returns bare probabilities; `studyflow run cnn` registers "
            "a packaged version",
            file=sys.stderr,
        )
    return f"models:/{name}/{version}", what


def command(model_uri: str, host: str, port: int) -> list[str]:
    return [
        str(VENV_BIN / "mlflow"),
        "models",
        "serve",
        "--model-uri",
        model_uri,
        "--env-manager",
        "local",
        "--host",
        host,
        "--port",
        str(port),
    ]


def environment(max_batch: int | None = None) -> dict[str, str]:
    """The server's environment; `max_batch` (None: STUDYFLOW_SERVE_MAX_BATCH if set, else the default)."""
    env = dict(os.environ)
    env[MAX_BATCH_VARIABLE] = str(max_batch or env.get(MAX_BATCH_VARIABLE) or DEFAULT_MAX_BATCH)
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "MLFLOW_TRACKING_URI": tracking.tracking_uri(),
            "MLFLOW_REGISTRY_URI": tracking.tracking_uri(),
            "MLFLOW_DISABLE_TELEMETRY": env.get("MLFLOW_DISABLE_TELEMETRY", "true"),
        }
    )
    return env


def serve(
    model_uri: str = DEFAULT_MODEL_URI, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, max_batch: int | None = None
) -> int:
    """Check everything, then run the scoring server until Ctrl-C; its exit code."""
    _check_port_free(host, port)
    env = environment(max_batch)
    if not env[MAX_BATCH_VARIABLE].isdigit() or int(env[MAX_BATCH_VARIABLE]) < 1:
        raise ServingError(
            f"{MAX_BATCH_VARIABLE}={env[MAX_BATCH_VARIABLE]!r}: give a whole number of images, at least 1"
        )
    served_uri, what = resolve(model_uri)
    print(f"[studyflow] serving {what}, at most {env[MAX_BATCH_VARIABLE]} images per request", flush=True)
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # where this machine reaches it
    server = LocalServer(
        "the scoring server",
        command(served_uri, host, port),
        f"http://{local}:{port}/ping",
        f"http://{host}:{port} (POST /invocations, GET /ping)",
        env,
    )
    return run_in_foreground([server])
