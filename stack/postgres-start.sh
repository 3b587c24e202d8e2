#!/usr/bin/env bash
# PostgreSQL's start in docker-compose.yml, the same on the official postgres image and on the
# stand-in with Debian's postgresql-15 (stack/standin_images.sh), which has no docker-entrypoint.sh.
# On a new data volume: a cluster whose superuser is POSTGRES_USER with POSTGRES_PASSWORD, and the
# databases of postgres-init.sql; then the server, as the user postgres, on the stack's network.
set -euo pipefail
: "${POSTGRES_USER:?}" "${POSTGRES_PASSWORD:?}"

bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
data=${PGDATA:-/var/lib/postgresql/data}
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

# The volume is created by root; the socket folder may be missing on a fresh /run.
mkdir -p "$data" /var/run/postgresql
chown postgres:postgres "$data" /var/run/postgresql
chmod 700 "$data"

if [ ! -s "$data/PG_VERSION" ]; then
  password_file=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"
  chown postgres "$password_file"
  # Local (socket) connections trusted, as in the official image; over TCP a password is required.
  as_postgres "$bin/initdb" -D "$data" -U "$POSTGRES_USER" --pwfile="$password_file" -E UTF8 \
    --auth-local=trust --auth-host=scram-sha-256
  rm -f "$password_file"
  echo "host all all all scram-sha-256" >> "$data/pg_hba.conf"
  # The databases are created while the server listens on its socket only: the health check (TCP)
  # passes once they exist.
  as_postgres "$bin/pg_ctl" -D "$data" -w -o "-c listen_addresses=''" start
  as_postgres "$bin/psql" -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -f /opt/studyflow/postgres-init.sql
  as_postgres "$bin/pg_ctl" -D "$data" -w -m fast stop
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$data" -c listen_addresses='*'
