"""The Dask cluster that work fans out to, for a part's trainings (studyflow.fanout) and a sweep's
trials (tasks.sweeps.parallel) alike: started here, or reached at `dask_address`, and checked
before any work.

- `workers=N`, no `dask_address`: a LocalCluster of N worker processes on 127.0.0.1, one task at a
  time each, and TensorFlow's intra-op threads (and OpenMP's) = this machine's cores / N, set in each
  worker's environment before TensorFlow starts, so N trainings share the cores instead of fighting.
  Every worker preloads studyflow.entrypoints.dask_worker (TensorFlow and the work's modules, imported before it
  joins).
- `dask_address`: that scheduler's workers, which must reach the same stores (an MLflow server, a
  Prefect server), read the step-results folder at the same path and run the same code.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from studyflow import paths, tracking
from studyflow.code_digest import code_digest
from studyflow.config import FannedOut
from studyflow.errors import DaskClusterError
from studyflow.startup import ServerStartError, budget_remedy, slow_start_notice, start_budget
from studyflow.tracking.provenance import TEMPORARY_PREFECT_SERVER_ENV

CONNECT_TIMEOUT_S = 10
WORKER_PRELOAD = "studyflow.entrypoints.dask_worker"  # what a worker imports before it joins (see that module)
LOCAL_STORE_SCHEMES = ("sqlite:", "file:")
LOCAL_WORKER_ENV = "STUDYFLOW_LOCAL_DASK_WORKER"  # set in the workers of a command's local cluster


def cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def worker_environment(workers: int) -> dict[str, str]:
    """Each local worker's share of the cores, for TensorFlow (read when it starts) and OpenMP."""
    threads = str(max(1, cores() // workers))
    return {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads, "OMP_NUM_THREADS": threads}


def plain(exc: BaseException) -> str:
    """An exception as one short line, for a message naming what failed."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


# ------------------------------------------------------------------------- refusals, before any work


def refuse_unshared_stores(config: FannedOut) -> None:
    """A cluster at `dask_address` may run on other machines: it needs stores they all reach (the
    Prefect server only where its workers run a part's steps). Refused in one line naming what to set.
    (A local cluster shares this machine's files: the embedded SQLite store takes its few writers, as
    it takes two identical commands at once.)"""
    address = config.dask_address
    if address is None:
        return
    uri = tracking.tracking_uri()
    if uri.startswith(LOCAL_STORE_SCHEMES) or "://" not in uri:
        raise DaskClusterError(
            f"dask_address={address}: the tracking store {uri} is a local file the cluster's workers cannot "
            "share; set MLFLOW_TRACKING_URI to an MLflow server every worker reaches (e.g. http://HOST:5000), "
            "or drop dask_address (workers=N runs a local cluster)"
        )
    if config.WORKERS_RUN_STEPS and not os.environ.get("PREFECT_API_URL"):
        raise DaskClusterError(
            f"dask_address={address}: Prefect's temporary local server cannot be reached from the cluster's "
            "workers; set PREFECT_API_URL to a Prefect server every worker reaches (e.g. http://HOST:4200/api)"
        )


def check_fan_out(config: FannedOut) -> None:
    """Everything a fanned-out run needs, before any work: the stores (above), and a given scheduler
    that answers, has workers, runs this code and (for a part's steps) shares the step-results folder."""
    if not config.fans_out():
        return
    refuse_unshared_stores(config)
    if config.dask_address is not None:
        with scheduler_client(config.dask_address) as client:
            check_workers(client, config.dask_address, shares_steps=config.WORKERS_RUN_STEPS)


@contextmanager
def scheduler_client(address: str) -> Iterator[Any]:
    """A plain Dask client of the scheduler; a DaskClusterError naming it if it does not answer."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise DaskClusterError(
            f"the Dask scheduler {address} does not answer ({plain(exc)}); start it "
            "(dask scheduler, or make stack-up), or unset dask_address"
        ) from None
    try:
        yield client
    finally:
        client.close(timeout=CONNECT_TIMEOUT_S)


def check_workers(client, address: str, shares_steps: bool = True) -> int:
    """The scheduler's workers (at least one) run the same code (the steps' cache keys hash it) and,
    with `shares_steps`, read this machine's step-results folder at the same path; returns their count."""
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError):
        raise DaskClusterError(
            f"the Dask scheduler {address} has no workers; start some (dask worker {address}, or make stack-up)"
        ) from None
    if shares_steps:
        _check_shared_step_results(client, address)
    ours = code_digest("tasks")
    codes = client.run(code_digest, "tasks", on_error="return")
    other = sorted(worker for worker, digest in codes.items() if digest != ours)
    if other:
        raise DaskClusterError(
            f"Dask workers {', '.join(other)} of {address} run other studyflow code than this "
            "checkout (or none); run them from the same image or checkout"
        )
    return len(codes)


def _check_shared_step_results(client, address: str) -> None:
    """Every worker reads a file written here into the step-results folder, at the same path."""
    folder = paths.step_results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".shared-check-{uuid.uuid4().hex}"
    probe.write_text(probe.name)
    try:
        seen = client.run(_read_text, str(probe), on_error="return")
    finally:
        probe.unlink(missing_ok=True)
    blind = sorted(worker for worker, text in seen.items() if text != probe.name)
    if blind:
        raise DaskClusterError(
            f"Dask workers {', '.join(blind)} of {address} cannot read the step-results folder {folder}; set "
            "STUDYFLOW_STEP_RESULTS (or STUDYFLOW_HOME) to a folder that this machine and every worker mount "
            "at the same path"
        )


def _read_text(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


# ---------------------------------------------------------------------------- a local cluster


def local_cluster_kwargs(workers: int) -> dict[str, Any]:
    """A LocalCluster of `workers` processes on 127.0.0.1, one task each, their share of the cores, and
    the Prefect API this flow run reports to (the temporary local server's address is in no setting)."""
    import dask
    from prefect.context import SyncClientContext

    preload = [WORKER_PRELOAD, *dask.config.get("distributed.worker.preload", [])]  # and the user's own
    # Dask's own INFO lines (a cluster's start and close, with the tracebacks of the connections its
    # close cuts) are its internals, not the command's: warnings and errors only, here and in workers.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    environment = {**worker_environment(workers), "DASK_LOGGING__DISTRIBUTED": "warning", LOCAL_WORKER_ENV: "1"}
    prefect_client = SyncClientContext.get()  # none outside a flow run (a sweep run as a plain function)
    if prefect_client is not None:
        environment["PREFECT_API_URL"] = str(prefect_client.client.api_url)  # the client this flow run reports with
        if not os.environ.get("PREFECT_API_URL"):  # the command's temporary server
            environment[TEMPORARY_PREFECT_SERVER_ENV] = "1"
    # death_timeout: how long a worker (importing TensorFlow in its preload) may take to come up.
    return {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": None,
        "env": environment,
        "preload": preload,
        "death_timeout": start_budget(),
    }


def local_cluster_name(workers: int) -> str:
    return f"a local Dask cluster of {workers} workers"


@contextmanager
def starting(what: str) -> Iterator[None]:
    """Around a local cluster's start: a failure (a worker that did not come up within the start-up
    budget, say) is one line naming the cluster and the remedy; a slow start says so once."""
    try:
        with slow_start_notice(what):
            yield
    except (OSError, TimeoutError) as exc:
        raise ServerStartError(f"{what} did not start ({plain(exc)}); {budget_remedy()}") from None


# (workers, scheduler address) of the local cluster that a whole study shares (shared_local_cluster).
_SHARED_LOCAL_CLUSTER: ContextVar[tuple[int, str] | None] = ContextVar("studyflow_shared_local_cluster", default=None)


def shared_cluster_address(workers: int) -> str | None:
    """The scheduler of the shared local cluster around this call, if it has `workers` workers."""
    shared = _SHARED_LOCAL_CLUSTER.get()
    return shared[1] if shared is not None and shared[0] == workers else None


@contextmanager
def shared_local_cluster(config: FannedOut) -> Iterator[str | None]:
    """One local cluster for every part run inside (the study's parts are subflows of one process):
    its workers start once, instead of once per part, and keep TensorFlow imported between parts.
    Yields its scheduler's address; nothing is started when the config does not fan out locally."""
    if not config.fans_out() or config.dask_address is not None:
        yield None
        return
    from distributed import LocalCluster

    with starting(local_cluster_name(config.workers)):
        cluster = LocalCluster(**local_cluster_kwargs(config.workers))
    with cluster:
        token = _SHARED_LOCAL_CLUSTER.set((config.workers, cluster.scheduler_address))
        try:
            yield cluster.scheduler_address
        finally:
            _SHARED_LOCAL_CLUSTER.reset(token)


@contextmanager
def cluster_client(config: FannedOut) -> Iterator[Any]:
    """A plain Dask client of the config's cluster (for work that is not Prefect tasks): the scheduler
    at `dask_address`, checked as before a part's trainings, or a local cluster of `workers` started
    here (the shared one if it is running), closed on the way out."""
    refuse_unshared_stores(config)  # again here: a deployment's run did not pass the command line
    if config.dask_address is not None:
        with scheduler_client(config.dask_address) as client:
            check_workers(client, config.dask_address, shares_steps=config.WORKERS_RUN_STEPS)
            yield client
        return
    shared = shared_cluster_address(config.workers)
    if shared is not None:
        with scheduler_client(shared) as client:
            yield client
        return
    with shared_local_cluster(config) as address, scheduler_client(address) as client:
        yield client


# ------------------------------------------------------------------------------ results


def cluster_result(future, address: str, client) -> Any:
    """A Dask future's result; a worker that died too often, or a scheduler gone, as a DaskClusterError
    naming it (the work's own errors pass as they are)."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as exc:
        raise DaskClusterError(
            f"a task killed every Dask worker it was given ({plain(exc)}); it was not "
            "tried again (Dask's distributed.scheduler.allowed-failures)"
        ) from None
    except Exception as exc:
        if _scheduler_gone(exc, client):
            raise DaskClusterError(
                f"the Dask scheduler {address} is gone ({plain(exc)}); the work stopped, its runs were closed"
            ) from None
        raise


def _scheduler_gone(exc: Exception, client) -> bool:
    from asyncio import CancelledError

    from distributed.comm.core import CommClosedError

    return isinstance(exc, (CancelledError, CommClosedError, OSError, TimeoutError)) or client.status not in (
        "running",
        "newly-created",
    )
