"""A sweep's trials at once on a Dask cluster: one trial loop per worker, coordinated by the Optuna
storage.

    run_trials_on_cluster(config, study, data, parent, flow_run_id)    # workers > 1, or a dask_address

The cluster is the one a part's trainings use (studyflow.cluster): a local cluster of `workers`
processes, each with its share of the cores and TensorFlow preloaded, or the scheduler at
`dask_address` (workers on many machines). Each worker's thread gets one Dask task, `trial_loop`: it
opens the study from the storage (PostgreSQL, which every worker writes) and runs the trial loop of
a one-process sweep (tasks/sweeps/loop.py) until the study has `trials` finished trials. Each trial
is a child run of the sweep's parent run, logged by the worker (tag `studyflow.process`). The data
travel once from this machine to every worker, so the workers need no copy of data/.

A worker killed mid-trial: Dask's scheduler runs its loop again on another worker (up to Dask's
distributed.scheduler.allowed-failures). The trial it was training stays RUNNING in Optuna until its
heartbeat has been silent for `heartbeat_grace_s`; then a loop fails it, its MLflow run is closed
KILLED and its parameters are queued again (Optuna's RetryHeartbeatStaleTrialCallback), as after a
kill -9 of a one-process sweep.

Stopping (Ctrl-C, a loop's error, the scheduler gone): the loops are told to stop (a Dask Event each
reads before a trial). A local cluster is closed with its workers, and the trials they left RUNNING
are failed and queued again at once, their runs closed KILLED. A remote worker finishes the trial it
is in (Dask does not interrupt a running task), then stops.
"""

from __future__ import annotations

import uuid

import optuna

from studyflow import tracking
from studyflow.cluster import cluster_client, cluster_result, plain
from studyflow.config.sweeps import SweepConfig
from studyflow.tracking import RunRecorder
from tasks.sweeps.loop import run_trials_here
from tasks.sweeps.record import close_orphaned_trial_runs, close_stale_trial_run
from tasks.sweeps.storage import open_storage, open_study, retry_abandoned_trials
from tasks.sweeps.trials import TrialObjective
from tasks.training import TrainingData


def run_trials_on_cluster(
    config: SweepConfig, study: optuna.Study, data: TrainingData, parent: RunRecorder, flow_run_id: str = ""
) -> None:
    """One trial loop per worker thread of the config's cluster, until the study has enough trials."""
    from distributed import Event, as_completed

    try:
        with cluster_client(config) as client:
            address = config.dask_address or client.scheduler.address
            loops = sum(worker["nthreads"] for worker in client.scheduler_info()["workers"].values())
            print(f"[studyflow] trials on the Dask cluster {address} ({loops} at once)")
            stop = Event(f"studyflow-sweep-stop-{uuid.uuid4().hex}", client=client)
            shared_data = client.scatter(data, broadcast=True)  # a copy on each worker: none lost with one
            futures = [
                client.submit(
                    trial_loop,
                    config,
                    shared_data,
                    parent,
                    flow_run_id,
                    index,
                    stop.name,
                    key=f"trial-loop-{index}-{stop.name}",
                )
                for index in range(loops)
            ]
            try:
                for future in as_completed(futures, loop=client.loop):  # not the default client: ours
                    cluster_result(future, address, client)
            finally:
                _tell(stop)
    except BaseException as exc:
        if config.dask_address is None:  # the local cluster is closed: the trials it ran are dead
            retry_abandoned_trials(study, parent.run_id)
            why = tracking.stop_reason(exc) or f"the sweep stopped: {plain(exc)}"
            close_orphaned_trial_runs(parent.client, study, parent.experiment_id, why)
        raise


def _tell(stop) -> None:
    try:
        stop.set()
    except Exception:  # the scheduler is gone, and with it the loops' way to run more trials
        pass


def trial_loop(
    config: SweepConfig, data: TrainingData, parent: RunRecorder, flow_run_id: str, index: int, stop_event: str
) -> None:
    """One worker's trials (a Dask task): open the study and run trials until it has enough finished
    ones, or until the command that submitted this says stop."""
    from distributed import Event

    stop = Event(stop_event)

    def stopping() -> bool:
        try:
            return stop.is_set()
        except Exception:  # the scheduler is gone: so is the command that ran the sweep
            return True

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the command said once which study it opened
    # worker_index: each loop's sampler draws from its own seed (index 0 is a one-process sweep's)
    study = open_study(config, open_storage(config, on_stale_trial=close_stale_trial_run), worker_index=index + 1)
    run_trials_here(config, study, TrialObjective(config, data, parent, flow_run_id), should_stop=stopping)
