"""The sweeps' Prefect tasks: open the Optuna study, load the data, run the trials, report."""

from __future__ import annotations

from tasks.prefect_task import studyflow_task
from tasks.sweeps.run import SweepSteps, open_sweep, report_sweep, run_trials, sweep_data

open_sweep_task = studyflow_task(open_sweep, name="open-study")
sweep_data_task = studyflow_task(sweep_data, name="sweep-data")
run_trials_task = studyflow_task(run_trials, name="run-trials")
report_sweep_task = studyflow_task(report_sweep, name="report-sweep")

PREFECT_STEPS = SweepSteps(open=open_sweep_task, data=sweep_data_task, trials=run_trials_task, report=report_sweep_task)
