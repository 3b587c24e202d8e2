# The studyflow image: Python 3.11, CPU-only TensorFlow, MLflow, Prefect, the flows and the
# verified datasets. docker-compose.yml runs every service of the stack from it (the MLflow server,
# the Prefect server, the deployment registration and the workers) except PostgreSQL.
#   docker compose build          # or: docker build -t studyflow .
# The base is a parameter: the official python image by default, or a stand-in with Debian's
# python3 (stack/standin_images.sh) where no image registry is reachable; the steps work on both.
ARG STUDYFLOW_BASE_IMAGE=docker.io/library/python:3.11.7-slim-bookworm
FROM ${STUDYFLOW_BASE_IMAGE}

# An extra CA bundle (PEM text), for networks whose TLS to PyPI goes through an inspecting proxy:
# added to the image's trust store, which pip and uv are pointed at below. Empty: nothing added.
ARG EXTRA_CA_CERTS=""
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
        mkdir -p /usr/local/share/ca-certificates \
        && printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/studyflow-extra.crt \
        && update-ca-certificates; \
    fi

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# A venv, not the system Python: Debian's python3 refuses pip installs (PEP 668), the official
# image's does not; in a venv both behave the same, and `python` is there on both.
# pip and uv read the system trust store (with the extra CA above), not their own bundled roots.
RUN python3 -m venv /opt/venv \
    && PIP_CERT=/etc/ssl/certs/ca-certificates.crt pip install --no-cache-dir uv==0.13.9

WORKDIR /app

# Dependencies before the code: this layer (about 2 GB, mostly TensorFlow) is rebuilt only when
# pyproject.toml changes. Only [project.dependencies] are installed: no test tools in the image.
COPY pyproject.toml ./
# Compiled to bytecode at install: PYTHONDONTWRITEBYTECODE stops Python writing .pyc files, so
# without it every process of the stack compiled TensorFlow, MLflow and Prefect from source
# (import tensorflow 7.4 s -> 2.6 s here).
RUN SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt uv pip install --compile-bytecode -r pyproject.toml

# The code, its data and the deployments; tests, runs and the venv stay out (.dockerignore).
COPY README.md prefect.yaml ./
COPY data/ data/
COPY studyflow/ studyflow/
COPY models/ models/
COPY tasks/ tasks/
COPY flows/ flows/
COPY stack/register.sh stack/register.sh
# Editable, like a checkout: studyflow finds data/ and prefect.yaml beside its package.
RUN SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt uv pip install --no-deps -e .

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
