"""The tracking conventions, in one place (the package's modules each hold one concern):

- `names`: experiment, run and registry names, every `studyflow.*` tag and Optuna attribute;
- `store`: where runs go (MLFLOW_TRACKING_URI, else the embedded SQLite store), reaching it, finding runs;
- `provenance`: the code version, package versions and Prefect ids every run is tagged with;
- `runs`: a run's life (opened with the conventional tags, ended FINISHED, FAILED or KILLED, never
  left RUNNING) and the RunRecorder that writes into it;
- `endings`: how a run ends, and closing one left open with its reason;
- `artifacts`: the figures, tables, texts and dataset inputs a RunRecorder writes.

`from studyflow import tracking` gives all of them as `tracking.<name>`. The names are importable
without MLflow (`from studyflow.tracking.names import Tag`); MLflow is imported only when a store or
run function is first used, so the command line can check its input before paying for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from studyflow.errors import TrackingError
from studyflow.tracking.names import (
    CHAMPION_ALIAS,
    CHAMPION_URI,
    EXPERIMENT_PREFIX,
    REGISTERED_CNN,
    RunLevel,
    Tag,
    TrialAttr,
    experiment_name,
    is_replicate_group,
)

if TYPE_CHECKING:  # never run; tells readers (and studyflow.steps' code digest) what this package loads
    from studyflow.tracking import descriptions, endings, links, provenance, runs, store  # noqa: F401

_LAZY = {
    "store": (
        "check_server",
        "check_writable",
        "connect",
        "plain_cause",
        "ensure_experiment",
        "find_runs",
        "latest_parent",
        "member_runs",
        "server_problem",
        "tracking_uri",
        "ui_argv",
        "ui_base",
        "run_url",
        "experiment_url",
        "experiments_url",
        "registered_model_url",
        "TRAINING_VIEW",
        "uses_embedded_store",
        "uses_tracking_server",
        "HTTP_RETRY_DEFAULTS",
    ),
    "runs": ("RunRecorder", "resumed_run", "run_tags", "sampled_system_metrics", "tracked_run"),
    "endings": ("close_run", "ending", "stop_reason"),
    "provenance": ("code_version", "package_versions", "prefect_ids"),
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "CHAMPION_ALIAS",
    "CHAMPION_URI",
    "EXPERIMENT_PREFIX",
    "REGISTERED_CNN",
    "RunLevel",
    "Tag",
    "TrialAttr",
    "TrackingError",
    "experiment_name",
    "is_replicate_group",
    *_HOME,
]


def __getattr__(name: str) -> Any:  # PEP 562: import the MLflow-backed modules on first use
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value
