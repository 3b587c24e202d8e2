#!/usr/bin/env bash
# The compose stack brought up for real, used, and taken down again: `make compose-check`.
#
# Builds the images (on stand-in base images from Debian's packages where no image registry answers),
# starts every service of docker-compose.yml, each once the services it depends on pass their own
# health checks, runs the perceptron deployment on one pair on the compose worker, and checks from
# the host, on the published ports, that the run reached MLflow with its metrics and a figure and
# that every UI answers. It ends with `down -v` whether it passed or not.
#
# Docker where its daemon answers, else podman (installed and set up here when missing). The start
# is staged by this script rather than left to depends_on: podman-compose ignores the conditions,
# and without systemd podman runs no health check by itself (`podman healthcheck run` does, here).
#
#   COMPOSE_CHECK_IMAGES=auto|official|standin   auto: the official images if present or pullable
#   COMPOSE_CHECK_PROJECT=studyflow-check        the compose project: its containers, network, volumes
set -euo pipefail
cd "$(dirname "$0")/.."

project=${COMPOSE_CHECK_PROJECT:-studyflow-check}
images=${COMPOSE_CHECK_IMAGES:-auto}
started=$SECONDS
say() { printf '== compose-check [%4ds] %s\n' "$((SECONDS - started))" "$*"; }
fail() { say "FAILED: $*"; exit 1; }

# ---------------------------------------------------------------- engine
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  engine=docker
  compose_command=(docker compose)
else
  engine=podman
  missing=()
  for program in podman podman-compose runc debootstrap; do
    command -v "$program" >/dev/null || missing+=("$program")
  done
  if ((${#missing[@]})); then
    say "installing ${missing[*]} (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman podman-compose runc netavark aardvark-dns debootstrap
  fi
  # On these machines crun cannot set the default rlimits and refuses the cgroup layout: runc, and
  # limits the container may set (a compose `ulimits:` would replace both defaults).
  if [ ! -e /etc/containers/containers.conf ]; then
    mkdir -p /etc/containers
    cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
  fi
  compose_command=(podman-compose)
fi
compose() { "${compose_command[@]}" -p "$project" -f docker-compose.yml "$@"; }
say "engine: $engine ($("$engine" --version | head -n 1))"

# ---------------------------------------------------------------- images
official=(docker.io/library/python:3.11.7-slim-bookworm docker.io/library/postgres:15-bookworm)
have_official() {
  local image
  for image in "${official[@]}"; do
    "$engine" image inspect "$image" >/dev/null 2>&1 || timeout 120 "$engine" pull -q "$image" >/dev/null 2>&1 || return 1
  done
}
if [ "$images" = auto ]; then
  if have_official; then images=official; else images=standin; fi
fi
case $images in
  official) say "base images: the official ones (${official[*]})" ;;
  standin)
    [ "$engine" = podman ] || fail "the stand-in images are built with podman"
    say "base images: stand-ins from Debian's packages (stack/standin_images.sh)"
    if grep -qE '^(STUDYFLOW_BASE_IMAGE|POSTGRES_IMAGE)=' .env 2>/dev/null; then
      fail ".env sets STUDYFLOW_BASE_IMAGE or POSTGRES_IMAGE, which podman-compose would use over the stand-ins"
    fi
    eval "$(stack/standin_images.sh)"
    say "  $STUDYFLOW_BASE_IMAGE, $POSTGRES_IMAGE" ;;
  *) fail "COMPOSE_CHECK_IMAGES=$images: auto, official or standin" ;;
esac

# ---------------------------------------------------------------- settings
# podman-compose (1.0.3) lets a .env beside the compose file override the environment (Docker does
# the reverse): its values are taken here too, so that this script and the containers agree.
if [ "$engine" = podman ] && [ -f .env ]; then
  set -a; . ./.env; set +a
fi
# A password of its own for this run, free ports on 127.0.0.1 (a stack already running keeps its
# own), and the CAs this machine added to its trust store, for pip behind a TLS-inspecting proxy.
export POSTGRES_USER=${POSTGRES_USER:-studyflow}
export POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')}
ports=(MLFLOW_PORT PREFECT_PORT SERVE_PORT OPTUNA_DASHBOARD_PORT DASK_SCHEDULER_PORT DASK_DASHBOARD_PORT)
read -r -a free < <(python3 -c 'import socket
sockets = [socket.socket() for _ in range(6)]
for s in sockets: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))')
for index in "${!ports[@]}"; do
  export "${ports[index]}=${!ports[index]:-${free[index]}}"
done
if [ -z "${EXTRA_CA_CERTS+set}" ]; then
  EXTRA_CA_CERTS=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)
fi
export EXTRA_CA_CERTS

