"""How a sweep appears in MLflow: one parent run per Optuna study, one child run per trial, and the
sweep's results on its parent run (the best trial, or the Pareto front of the MTL sweep).

Experiment `studyflow-sweep-<kind>`. The parent run belongs to the study (its id is a study user
attribute), so a resumed sweep reopens it and the MLflow UI shows one sweep with all its trials.
Each trial's run carries tags that name its study, storage, trial number and Prefect flow run; the
trial carries its run's id as a user attribute. A trial run ends FINISHED (complete or pruned, the
Optuna state in `studyflow.trial_state`), FAILED (an error) or KILLED (interrupted, or its process
died and the heartbeat noticed). The owner of a RUNNING parent (host, pid, process start time) is
recorded, so that a later sweep can tell a parent left by a killed process from a live one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from mlflow import MlflowClient
from optuna.trial import TrialState

from studyflow import processes, tracking
from studyflow.config.sweeps import SweepConfig
from studyflow.errors import SweepBusyError
from studyflow.tracking import RunRecorder, Tag, TrialAttr
from studyflow.tracking.descriptions import DESCRIPTION_TAG, parent_description
from tasks.data import Dataset
from tasks.sweeps import figures
from tasks.sweeps.storage import masked_url, trial_counts


def sweep_part(kind: str) -> str:
    return f"sweep-{kind}"


def close_stale_trial_run(trial: optuna.trial.FrozenTrial) -> None:
    """The heartbeat found this trial's process dead: its run ends KILLED (called before the retry)."""
    run_id = trial.user_attrs.get(TrialAttr.MLFLOW_RUN_ID)
    if run_id:
        tracking.close_run(
            MlflowClient(tracking.tracking_uri()),
            run_id,
            "KILLED",
            f"trial {trial.number}: no heartbeat; its process died. Its parameters were queued again.",
            {Tag.TRIAL_STATE: "FAIL"},
        )


def close_orphaned_trial_runs(
    client: MlflowClient, study: optuna.Study, experiment_id: str, why: str = "its process died"
) -> int:
    """Trial runs still RUNNING although Optuna has finished their trial (e.g. the process died between
    the two stores' updates, or a stopped sweep failed it): close them KILLED, saying `why`. Runs of
    trials that are still running are left alone."""
    runs = client.search_runs(
        [experiment_id],
        max_results=5000,
        filter_string=(f"tags.`{Tag.OPTUNA_STUDY}` = '{study.study_name}' and attributes.status = 'RUNNING'"),
    )
    trials = {str(trial.number): trial for trial in study.get_trials(deepcopy=False)}
    closed = 0
    for run in runs:
        number = run.data.tags.get(Tag.TRIAL_NUMBER)
        trial = trials.get(number) if number is not None else None
        if number is None or (trial is not None and not trial.state.is_finished()):
            continue
        state = trial.state.name if trial is not None else "FAIL"
        tracking.close_run(
            client, run.info.run_id, "KILLED", f"trial {number} is {state} in Optuna; {why}", {Tag.TRIAL_STATE: state}
        )
        closed += 1
    return closed


def trial_tags(config: SweepConfig, trial: optuna.Trial, flow_run_id: str) -> dict[str, Any]:
    tags = {
        Tag.SWEEP_KIND: config.KIND,
        Tag.OPTUNA_STUDY: config.resolved_study_name,
        Tag.OPTUNA_STORAGE: masked_url(config.storage_url),
        Tag.TRIAL_NUMBER: trial.number,
        Tag.TRIAL_ID: trial._trial_id,
        Tag.PROCESS: processes.identity(),
    }
    if flow_run_id:
        tags[Tag.PREFECT_FLOW_RUN_ID] = flow_run_id  # also right in Dask workers, which have no Prefect context
    retried = trial.storage.get_trial_system_attrs(trial._trial_id).get("failed_trial")
    if retried is not None:
        tags[Tag.RETRY_OF] = retried
    return tags


def _flat_params(config: SweepConfig) -> dict[str, Any]:
    params = {}
    for key, value in config.study_settings().items():
        if isinstance(value, dict):
            params.update({f"{key}.{inner}": inner_value for inner, inner_value in value.items()})
        else:
            params[key] = value
    params.update({"study_name": config.resolved_study_name, "storage": masked_url(config.storage_url)})
    return params


