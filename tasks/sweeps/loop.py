"""The trial loop: one process runs trials until the study has N finished ones.

"Finished" means COMPLETE or PRUNED. A resumed sweep runs only what is missing; a trial queued
again after its process died (WAITING) is run first. A trial still RUNNING in another live process
(another Dask worker's loop) counts as on its way: this loop waits for it to finish, or to go silent
and be failed and queued again by the heartbeat. With K loops at once the total can overshoot N by at
most K - 1 when loops start trials at the same instant (each checks the count just before it starts one).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna

from studyflow.config.sweeps import SweepConfig
from studyflow.errors import TrainingDivergedError
from tasks.sweeps.storage import fail_stale_trials, retry_interrupted, trial_counts
from tasks.sweeps.trials import TrialObjective


def never() -> bool:
    return False


def run_trials_here(
    config: SweepConfig, study: optuna.Study, objective: TrialObjective, should_stop: Callable[[], bool] = never
) -> None:
    """Run trials in this process until the study has `config.trials` finished ones, or until
    `should_stop()` (asked before each trial: the command that started this loop has stopped).

    A trial whose training diverges (NaN loss) fails alone and another is drawn, as in parts 3 and 4;
    any other error stops the sweep (a bug should not be repeated N times). So that a search space
    where everything diverges cannot loop forever, `config.trials` divergences stop the sweep too.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    announced_wait = False
    failed_before = trial_counts(study)["FAIL"]
    while not should_stop():
        fail_stale_trials(study)
        counts = trial_counts(study)
        if counts["FINISHED"] >= config.trials:
            return
        if counts["FAIL"] - failed_before >= config.trials:
            raise TrainingDivergedError(
                f"{config.trials} trials of study {study.study_name} failed in this run; "
                "see their MLflow runs' studyflow.end_reason"
            )
        if counts["FINISHED"] + counts["RUNNING"] >= config.trials:
            if not announced_wait:
                print(
                    f"[studyflow] waiting for {counts['RUNNING']} running trial(s) of other processes to "
                    f"finish or to miss their heartbeat (grace {config.heartbeat_grace_s} s)"
                )
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