# ---------------------------------------------------------------- clean-up, on every exit
ids() {  # the project's containers (of one service), volumes or networks, by compose's labels
  local kind=$1 service=${2:-}
  local filters=(--filter "label=com.docker.compose.project=$project")
  [ -n "$service" ] && filters+=(--filter "label=com.docker.compose.service=$service")
  case $kind in
    container) "$engine" ps -aq "${filters[@]}" ;;
    volume) "$engine" volume ls -q "${filters[@]}" ;;
    network) "$engine" network ls -q "${filters[@]}" ;;
  esac
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ "$status" -ne 0 ]; then
    for id in $(ids container); do  # the end of every service's log, to see what failed
      echo "---- $("$engine" inspect -f '{{.Name}} ({{.State.Status}})' "$id")"
      "$engine" logs --tail 30 "$id" 2>&1 || true
    done
  fi
  say "down -v"
  compose down -v >/dev/null 2>&1 || true
  # What down may leave: podman-compose 1.0.3 keeps the network, one-off containers aren't its own.
  for kind in container volume network; do
    for id in $(ids "$kind"); do "$engine" "$kind" rm -f "$id" >/dev/null 2>&1 || true; done
  done
  local left
  left=$(for kind in container volume network; do ids "$kind"; done)
  # and no process: podman's conmon names the container it watches on its command line
  if [ "$engine" = podman ] && pgrep -f -- "-n ${project}_" >/dev/null; then
    left+=" processes: $(pgrep -f -- "-n ${project}_" | tr '\n' ' ')"
  fi
  if [ -n "$left" ]; then
    say "FAILED: left behind: $left"
    status=1
  fi
  if [ "$status" -eq 0 ]; then say "PASSED in $((SECONDS - started)) s"; else say "FAILED after $((SECONDS - started)) s"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
compose down -v >/dev/null 2>&1 || true  # leftovers of an interrupted earlier run

# ---------------------------------------------------------------- build and create
say "building the studyflow image"
if [ "$engine" = podman ]; then
  compose build mlflow  # every service but postgres runs this one image
  compose up --no-start --no-build >/dev/null
else
  compose build
  compose up --no-start
fi

container() {
  local id
  id=$(ids container "$1" | head -n 1)
  [ -n "$id" ] || fail "no container for service $1"
  echo "$id"
}
healthy() {
  if [ "$engine" = podman ]; then
    podman healthcheck run "$1" >/dev/null 2>&1
  else
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$1")" = healthy ]
  fi
}
run_container() {  # without its noise: podman says at each start that it has no systemd to schedule health checks
  local errors
  errors=$("$engine" start "$1" 2>&1 >/dev/null) || { echo "$errors" >&2; return 1; }
  grep -v 'systemd connection' <<<"$errors" >&2 || true
}
start() {  # start services, then wait until each passes its health check
  local service id deadline
  for service in "$@"; do run_container "$(container "$service")"; done
  for service in "$@"; do
    id=$(container "$service")
    deadline=$((SECONDS + 300))
    until healthy "$id"; do
      [ "$("$engine" inspect -f '{{.State.Running}}' "$id")" = true ] || fail "$service stopped"
      ((SECONDS < deadline)) || fail "$service not healthy after 300 s"
      sleep 2
    done
    say "$service healthy"
  done
}

# ---------------------------------------------------------------- start, in dependency order
start postgres
start mlflow prefect-server dask-scheduler optuna-dashboard

say "deploy: registering the deployments"
deploy=$(container deploy)
run_container "$deploy"
status=$(timeout 300 "$engine" wait "$deploy" | tail -n 1) || fail "deploy did not finish in 300 s"
[ "$status" = 0 ] || fail "deploy exited with $status"

start dask-worker worker

# serve: the champion's scoring server. A fresh stack has no champion (part 4 registers it): serve
# says "no champion yet" and tries again every 30 s in its running container. That state is checked
# here, or health if a champion is there.
serve=$(container serve)
run_container "$serve"
deadline=$((SECONDS + 180))
until healthy "$serve"; do
  if "$engine" logs "$serve" 2>&1 | grep -q "no champion yet" \
      && [ "$("$engine" inspect -f '{{.State.Running}}' "$serve")" = true ]; then
    say "serve up, waiting for a champion: $("$engine" logs "$serve" 2>&1 | grep -m1 'no champion yet')"
    break
  fi
  ((SECONDS < deadline)) || fail "serve neither healthy nor waiting for a champion after 180 s"
  sleep 2
done

# ---------------------------------------------------------------- a deployment run on the stack
say "prefect deployment run perceptron/quick, one pair, on the compose worker"
output=$("$engine" exec "$(container worker)" prefect deployment run perceptron/quick -p 'pairs=[[1,0]]' \
  --watch --watch-timeout 900 2>&1) || { echo "$output"; fail "the deployment run did not complete"; }
echo "$output" | tail -n 5
flow_run=$(echo "$output" | grep -oE 'UUID: [0-9a-f-]{36}' | head -n 1 | cut -d' ' -f2)
[ -n "$flow_run" ] || fail "no flow run id in the output of prefect deployment run"

say "checking the run and the UIs through the published ports"
python3 stack/compose_probe.py "$flow_run"
