"""Where an Optuna study lives, how a dead trial is noticed, and how a study is resumed.

Default storage: SQLite at `mlruns/optuna.db`, beside the MLflow store; any SQLAlchemy URL works
(PostgreSQL for parallel workers). A running trial records a heartbeat; a trial silent for longer
than the grace period (its process was killed) is failed by the next process that touches the
study, its MLflow run is closed as KILLED and its parameters are queued again (a WAITING trial).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from pydantic import BaseModel

from studyflow import paths
from studyflow.config import ConfigError
from studyflow.config.sweeps import OBJECTIVES, SweepConfig
from studyflow.errors import SweepStorageError
from studyflow.tracking.names import TrialAttr

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def masked_url(url: str) -> str:
    """The URL without its password, fit for tags and messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def open_storage(config: SweepConfig, on_stale_trial: Callable[[FrozenTrial], None] | None = None) -> RDBStorage:
    """Connect (creating the tables on first use) with heartbeats on; fail with the URL if unreachable."""
    url = config.storage_url
    engine_kwargs = {}
    if url.startswith("sqlite"):
        paths.mlruns_dir().mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 60}}  # heartbeat thread and trial share the file
    with warnings.catch_warnings():  # heartbeats and retries are "experimental" in Optuna since 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=3)

    def stale_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        if on_stale_trial is not None:
            on_stale_trial(trial)  # close its MLflow run before its parameters are queued again
        retry(study, trial)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=config.heartbeat_interval_s,
                grace_period=config.heartbeat_grace_s,
                heartbeat_stale_trial_callback=stale_trial,
            )
    except Exception as exc:  # SQLAlchemy's OperationalError, a missing driver, a bad database name
        raise SweepStorageError(
            f"Optuna storage {masked_url(url)} cannot be used: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc


def check_storage(config: SweepConfig) -> None:
    """Connect once and let go, so that an unreachable database stops the command before any work."""
    storage = open_storage(config)
    storage.engine.dispose()


def make_pruner(config: SweepConfig) -> optuna.pruners.BasePruner:
    """Optuna's pruner for `config.pruner` (studyflow.config.pruning.PrunerSettings says what each does)."""
    settings = config.pruner
    if settings.kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=settings.startup_trials, n_warmup_steps=settings.warmup_epochs
        )
    if settings.kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=settings.min_resource,
            reduction_factor=settings.reduction_factor,
            min_early_stopping_rate=settings.min_early_stopping_rate,
        )
    if settings.kind == "hyperband":
        # A fixed max_resource (Optuna's "auto" waits for a first complete trial before it prunes anything)
        return optuna.pruners.HyperbandPruner(
            min_resource=settings.min_resource,
            max_resource=settings.max_resource or config.epochs,
            reduction_factor=settings.reduction_factor,
        )
    if settings.kind == "threshold":
        return optuna.pruners.ThresholdPruner(lower=settings.min_val_accuracy, n_warmup_steps=settings.warmup_epochs)
    return optuna.pruners.NopPruner()


def make_sampler(config: SweepConfig, study: optuna.Study | None, worker_index: int = 0) -> optuna.samplers.BaseSampler:
    """TPE, seeded. The seed moves on with the study's length and the worker, so a resumed study
    (or a second worker) does not draw again the parameters that the first trials drew."""
    offset = len(study.get_trials(deepcopy=False)) if study is not None else 0
    seed = config.seed + offset + 100_003 * worker_index
    return (
        optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
        if config.KIND != "mtl"
        else optuna.samplers.TPESampler(seed=seed)
    )


def directions(config: SweepConfig) -> list[str]:
    return ["maximize"] * len(OBJECTIVES[config.KIND].metrics)  # every objective is an accuracy


def open_study(config: SweepConfig, storage: RDBStorage, worker_index: int = 0) -> optuna.Study:
    """Create the study, or load it and check it was made with the same settings."""
    name = config.resolved_study_name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # multivariate/group TPE
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            directions=directions(config),
            pruner=make_pruner(config),
            load_if_exists=True,
        )
        study.sampler = make_sampler(config, study, worker_index)
        # The dashboard and Optuna's plots label the objectives with these ("Objective 0" without them).
        metric_names = list(OBJECTIVES[config.KIND].metrics)
        if study.metric_names != metric_names:  # a study made before it was named gets its names too
            study.set_metric_names(metric_names)
    wanted = config.study_settings()
    recorded = study.user_attrs.get(TrialAttr.SETTINGS)
    if recorded is None:
        study.set_user_attr(TrialAttr.SETTINGS, wanted)
        return study
    recorded = with_later_defaults(recorded, wanted, type(config))
    if recorded != wanted:
        differing = sorted(key for key in set(recorded) | set(wanted) if recorded.get(key) != wanted.get(key))
        details = "; ".join(
            f"{key}: study has {json.dumps(recorded.get(key))}, asked {json.dumps(wanted.get(key))}"
            for key in differing
        )
        raise ConfigError(
            f"parameter(s) {', '.join(differing)}: study {name!r} in {masked_url(config.storage_url)} "
            f"was made with other settings ({details}); use them, or a new --study-name"
        )
    return study


# Settings whose default changed after they were added: a study recorded without one ran at the
# default of the day it was made, not today's (precision became "auto" after a float32 start).
DEFAULTS_WHEN_ADDED = {"precision": "float32"}


def with_later_defaults(recorded: dict, wanted: dict, model: type[BaseModel]) -> dict:
    """A study's recorded settings with the settings added to the product after it was made (precision,
    a pruner's min_resource), which ran at their defaults then; nested settings too."""
    fields = model.model_fields
    filled = {
        **{
            key: DEFAULTS_WHEN_ADDED.get(key, fields[key].default)
            for key in set(wanted) - set(recorded)
            if key in fields
        },
        **recorded,
    }
    for key, value in filled.items():
        nested = fields[key].annotation if key in fields else None
        if (
            isinstance(value, dict)
            and isinstance(wanted.get(key), dict)
            and isinstance(nested, type)
            and issubclass(nested, BaseModel)
        ):
            filled[key] = with_later_defaults(value, wanted[key], nested)
    return filled


def fail_stale_trials(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def trial_counts(study: optuna.Study) -> dict[str, int]:
    counts = {state.name: 0 for state in TrialState}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] += 1
    counts["FINISHED"] = counts["COMPLETE"] + counts["PRUNED"]
    return counts


def retry_interrupted(study: optuna.Study, trial_id: int) -> None:
    """Queue again the parameters of a trial that Ctrl-C or SIGTERM stopped (Optuna marks it FAIL)."""
    trial = study._storage.get_trial(trial_id)
    if trial.state == TrialState.FAIL:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            RetryHeartbeatStaleTrialCallback(max_retry=3)(study, trial)


def retry_abandoned_trials(study: optuna.Study, parent_run_id: str) -> list[int]:
    """Fail, and queue again, the trials of this sweep (its parent run) still RUNNING once no process
    can be running them (a local cluster closed mid-trial): what the heartbeat does after its grace,
    at once. Only one live process runs a study's parent run at a time (tasks.sweeps.record)."""
    retried = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get(TrialAttr.MLFLOW_PARENT_RUN_ID) != parent_run_id:
            continue
        try:
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # it finished after all
        retry_interrupted(study, trial._trial_id)
        retried.append(trial.number)
    return retried
