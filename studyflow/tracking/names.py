"""Every name the product gives to things in MLflow and Optuna: experiments, runs, tags, attributes.

One home, so that runs stay comparable in the MLflow UI and nothing rebuilds a name by hand or
parses one back: the report finds runs by their tags (`Tag.ARCHITECTURE`, `Tag.PAIR`, ...), and a
run's name is only for people. Imports nothing heavy: configs and the command line use it too.
"""

from __future__ import annotations

PREFIX = "studyflow."
EXPERIMENT_PREFIX = "studyflow-"

# The Model Registry entry of part 4's best CNN, and the alias that marks the current champion.
REGISTERED_CNN = "mnist-cnn"
CHAMPION_ALIAS = "champion"
CHAMPION_URI = f"models:/{REGISTERED_CNN}@{CHAMPION_ALIAS}"
# The model URIs part 5 and `studyflow serve` accept (studyflow.tracking.model_source resolves them).
MODEL_URI_FORMS = (
    "models:/<name>@<alias>, models:/<name>/<version>, models:/m-<logged model id> or runs:/<run id>/<path>"
)
# On a registered version: the trained Keras model it packages for serving (tasks/serving/package.py).
# A version without it was registered before packaging: a plain Keras model, without the serving contract.
KERAS_MODEL_VERSION_TAG = "keras_model_uri"


class Tag:
    """MLflow run tags (`studyflow.*`), set by studyflow and read by the report, doctor and tests."""

    # on every run
    PART = PREFIX + "part"
    PROFILE = PREFIX + "profile"
    SEED = PREFIX + "seed"
    DATASET_DIGEST = PREFIX + "dataset_digest"
    GIT_COMMIT = PREFIX + "git_commit"
    GIT_DIRTY = PREFIX + "git_dirty"
    PREFECT_FLOW_RUN_ID = PREFIX + "prefect_flow_run_id"
    PREFECT_TASK_RUN_ID = PREFIX + "prefect_task_run_id"
    PREFECT_FLOW_RUN_URL = PREFIX + "prefect_flow_run_url"  # with a lasting Prefect server
    PROCESS = PREFIX + "process"  # host:pid:start ticks of the process that owns the run while it runs
    RUN_LEVEL = PREFIX + "run_level"  # RunLevel.*
    END_REASON = PREFIX + "end_reason"  # why a run ended FAILED or KILLED
    VERSION_PREFIX = PREFIX + "version."  # + package name
    # parent runs
    REUSED_RUN_IDS = PREFIX + "reused_run_ids"  # finished runs of earlier flow runs that this one reuses
    BEST_ARCHITECTURE = PREFIX + "best_architecture"
    BEST_RUN_ID = PREFIX + "best_run_id"
    REGISTERED_VERSION = PREFIX + "registered_version"
    PROMOTED = PREFIX + "promoted"
    PROMOTION_REASON = PREFIX + "promotion_reason"
    EASIEST_PAIRS = PREFIX + "easiest_pairs"
    REPLICATE_SEEDS = PREFIX + "replicate_seeds"  # the seeds every model was trained with, comma-separated
    # replicate group runs (RunLevel.REPLICATE_GROUP): one model over its seeds, between parent and seed runs
    REPLICATE_GROUP = PREFIX + "replicate_group"  # the model: its row label in tables/<part>_summary
    REPLICATE_SEED_RUN_IDS = PREFIX + "replicate_seed_run_ids"  # its seed runs, reused ones included
    HARDEST_PAIRS = PREFIX + "hardest_pairs"
    # child runs: what the run trained
    ARCHITECTURE = PREFIX + "architecture"
    MODEL_KIND = PREFIX + "model_kind"
    MODEL_URI = PREFIX + "model_uri"
    PAIR = PREFIX + "pair"  # "<positive digit>-<negative digit>"
    MTL_LAMBDA = PREFIX + "mtl_lambda"
    TASKS = PREFIX + "tasks"
    # part 5
    SOURCE_MODEL_URI = PREFIX + "source_model_uri"
    SOURCE_RUN_ID = PREFIX + "source_run_id"
    SOURCE_MODEL_ID = PREFIX + "source_model_id"
    SOURCE_MODEL_VERSION = PREFIX + "source_model_version"
    # sweeps
    SWEEP_KIND = PREFIX + "sweep_kind"
    OPTUNA_STUDY = PREFIX + "optuna_study"
    OPTUNA_STORAGE = PREFIX + "optuna_storage"
    TRIAL_NUMBER = PREFIX + "optuna_trial_number"
    TRIAL_ID = PREFIX + "optuna_trial_id"
    RETRY_OF = PREFIX + "optuna_retry_of"
    TRIAL_STATE = PREFIX + "trial_state"
    PRUNED = PREFIX + "pruned"
    TRIAL_SEEDS = PREFIX + "trial_seeds"  # the seeds a trial's objective is the mean over
    PRUNED_AFTER_EPOCH = PREFIX + "pruned_after_epoch"
    RESUMED = PREFIX + "resumed"
    TARGET_TRIALS = PREFIX + "target_trials"
    WORKERS = PREFIX + "workers"
    BEST_TRIAL_NUMBER = PREFIX + "best_trial_number"
    BEST_PARAMS = PREFIX + "best_params"
    BEST_RUN_ID_SWEEP = PREFIX + "best_mlflow_run_id"  # the best trial's run
    PARETO_TRIALS = PREFIX + "pareto_trials"


