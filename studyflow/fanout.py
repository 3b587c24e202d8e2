"""A part's independent trainings at once, on a Dask cluster (prefect-dask's DaskTaskRunner).

    with fan_out(config, parent=recorder) as steps:       # config: a FannedOut part config
        for name, widths in architectures.items():
            steps.add(f"{name} seed {seed}", train_architecture_task, kind, name, widths, data, settings)
        finished = steps.gather()                          # [(label, result or TrainingDivergedError)]

`steps.add(..., under=group)` opens that step's run under `group` (a model's replicate group run,
itself a child of the parent) instead of under the parent; a reused result is then linked from both.

- `workers=1`, no `dask_address`: each step runs at `add`, in this process, through `run_step`,
  exactly as before; Dask is not even imported.
- `workers=N`: a LocalCluster of N worker processes on 127.0.0.1, one task at a time each, and
  TensorFlow's intra-op threads (and OpenMP's) = this machine's cores / N, set in each worker's
  environment before TensorFlow starts, so N trainings share the cores instead of fighting.
- `dask_address`: the steps go to that scheduler's workers.

Each step stays what it is in one process: a cached Prefect task (the task runner's client sends
it with the flow run's context, so it is a task run of this flow run) that opens its own MLflow
child run under the same parent, logged by the worker itself (the RunRecorder travels by its
store's address). Results and cache locks stay in the step-results folder (studyflow.steps), which
every worker must read and write at the same path.

A worker that dies mid-training: Dask's scheduler hands its task to another worker (a Prefect
retry cannot: it runs inside the process that died). The dead worker's lock on the step's cache
key is taken over (its process is gone) and its MLflow run, left RUNNING, is closed KILLED when
the part's steps are gathered: once every step has its result, no child run of this parent can
legitimately still be running.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterator

from studyflow import paths, tracking
from studyflow.config import FannedOut
from studyflow.errors import DaskClusterError, TrainingDivergedError
from studyflow.startup import ServerStartError, budget_remedy, slow_start_notice, start_budget
from studyflow.steps import checked_result, code_digest, configured_step, run_step
from studyflow.tracking import RunRecorder
from studyflow.tracking.provenance import TEMPORARY_PREFECT_SERVER_ENV

CONNECT_TIMEOUT_S = 10
WORKER_PRELOAD = "studyflow.entrypoints.dask_worker"  # what a worker imports before it joins (see that module)
LOCAL_STORE_SCHEMES = ("sqlite:", "file:")


def cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def worker_environment(workers: int) -> dict[str, str]:
    """Each local worker's share of the cores, for TensorFlow (read when it starts) and OpenMP."""
    threads = str(max(1, cores() // workers))
    return {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads, "OMP_NUM_THREADS": threads}


# ------------------------------------------------------------------------- refusals, before any work

def refuse_unshared_stores(config: FannedOut) -> None:
    """A cluster at `dask_address` may run on other machines: it needs stores they all reach. Refused
    in one line naming what to set. (A local cluster shares this machine's files: the embedded
    SQLite store takes its few writers, as it takes two identical commands at once.)"""
    address = config.dask_address
    if address is None:
        return
    uri = tracking.tracking_uri()
    if uri.startswith(LOCAL_STORE_SCHEMES) or "://" not in uri:
        raise DaskClusterError(
            f"dask_address={address}: the tracking store {uri} is a local file the cluster's workers cannot "
            "share; set MLFLOW_TRACKING_URI to an MLflow server every worker reaches (e.g. http://HOST:5000), "
            "or drop dask_address (workers=N runs a local cluster)")
    if not os.environ.get("PREFECT_API_URL"):
        raise DaskClusterError(
            f"dask_address={address}: Prefect's temporary local server cannot be reached from the cluster's "
            "workers; set PREFECT_API_URL to a Prefect server every worker reaches (e.g. http://HOST:4200/api)")


def check_fan_out(config: FannedOut) -> None:
    """Everything a fanned-out run needs, before any work: the stores (above), and a given scheduler
    that answers, has workers, shares the step-results folder and runs this code."""
    if not config.fans_out():
        return
    refuse_unshared_stores(config)
    if config.dask_address is not None:
        with scheduler_client(config.dask_address) as client:
            check_workers(client, config.dask_address)


@contextmanager
def scheduler_client(address: str) -> Iterator[Any]:
    """A plain Dask client of the scheduler; a DaskClusterError naming it if it does not answer."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise DaskClusterError(f"the Dask scheduler {address} does not answer ({_plain(exc)}); start it "
                               "(dask scheduler, or make stack-up), or unset dask_address") from None
    try:
        yield client
    finally:
        client.close(timeout=CONNECT_TIMEOUT_S)


def check_workers(client, address: str) -> int:
    """The scheduler's workers (at least one) read this machine's step-results folder at the same
    path and run the same code (the steps' cache keys hash it); returns their count."""
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError):
        raise DaskClusterError(f"the Dask scheduler {address} has no workers; start some "
                               f"(dask worker {address}, or make stack-up)") from None
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
            "at the same path")
    ours = code_digest("tasks")
    codes = client.run(code_digest, "tasks", on_error="return")
    other = sorted(worker for worker, digest in codes.items() if digest != ours)
    if other:
        raise DaskClusterError(f"Dask workers {', '.join(other)} of {address} run other studyflow code than this "
                               "checkout (or none); run them from the same image or checkout")
    return len(seen)


def _read_text(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def _plain(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


# ------------------------------------------------------------------------------------------ steps

@dataclass
class _Submitted:
    label: str
    task: Any
    args: tuple
    kwargs: dict
    parent: RunRecorder | None  # the run the step's run opens under: the part's parent or a replicate group
    future: Any


class SequentialSteps:
    """workers=1: each step runs when it is added, in this process (run_step), as it always did."""

    def __init__(self, parent: RunRecorder | None, force: bool):
        self.parent, self.force = parent, force
        self._done: list[tuple[str, Any]] = []

    def add(self, label: str, task, *args: Any, under: RunRecorder | None = None, **kwargs: Any) -> None:
        try:
            self._done.append((label, run_step(task, *args, parent=under or self.parent, also_link=self.parent,
                                               force=self.force, **kwargs)))
        except TrainingDivergedError as exc:
            self._done.append((label, exc))

    def gather(self) -> list[tuple[str, Any]]:
        return list(self._done)


class DaskSteps:
    """Steps submitted to a started DaskTaskRunner; gathered in the order they were added."""

    def __init__(self, runner, address: str, parent: RunRecorder | None, force: bool):
        self.runner, self.address, self.parent, self.force = runner, address, parent, force
        self._submitted: list[_Submitted] = []

    def _submit(self, task, args: tuple, kwargs: dict, parent: RunRecorder | None, force: bool):
        from prefect.utilities.callables import get_call_parameters

        configured = configured_step(task, force)
        full_args = (parent, *args) if parent is not None else args
        return self.runner.submit(configured, get_call_parameters(configured.fn, full_args, kwargs))

    def add(self, label: str, task, *args: Any, under: RunRecorder | None = None, **kwargs: Any) -> None:
        parent = under or self.parent
        self._submitted.append(_Submitted(label, task, args, kwargs, parent,
                                          self._submit(task, args, kwargs, parent, self.force)))

    def _result(self, future):
        from distributed import KilledWorker

        try:
            return future.result()
        except KilledWorker as exc:
            raise DaskClusterError(f"a training killed every Dask worker it was given ({_plain(exc)}); "
                                   "it was not tried again (Dask's distributed.scheduler.allowed-failures)") from None
        except Exception as exc:
            if self._scheduler_gone(exc):
                raise DaskClusterError(f"the Dask scheduler {self.address} is gone ({_plain(exc)}); the part "
                                       "stopped, its runs were closed") from None
            raise

    def _scheduler_gone(self, exc: Exception) -> bool:
        from asyncio import CancelledError

        from distributed.comm.core import CommClosedError

        return (isinstance(exc, (CancelledError, CommClosedError, OSError, TimeoutError))
                or self.runner.client.status not in ("running", "newly-created"))

    def gather(self) -> list[tuple[str, Any]]:
        done = []
        for step in self._submitted:
            try:
                result = self._result(step.future)
            except TrainingDivergedError as exc:
                done.append((step.label, exc))
                continue
            redo = lambda step=step: self._result(  # noqa: E731
                self._submit(step.task, step.args, step.kwargs, step.parent, True))
            done.append((step.label, checked_result(step.task, result, step.parent, self.force, redo,
                                                    also_link=self.parent)))
        return done


def local_cluster_kwargs(workers: int) -> dict[str, Any]:
    """A LocalCluster of `workers` processes on 127.0.0.1, one task each, their share of the cores, and
    the Prefect API this flow run reports to (the temporary local server's address is in no setting)."""
    import dask
    from prefect.context import SyncClientContext

    preload = [WORKER_PRELOAD, *dask.config.get("distributed.worker.preload", [])]  # and the user's own
    api_url = str(SyncClientContext.get().client.api_url)  # the client this flow run reports with
    # Dask's own INFO lines (a cluster's start and close, with the tracebacks of the connections its
    # close cuts) are its internals, not the command's: warnings and errors only, here and in workers.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    environment = {**worker_environment(workers), "PREFECT_API_URL": api_url, "DASK_LOGGING__DISTRIBUTED": "warning"}
    if not os.environ.get("PREFECT_API_URL"):  # the command's temporary server
        environment[TEMPORARY_PREFECT_SERVER_ENV] = "1"
    # death_timeout: how long a worker (importing TensorFlow in its preload) may take to come up.
    return {"n_workers": workers, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1",
            "dashboard_address": None, "env": environment, "preload": preload, "death_timeout": start_budget()}


def _local_cluster_name(workers: int) -> str:
    return f"a local Dask cluster of {workers} workers"


@contextmanager
def _started(what: str) -> Iterator[None]:
    """Around a local cluster's start: a failure (a worker that did not come up within the start-up
    budget, say) is one line naming the cluster and the remedy."""
    try:
        yield
    except (OSError, TimeoutError) as exc:
        raise ServerStartError(f"{what} did not start ({_plain(exc)}); {budget_remedy()}") from None


def _client(runner, config: FannedOut, starts_cluster: bool):
    """The runner's Dask client. A cluster of its own starts here (prefect-dask starts it on first use)."""
    if not starts_cluster:
        try:
            return runner.client
        except (OSError, TimeoutError) as exc:
            raise DaskClusterError(f"the Dask scheduler {config.dask_address} does not answer ({_plain(exc)}); "
                                   "start it, or unset dask_address") from None
    what = _local_cluster_name(config.workers)
    with slow_start_notice(what), _started(what):
        return runner.client


def trained_outcomes(finished: list[tuple[str, Any]], what: str) -> list[Any]:
    """The outcomes of the steps that finished; a training that diverged is reported and left out
    (it failed its own run only). TrainingDivergedError if every one diverged."""
    outcomes = []
    for label, outcome in finished:
        if isinstance(outcome, TrainingDivergedError):
            print(f"{label}: run FAILED, the part goes on without it: {outcome}")
        else:
            outcomes.append(outcome)
    if not outcomes:
        raise TrainingDivergedError(f"every {what} training diverged")
    return outcomes


# (workers, scheduler address) of the local cluster that a whole study shares (shared_local_cluster).
_SHARED_LOCAL_CLUSTER: ContextVar[tuple[int, str] | None] = ContextVar("studyflow_shared_local_cluster",
                                                                      default=None)


@contextmanager
def shared_local_cluster(config: FannedOut) -> Iterator[str | None]:
    """One local cluster for every part run inside (the study's parts are subflows of one process):
    its workers start once, instead of once per part, and keep TensorFlow imported between parts.
    Yields its scheduler's address; nothing is started when the config does not fan out locally."""
    if not config.fans_out() or config.dask_address is not None:
        yield None
        return
    from distributed import LocalCluster

    what = _local_cluster_name(config.workers)
    with slow_start_notice(what), _started(what):
        cluster = LocalCluster(**local_cluster_kwargs(config.workers))
    with cluster:
        token = _SHARED_LOCAL_CLUSTER.set((config.workers, cluster.scheduler_address))
        try:
            yield cluster.scheduler_address
        finally:
            _SHARED_LOCAL_CLUSTER.reset(token)


@contextmanager
def fan_out(config: FannedOut, parent: RunRecorder | None, force: bool = False) -> Iterator[SequentialSteps | DaskSteps]:
    """Steps that run one after another here (workers=1), or on a Dask cluster; see the module."""
    if not config.fans_out():
        yield SequentialSteps(parent, force)
        return
    refuse_unshared_stores(config)  # again here: a deployment's run did not pass the command line
    from prefect_dask import DaskTaskRunner

    shared = _SHARED_LOCAL_CLUSTER.get()
    starts_cluster = False
    if config.dask_address is not None:
        runner = DaskTaskRunner(address=config.dask_address, client_kwargs={"timeout": CONNECT_TIMEOUT_S})
    elif shared is not None and shared[0] == config.workers:
        runner = DaskTaskRunner(address=shared[1], client_kwargs={"timeout": CONNECT_TIMEOUT_S})
    else:
        starts_cluster = True
        runner = DaskTaskRunner(cluster_kwargs=local_cluster_kwargs(config.workers),
                                client_kwargs={"timeout": start_budget()})
    reason = "its Dask worker died during the training, which ran again on another worker"
    try:
        with runner:
            client = _client(runner, config, starts_cluster)
            address = config.dask_address or client.scheduler.address
            if config.dask_address is not None:
                check_workers(client, address)
            print(f"[studyflow] trainings on the Dask cluster {address} "
                  f"({len(client.scheduler_info()['workers'])} workers)")
            try:
                yield DaskSteps(runner, address, parent, force)
            except BaseException as exc:
                reason = f"the part stopped: {_plain(exc)}"
                raise
    finally:
        if parent is not None:
            close_leftover_children(parent, reason)


def close_leftover_children(parent: RunRecorder, reason: str, parent_run_id: str | None = None) -> list[str]:
    """Close KILLED the child runs of `parent` still RUNNING once its steps are over: each was left by
    a worker that died (or was stopped with the part). A replicate group's run stays open (its flow
    closes it once it holds its statistics): the seed runs under it are looked at instead."""
    client = parent.client
    parent_run_id = parent_run_id or parent.run_id
    closed = []
    try:
        runs = client.search_runs([parent.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_run_id}' "
                                  "and attributes.status = 'RUNNING'")
    except Exception as exc:  # the store is away: doctor closes them later
        print(f"[studyflow] could not look for runs left RUNNING under {parent_run_id}: {exc}", file=sys.stderr)
        return closed
    for run in runs:
        if tracking.is_replicate_group(run.data.tags):
            closed += close_leftover_children(parent, reason, run.info.run_id)
            continue
        owner = run.data.tags.get(tracking.Tag.PROCESS, "?")
        if tracking.close_run(client, run.info.run_id, "KILLED", f"{reason} (process {owner})"):
            closed.append(run.info.run_id)
            print(f"[studyflow] run {run.info.run_id} ({run.info.run_name}) RUNNING -> KILLED: {reason}")
    return closed
