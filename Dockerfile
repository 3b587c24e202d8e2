# The studyflow image: Python 3.11, CPU-only TensorFlow, MLflow, Prefect, the flows and the
# verified datasets. docker-compose.yml runs every service of the stack from it (the MLflow server,
# the Prefect server, the deployment registration and the workers) except PostgreSQL.
#   docker compose build          # or: docker build -t studyflow .
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app

# Dependencies before the code: this layer (about 2 GB, mostly TensorFlow) is rebuilt only when
# pyproject.toml changes. Only [project.dependencies] are installed: no test tools in the image.
COPY pyproject.toml ./
# Compiled to bytecode at install: PYTHONDONTWRITEBYTECODE stops Python writing .pyc files, so
# without it every process of the stack compiled TensorFlow, MLflow and Prefect from source
# (import tensorflow 7.4 s -> 2.6 s here).
RUN uv pip install --system --compile-bytecode -r pyproject.toml

# The code, its data and the deployments; tests, runs and the venv stay out (.dockerignore).
COPY README.md prefect.yaml ./
COPY data/ data/
COPY studyflow/ studyflow/
COPY models/ models/
COPY tasks/ tasks/
COPY flows/ flows/
COPY stack/register.sh stack/register.sh
# Editable, like a checkout: studyflow finds data/ and prefect.yaml beside its package.
RUN uv pip install --system --no-deps -e .

# A non-root user owns what is written: the studyflow home (data cache, reports) and the folder
# that the MLflow server serves artifacts from (a named volume in compose takes its ownership).
RUN groupadd --gid 10001 studyflow \
    && useradd --uid 10001 --gid 10001 --create-home studyflow \
    && mkdir -p /home/studyflow/work /srv/mlflow-artifacts /srv/step-results \
    && chown 10001:10001 /home/studyflow/work /srv/mlflow-artifacts /srv/step-results
USER 10001:10001

# STUDYFLOW_CODE_DIR: where a worker runs the deployments' code from (the pull step of prefect.yaml).
ENV STUDYFLOW_CODE_DIR=/app \
    STUDYFLOW_HOME=/home/studyflow/work \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

# The default command is a worker; compose gives the servers their own commands.
CMD ["prefect", "worker", "start", "--pool", "studyflow", "--type", "process", "--limit", "1", "--install-policy", "never"]