class RunLevel:
    PARENT = "parent"
    CHILD = "child"
    REPLICATE_GROUP = "replicate_group"  # a model over its seeds: means and spread, no training of its own
    CHECK = "check"  # the doctor's write check, deleted at once


def is_replicate_group(tags: dict[str, str]) -> bool:
    """A run's tags say it is a replicate group (statistics over seeds), not a training run."""
    return tags.get(Tag.RUN_LEVEL) == RunLevel.REPLICATE_GROUP


class TrialAttr:
    """Optuna user attributes (on a study or a trial) that link it to MLflow and keep its costs."""

    SETTINGS = PREFIX + "settings"  # on the study: what defines its trials
    MLFLOW_RUN_ID = PREFIX + "mlflow_run_id"
    MLFLOW_PARENT_RUN_ID = PREFIX + "mlflow_parent_run_id"
    PREFECT_FLOW_RUN_ID = PREFIX + "prefect_flow_run_id"
    EPOCHS_RUN = PREFIX + "epochs_run"
    PARAM_COUNT = PREFIX + "param_count"
    TRAIN_TIME_S = PREFIX + "train_time_s"  # wall time of the epochs, with their validation and test passes


def experiment_name(part: str) -> str:
    return EXPERIMENT_PREFIX + part


def parent_run_name(part: str, profile: str) -> str:
    return f"{part}-{profile}"


def replicate_run_name(model_run_name: str, seed: int) -> str:
    """A model's run name with its seed: every (model, seed) is its own run ("MLP-1-seed-0")."""
    return f"{model_run_name}-seed-{seed}"


def replicate_group_run_name(model_run_name: str) -> str:
    """The run of a model over its seeds, above its seed runs ("MLP-1-replicates")."""
    return f"{model_run_name}-replicates"


def pair_run_name(pair: tuple[int, int]) -> str:
    return f"perceptron-{pair[0]}-vs-{pair[1]}"


def pair_tag(pair: tuple[int, int]) -> str:
    return f"{pair[0]}-{pair[1]}"


def pair_label(pair_tag_value: str) -> str:
    """The report's label of a pair from its tag: "1-0" -> "1 vs 0"."""
    return pair_tag_value.replace("-", " vs ")


# MLflow refuses a logged model whose name holds '/', ':', '.', '%' or a quote (MLflow 3.17); each
# becomes '_', so a lambda's "mtl-lambda-0.25" is logged as "mtl-lambda-0_25" (its run keeps the dot).
_NOT_IN_LOGGED_MODEL_NAMES = str.maketrans({character: "_" for character in "/:.%\"'"})


def logged_model_name(name: str) -> str:
    """The name MLflow accepts for a logged model named after `name` (an architecture, a variant)."""
    return name.translate(_NOT_IN_LOGGED_MODEL_NAMES)


# Each MTL head's task number, as the original study counts them (task 1: the item, task 2: its group).
MTL_TASK_NUMBERS = {"item": 1, "group": 2}


def mtl_run_name(tasks: tuple[str, ...], mtl_lambda: float | None) -> str:
    if mtl_lambda is not None:
        return f"mtl-lambda-{float(mtl_lambda)}"
    return f"single-task-{MTL_TASK_NUMBERS[tasks[0]]}"


def mtl_label(tasks: tuple[str, ...], mtl_lambda: float | None) -> str:
    """The row label of the original study's table: "single task 1", "MTL lambda 0.25"."""
    if mtl_lambda is not None:
        return f"MTL lambda {float(mtl_lambda)}"
    return f"single task {MTL_TASK_NUMBERS[tasks[0]]}"


def inspection_run_name(source_label: str) -> str:
    return f"inspect-{source_label}"


def trial_run_name(number: int) -> str:
    return f"trial-{number:03d}"


def report_run_name(folder_name: str) -> str:
    return f"report-{folder_name}"
