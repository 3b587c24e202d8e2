"""studyflow: a tracked, orchestrated, reproducible deep-learning study on MNIST and Fashion-MNIST."""

import os

__version__ = "0.1.0"

# Defaults for the libraries, set before any of them is imported (each reads its settings then).
# There is no network beyond the package registries: telemetry would only stall or log noise, and
# Prefect's analytics writes make its temporary local server report "database is locked".
for _name, _value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # A report downloads dozens of small artifacts: one progress bar each would bury the output.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}.items():
    os.environ.setdefault(_name, _value)

# Prefect's local mode keeps its database under PREFECT_HOME (~/.prefect by default, shared with
# every other Prefect project of the user): keep studyflow's beside the rest of what it writes,
# unless the user chose a Prefect home or a Prefect server.
if not os.environ.get("PREFECT_HOME") and not os.environ.get("PREFECT_API_URL"):
    from pathlib import Path as _Path

    from studyflow import paths as _paths

    # The user's Prefect profiles (a server set with `prefect config set PREFECT_API_URL=...`) stay
    # in force: Prefect looks for them under PREFECT_HOME unless told where they are.
    _profiles = _Path.home() / ".prefect" / "profiles.toml"
    if _profiles.exists():
        os.environ.setdefault("PREFECT_PROFILES_PATH", str(_profiles))
    os.environ["PREFECT_HOME"] = str(_paths.prefect_home())
