"""Running a sweep's trials until N have finished, here or in K worker processes, and the whole sweep
as one plain function (the Prefect flows in flows/sweeps.py compose the same steps as tasks).

"Finished" means COMPLETE or PRUNED. A resumed sweep runs only what is missing; a trial queued
again after its process died (WAITING) is run first. A trial still RUNNING in another live process
counts as on its way: this process waits for it to finish, or to go silent and be failed and queued
again. With K workers the total can overshoot N by at most K - 1 when workers start trials at the
same instant (each checks the count just before it starts one).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from studyflow import processes, tracking
from studyflow.config.sweeps import SweepConfig
from studyflow.errors import SweepWorkerError
from studyflow.tracking import RunRecorder
from tasks.sweeps.record import close_orphaned_trial_runs, close_stale_trial_run, report_sweep, sweep_parent_run
from tasks.sweeps.storage import fail_stale_trials, open_storage, open_study, retry_interrupted, trial_counts
from tasks.sweeps.trials import TrialObjective, sweep_data
from tasks.training import TrainingData, TrainingDivergedError

WORKER_STOP_TIMEOUT_S = 60



def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def open_sweep(config: SweepConfig) -> optuna.Study:
    """Connect to both stores and open the study; fail dead trials before anything is counted."""
    tracking.connect()
    storage = open_storage(config, on_stale_trial=close_stale_trial_run)
    study = open_study(config, storage)
    fail_stale_trials(study)
    counts = trial_counts(study)
    print(f"[studyflow] study {study.study_name}: {counts['FINISHED']} of {config.trials} trials finished "
          f"({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed, "
          f"{counts['WAITING']} queued again, {counts['RUNNING']} running)")
    return study


def run_trials_here(config: SweepConfig, study: optuna.Study, objective: TrialObjective) -> None:
    """Run trials in this process until the study has `config.trials` finished ones.

    A trial whose training diverges (NaN loss) fails alone and another is drawn, as in parts 3 and 4;
    any other error stops the sweep (a bug should not be repeated N times). So that a search space
    where everything diverges cannot loop forever, `config.trials` divergences stop the sweep too.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    announced_wait = False
    failed_before = trial_counts(study)["FAIL"]
    while True:
        fail_stale_trials(study)
        counts = trial_counts(study)
        if counts["FINISHED"] >= config.trials:
            return
        if counts["FAIL"] - failed_before >= config.trials:
            raise TrainingDivergedError(f"{config.trials} trials of study {study.study_name} failed in this run; "
                                        "see their MLflow runs' studyflow.end_reason")
        if counts["FINISHED"] + counts["RUNNING"] >= config.trials:
            if not announced_wait:
                print(f"[studyflow] waiting for {counts['RUNNING']} running trial(s) of other processes to "
                      f"finish or to miss their heartbeat (grace {config.heartbeat_grace_s} s)")
                announced_wait = True
            time.sleep(config.heartbeat_interval_s)
            continue
        announced_wait = False
        try:
            study.optimize(objective, n_trials=1, gc_after_trial=True, catch=(TrainingDivergedError,))
        except KeyboardInterrupt:
            if objective.current_trial_id is not None:
                retry_interrupted(study, objective.current_trial_id)  # a resumed sweep redoes it
            raise


def run_trials_in_workers(config: SweepConfig, parent: RunRecorder, flow_run_id: str) -> None:
    """K processes, each with its own TensorFlow and cores // K threads, against the shared storage."""
    threads = max(1, available_cores() // config.workers)
    spec = {"kind": config.KIND, "config": config.model_dump(mode="json"), "parent_run_id": parent.run_id,
            "experiment_id": parent.experiment_id, "context": parent.context, "flow_run_id": flow_run_id,
            "threads": threads}
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking.tracking_uri(), "TF_NUM_INTRAOP_THREADS": str(threads),
           "TF_NUM_INTEROP_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory(prefix="studyflow-sweep-") as folder:
        spec_file = Path(folder) / "worker.json"
        spec_file.write_text(json.dumps(spec))
        print(f"[studyflow] starting {config.workers} workers, {threads} thread(s) each")
        workers = [subprocess.Popen([sys.executable, "-m", "tasks.sweeps.worker", str(spec_file), str(index)], env=env,
                                    start_new_session=True,  # a Ctrl-C reaches us only; we stop them once
                                    preexec_fn=processes.die_with(os.getpid()))  # no orphan if we are killed
                   for index in range(config.workers)]
        try:
            codes = [worker.wait() for worker in workers]
        except BaseException:
            for worker in workers:  # SIGTERM: each worker closes its trial's run as KILLED
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(timeout=WORKER_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    worker.kill()
            raise
    failed = [(index, code) for index, code in enumerate(codes) if code != 0]
    if failed:
        raise SweepWorkerError("worker(s) failed: " + ", ".join(f"worker {index} exited with {code}"
                                                                for index, code in failed))


def run_trials(config: SweepConfig, study: optuna.Study, data: TrainingData, parent: RunRecorder,
               flow_run_id: str = "") -> None:
    close_orphaned_trial_runs(parent.client, study, parent.experiment_id)
    if config.workers == 1:
        run_trials_here(config, study, TrialObjective(config, data, parent, flow_run_id))
    else:
        run_trials_in_workers(config, parent, flow_run_id)
    close_orphaned_trial_runs(parent.client, study, parent.experiment_id)


def run_sweep(config: SweepConfig) -> dict:
    """The whole sweep without Prefect (benchmarks, tests, worker-free scripts); the flows do the same."""
    study = open_sweep(config)
    dataset, data = sweep_data(config)
    with sweep_parent_run(tracking.connect(), config, study, dataset) as parent:
        run_trials(config, study, data, parent)
        summary = report_sweep(parent, config, study)
    return summary
