"""A whole sweep: open the study, load the data, run trials until N have finished (here, or on a Dask
cluster), report. One function for both ways to run it: `run_sweep` calls the steps as they are
(benchmarks, tests, scripts), the Prefect flows (flows/sweeps.py) as their tasks (tasks/sweeps/tasks.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import optuna

from studyflow import tracking
from studyflow.config.sweeps import SweepConfig
from studyflow.tracking import RunRecorder
from tasks.sweeps.loop import run_trials_here
from tasks.sweeps.record import close_orphaned_trial_runs, close_stale_trial_run, report_sweep, sweep_parent_run
from tasks.sweeps.storage import fail_stale_trials, open_storage, open_study, trial_counts
from tasks.sweeps.trials import TrialObjective, sweep_data
from tasks.training import TrainingData


def open_sweep(config: SweepConfig) -> optuna.Study:
    """Connect to both stores and open the study; fail dead trials before anything is counted."""
    tracking.connect()
    storage = open_storage(config, on_stale_trial=close_stale_trial_run)
    study = open_study(config, storage)
    fail_stale_trials(study)
    counts = trial_counts(study)
    print(
        f"[studyflow] study {study.study_name}: {counts['FINISHED']} of {config.trials} trials finished "
        f"({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed, "
        f"{counts['WAITING']} queued again, {counts['RUNNING']} running)"
    )
    return study


def run_trials(
    config: SweepConfig, study: optuna.Study, data: TrainingData, parent: RunRecorder, flow_run_id: str = ""
) -> None:
    """Trials until the study has `config.trials` finished ones: in this process (workers=1, no
    dask_address; Dask is not imported), or at once on a Dask cluster (tasks/sweeps/parallel.py)."""
    close_orphaned_trial_runs(parent.client, study, parent.experiment_id)
    if config.fans_out():
        from tasks.sweeps.parallel import run_trials_on_cluster

        run_trials_on_cluster(config, study, data, parent, flow_run_id)
    else:
        run_trials_here(config, study, TrialObjective(config, data, parent, flow_run_id))
    close_orphaned_trial_runs(parent.client, study, parent.experiment_id)


@dataclass(frozen=True)
class SweepSteps:
    """The sweep's steps: the plain functions, or their Prefect tasks (tasks/sweeps/tasks.py)."""

    open: Callable = open_sweep
    data: Callable = sweep_data
    trials: Callable = run_trials
    report: Callable = report_sweep


@dataclass(frozen=True)
class SweepOutcome:
    study: optuna.Study
    parent: RunRecorder  # the sweep's parent run, ended
    summary: dict


def sweep(config: SweepConfig, steps: SweepSteps = SweepSteps(), flow_run_id: str = "") -> SweepOutcome:
    """The whole sweep, in its one parent run: created, or reopened to resume the study."""
    study = steps.open(config)
    dataset, data = steps.data(config)
    with sweep_parent_run(tracking.connect(), config, study, dataset) as parent:
        steps.trials(config, study, data, parent, flow_run_id)
        summary = steps.report(parent, config, study)
    return SweepOutcome(study, parent, summary)


def run_sweep(config: SweepConfig) -> dict:
    """The whole sweep without Prefect (benchmarks, tests, scripts); its summary."""
    return sweep(config).summary