@contextmanager
def sweep_parent_run(
    client: MlflowClient, config: SweepConfig, study: optuna.Study, dataset: Dataset
) -> Iterator[RunRecorder]:
    """The study's parent run: created on the first sweep, reopened by a resumed one (so the MLflow
    UI shows one sweep with all its trials); ended like every run (tracking.ending)."""
    part = sweep_part(config.KIND)
    experiment_id = tracking.ensure_experiment(client, part)
    existing = _recorded_parent(client, study, experiment_id)
    if existing is None:
        opened = tracking.tracked_run(
            client,
            part,
            study.study_name,
            profile=config.profile,
            seed=config.seed,
            dataset_digest=dataset.digest,
            tags={
                Tag.SWEEP_KIND: config.KIND,
                Tag.OPTUNA_STUDY: study.study_name,
                Tag.OPTUNA_STORAGE: masked_url(config.storage_url),
            },
        )
    else:
        owner = existing.data.tags.get(Tag.PROCESS, "")
        if existing.info.status == "RUNNING" and processes.is_alive(owner) is not False:
            raise SweepBusyError(
                f"study {study.study_name!r} is being run by another process ({owner or 'unknown'}; MLflow run "
                f"{existing.info.run_id}). Wait for it, or run more trials at once with --set workers=K (or a "
                "dask_address) on a PostgreSQL storage."
            )
        context = {"part": part, "profile": config.profile, "seed": config.seed, "dataset_digest": dataset.digest}
        opened = tracking.resumed_run(client, existing, context)
    with opened as recorder:
        recorder.system_metrics = config.system_metrics
        if existing is None:
            recorder.set_tags({DESCRIPTION_TAG: parent_description(part, config.profile, _flat_params(config))})
            recorder.log_params(_flat_params(config))
            recorder.log_dataset(dataset, "train")
            recorder.log_dataset(dataset, "test")
            study.set_user_attr(TrialAttr.MLFLOW_PARENT_RUN_ID, recorder.run_id)
        recorder.set_tags({Tag.TARGET_TRIALS: config.trials, Tag.WORKERS: config.workers})
        yield recorder


def _recorded_parent(client: MlflowClient, study: optuna.Study, experiment_id: str):
    """The study's parent run, if it exists in this tracking store (a new store gets a new parent)."""
    run_id = study.user_attrs.get(TrialAttr.MLFLOW_PARENT_RUN_ID)
    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except Exception:
        return None
    if run.info.experiment_id != experiment_id or run.info.lifecycle_stage != "active":
        return None
    return run


def report_sweep(parent: RunRecorder, config: SweepConfig, study: optuna.Study) -> dict:
    """Log the sweep's results on its parent run; return a summary (best trial or Pareto front)."""
    trials = study.get_trials(deepcopy=True)
    counts = trial_counts(study)
    step = counts["FINISHED"]
    epochs = sum(trial.user_attrs.get(TrialAttr.EPOCHS_RUN, 0) for trial in trials)
    train_time_s = sum(trial.user_attrs.get(TrialAttr.TRAIN_TIME_S, 0.0) for trial in trials)
    parent.log_metrics(
        {
            "trials_complete": counts["COMPLETE"],
            "trials_pruned": counts["PRUNED"],
            "trials_failed": counts["FAIL"],
            "epochs_trained": epochs,
            "train_time_s": train_time_s,
        },
        step=step,
    )
    table = figures.trials_table(config, trials)
    parent.log_table(
        table,
        "tables/trials",
        caption=f"Trials of Optuna study {study.study_name} "
        "(accuracies as fractions; param_count in weights; epochs_run in epochs; train_time_s in seconds)",
    )
    parent.log_figure(figures.history_figure(config, trials), "figures/optimization_history.png")
    summary = {
        "study_name": study.study_name,
        "trials": counts,
        "epochs_trained": epochs,
        "train_time_s": train_time_s,
        "parent_run_id": parent.run_id,
    }
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    if len(complete) >= 2:
        parent.log_figure(
            figures.importances_figure(config, figures.importances(study)), "figures/param_importances.png"
        )
    if config.KIND == "mtl":
        front = study.best_trials if complete else []
        if complete:
            parent.log_figure(figures.pareto_figure(config, trials, front), "figures/pareto_front.png")
            parent.log_figure(figures.lambda_figure(config, trials), "figures/accuracy_vs_lambda.png")
        pareto = [
            {
                "trial": t.number,
                "lambda": t.params["lambda"],
                "val_item_accuracy": t.values[0],
                "val_group_accuracy": t.values[1],
                "mlflow_run_id": t.user_attrs.get(TrialAttr.MLFLOW_RUN_ID),
            }
            for t in front
        ]
        parent.log_dict({"pareto_front": pareto}, "pareto_front.json")
        parent.set_tags({Tag.PARETO_TRIALS: json.dumps([row["trial"] for row in pareto])})
        if complete:
            parent.log_metrics(
                {
                    "best_val_item_accuracy": max(t.values[0] for t in complete),
                    "best_val_group_accuracy": max(t.values[1] for t in complete),
                },
                step=step,
            )
        summary["pareto_front"] = pareto
        return summary
    parent.log_figure(figures.learning_curves_figure(config, trials), "figures/trial_learning_curves.png")
    if complete:
        best = max(complete, key=lambda trial: trial.value)
        layers = [
            value
            for key, value in sorted(best.params.items(), key=lambda item: _layer_index(item[0]))
            if key != "depth"
        ]
        best_info = {
            "trial": best.number,
            "val_accuracy": best.value,
            "params": best.params,
            "architecture": layers,
            "param_count": best.user_attrs.get(TrialAttr.PARAM_COUNT),
            "mlflow_run_id": best.user_attrs.get(TrialAttr.MLFLOW_RUN_ID),
        }
        parent.log_metrics({"best_val_accuracy": best.value}, step=step)
        parent.set_tags(
            {
                Tag.BEST_TRIAL_NUMBER: best.number,
                Tag.BEST_PARAMS: json.dumps(best.params, sort_keys=True),
                Tag.BEST_ARCHITECTURE: "x".join(str(size) for size in layers),
                Tag.BEST_RUN_ID_SWEEP: best_info["mlflow_run_id"],
            }
        )
        parent.log_dict(best_info, "best_trial.json")
        summary["best"] = best_info
    return summary


def _layer_index(name: str) -> int:
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else -1
