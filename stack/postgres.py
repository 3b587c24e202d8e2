"""The stack's own PostgreSQL cluster under postgres/data (databases `mlflow`, `prefect` and `optuna`),
run with the distribution's server programs (Debian: `apt-get install postgresql`) on 127.0.0.1 only.
PostgreSQL refuses to run as root: as root, its programs run as the OS user `postgres` (made by the
Debian package), which must be able to reach the stack folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from stack.bookkeeping import tail
from stack.layout import DATABASES, HOST, PG_USER, StackError, logs_dir, pg_data_dir, pg_dir, pg_password
from studyflow import processes


def pg_bin(program: str) -> str:
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
    raise StackError(
        f"PostgreSQL's {program} not found: install PostgreSQL (Debian: apt-get install "
        f"postgresql) or set STUDYFLOW_PG_BIN to its bin folder"
    )


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
        command = _as_pg_owner(
            [
                pg_bin("initdb"),
                "-D",
                str(data),
                "-U",
                PG_USER,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ]
        )
        try:
            result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StackError(
                f"initdb failed for {data} (as root, the OS user `postgres` must be able to "
                f"reach it; set STUDYFLOW_STACK_DIR elsewhere if not):\n{result.stderr}"
            )
    # TCP on 127.0.0.1 only, no Unix socket (its path would depend on the folder's depth).
    options = f"-p {settings['ports']['postgres']} -c listen_addresses={HOST} -c unix_socket_directories=''"
    command = _as_pg_owner(
        [pg_bin("pg_ctl"), "start", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options]
    )
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise StackError(f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{tail('postgres')}")
    _create_databases(settings)
    print(f"postgres    127.0.0.1:{settings['ports']['postgres']} (data {data})")


def _create_databases(settings: dict) -> None:
    import psycopg

    conninfo = dict(
        host=HOST,
        port=settings["ports"]["postgres"],
        user=PG_USER,
        password=pg_password(),
        dbname="postgres",
        connect_timeout=10,
    )
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
    command = _as_pg_owner([pg_bin("pg_ctl"), "stop", "-D", str(pg_data_dir()), "-m", "fast", "-w", "-t", "60"])
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise StackError(f"PostgreSQL did not stop:\n{result.stdout}{result.stderr}")
    print("stopped postgres")
