#!/usr/bin/env bash
# Create the process work pool `studyflow` and register every deployment in prefect.yaml on the
# Prefect server named by PREFECT_API_URL. Safe to run again: the pool and deployments are updated.
# Used by `make deployments`, `make stack-up` and the compose service `deploy`.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${PREFECT_API_URL:?set PREFECT_API_URL to the Prefect server, e.g. http://127.0.0.1:4200/api}"
prefect="${PREFECT:-prefect}"

"$prefect" work-pool create studyflow --type process --overwrite
"$prefect" deploy --all --no-prompt
