#!/usr/bin/env bash
# Stand-ins for the official base images of docker-compose.yml (python:3.11.7-slim-bookworm and
# postgres:15-bookworm), built from Debian's own packages with podman, for machines that reach no
# image registry: a debootstrap'd bookworm with Debian's python3 (3.11.2, with venv) and one with
# postgresql-15. Both are tagged with a hash of this file: built once, reused until it changes.
# Prints the settings that make docker-compose.yml use them:
#     eval "$(stack/standin_images.sh)"   # exports STUDYFLOW_BASE_IMAGE and POSTGRES_IMAGE
set -euo pipefail

key=$(sha256sum "$0" | cut -c1-12)
python_image=localhost/studyflow-standin-python:$key
postgres_image=localhost/studyflow-standin-postgres:$key

if ! podman image exists "$python_image" || ! podman image exists "$postgres_image"; then
  work=$(mktemp -d /var/tmp/studyflow-standin.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  echo "building stand-in base images ($key) from Debian packages" >&2
  # minbase: apt and the essential packages only (about 90 s, from the archive the host's apt uses).
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >&2
  debian=localhost/studyflow-standin-debian:$key
  tar -C "$work/rootfs" -c . | podman import --quiet - "$debian" >&2
  rm -rf "$work/rootfs"

  # As the official python image: ca-certificates, C.UTF-8; venv because Debian's python3 may not
  # be installed into with pip (PEP 668), so the Dockerfile installs into a venv on both.
  cat > "$work/Containerfile.python" <<CONTAINERFILE
FROM $debian
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
        python3 python3-venv ca-certificates \\
    && rm -rf /var/lib/apt/lists/*
ENV LANG=C.UTF-8
CMD ["python3"]
CONTAINERFILE

  # No cluster is created at install: stack/postgres-start.sh creates one in the data volume.
  cat > "$work/Containerfile.postgres" <<CONTAINERFILE
FROM $debian
RUN mkdir -p /etc/postgresql-common/createcluster.d \\
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main-cluster.conf \\
    && apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \\
    && rm -rf /var/lib/apt/lists/* \\
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \\
    && chown postgres:postgres /var/lib/postgresql/data /var/run/postgresql
ENV LANG=C.UTF-8 PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data
CMD ["postgres"]
CONTAINERFILE

  podman build --quiet -t "$python_image" -f "$work/Containerfile.python" "$work" >&2
  podman build --quiet -t "$postgres_image" -f "$work/Containerfile.postgres" "$work" >&2
  podman rmi "$debian" >/dev/null
fi
echo "export STUDYFLOW_BASE_IMAGE=$python_image POSTGRES_IMAGE=$postgres_image"
