"""A part's independent trainings at once, on a Dask cluster (prefect-dask's DaskTaskRunner).

    with fan_out(config, parent=recorder) as steps:       # config: a FannedOut part config
        for name, widths in architectures.items():
            steps.add(f"{name} seed {seed}", train_architecture_task, kind, name, widths, data, settings)
        finished = steps.gather()                          # [(label, result or TrainingDivergedError)]

`steps.add(..., under=group)` opens that step's run under `group` (a model's replicate group run,
itself a child of the parent) instead of under the parent; a reused result is then linked from both.

- `workers=1`, no `dask_address`: each step runs at `add`, in this process, through `run_step`,
  exactly as before; Dask is not even imported.
- `workers=N` or `dask_address`: the steps go to the cluster of studyflow.cluster (a local one of N
  workers, each with its share of the cores, or that scheduler's workers).

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

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from studyflow import tracking
from studyflow.cluster import (
    CONNECT_TIMEOUT_S,
    check_workers,
    cluster_result,
    local_cluster_kwargs,
    local_cluster_name,
    plain,
    refuse_unshared_stores,
    shared_cluster_address,
    starting,
)
from studyflow.config import FannedOut
from studyflow.errors import DaskClusterError, TrainingDivergedError
from studyflow.startup import start_budget
from studyflow.steps import checked_result, configured_step, run_step
from studyflow.tracking import RunRecorder

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
            self._done.append(
                (
                    label,
                    run_step(
                        task, *args, parent=under or self.parent, also_link=self.parent, force=self.force, **kwargs
                    ),
                )
            )
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
        self._submitted.append(
            _Submitted(label, task, args, kwargs, parent, self._submit(task, args, kwargs, parent, self.force))
        )

    def _result(self, future):
        return cluster_result(future, self.address, self.runner.client)

    def gather(self) -> list[tuple[str, Any]]:
        done = []
        for step in self._submitted:
            try:
                result = self._result(step.future)
            except TrainingDivergedError as exc:
                done.append((step.label, exc))
                continue
            redo = lambda step=step: self._result(  # noqa: E731
                self._submit(step.task, step.args, step.kwargs, step.parent, True)
            )
            done.append(
                (step.label, checked_result(step.task, result, step.parent, self.force, redo, also_link=self.parent))
            )
        return done


def _client(runner, config: FannedOut, starts_cluster: bool):
    """The runner's Dask client. A cluster of its own starts here (prefect-dask starts it on first use)."""
    if not starts_cluster:
        try:
            return runner.client
        except (OSError, TimeoutError) as exc:
            raise DaskClusterError(
                f"the Dask scheduler {config.dask_address} does not answer ({plain(exc)}); "
                "start it, or unset dask_address"
            ) from None
    with starting(local_cluster_name(config.workers)):
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


@contextmanager
def fan_out(
    config: FannedOut, parent: RunRecorder | None, force: bool = False
) -> Iterator[SequentialSteps | DaskSteps]:
    """Steps that run one after another here (workers=1), or on a Dask cluster; see the module."""
    if not config.fans_out():
        yield SequentialSteps(parent, force)
        return
    refuse_unshared_stores(config)  # again here: a deployment's run did not pass the command line
    from prefect_dask import DaskTaskRunner

    shared = shared_cluster_address(config.workers)
    starts_cluster = False
    if config.dask_address is not None:
        runner = DaskTaskRunner(address=config.dask_address, client_kwargs={"timeout": CONNECT_TIMEOUT_S})
    elif shared is not None:
        runner = DaskTaskRunner(address=shared, client_kwargs={"timeout": CONNECT_TIMEOUT_S})
    else:
        starts_cluster = True
        runner = DaskTaskRunner(
            cluster_kwargs=local_cluster_kwargs(config.workers), client_kwargs={"timeout": start_budget()}
        )
    reason = "its Dask worker died during the training, which ran again on another worker"
    try:
        with runner:
            client = _client(runner, config, starts_cluster)
            address = config.dask_address or client.scheduler.address
            if config.dask_address is not None:
                check_workers(client, address)
            print(
                f"[studyflow] trainings on the Dask cluster {address} "
                f"({len(client.scheduler_info()['workers'])} workers)"
            )
            try:
                yield DaskSteps(runner, address, parent, force)
            except BaseException as exc:
                reason = f"the part stopped: {plain(exc)}"
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
        runs = client.search_runs(
            [parent.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_run_id}' and attributes.status = 'RUNNING'"
        )
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
