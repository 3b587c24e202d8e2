"""What a sweep searches and how, as typed data: search spaces, the pruner, the sweep's own config.

A search space is data, not code: ranges and scales that a user overrides in part, e.g.
`--set search_space='{"max_depth": 4}'` (the fields given replace the profile's, the others stay).
Everything is validated before any work: a bad range or an unknown key stops with a message naming
the parameter. `workers` and `dask_address` are a part's (FannedOut): trials at once on a Dask cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from studyflow import paths
from studyflow.config.base import FannedOut, TrainingConfig, epochs_field
from studyflow.config.pruning import PrunerSettings
from studyflow.config.search_spaces import CnnSearchSpace, MlpSearchSpace, MtlSearchSpace
from studyflow.errors import ConfigError

SWEEP_KINDS = ("mlp", "cnn", "mtl")
STUDY_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")

# Settings that do not change what a trial is, so a resumed study may differ in them.
RUN_ONLY_FIELDS = (
    "trials",
    "workers",
    "dask_address",
    "study_name",
    "storage",
    "heartbeat_interval_s",
    "heartbeat_grace_s",
    "system_metrics",
)


@dataclass(frozen=True)
class Objective:
    """What a sweep kind optimises: validation metrics (maximised), and whether it can prune."""

    metrics: tuple[str, ...]

    @property
    def prunable(self) -> bool:
        return len(self.metrics) == 1  # Optuna prunes single-objective studies only


OBJECTIVES = {
    "mlp": Objective(("val_accuracy",)),
    "cnn": Objective(("val_accuracy",)),
    "mtl": Objective(("val_item_accuracy", "val_group_accuracy")),
}


def _quick_layer_sweep(search_space: dict) -> dict:
    """The MLP and CNN sweeps' quick profile: few images, 2 epochs, 6 trials, pruning from the 4th."""
    return {
        "epochs": 2,
        "train_size": 4_000,
        "test_size": 1_000,
        "trials": 6,
        "search_space": {"min_depth": 1, **search_space},
        "pruner": {"kind": "median", "startup_trials": 3, "warmup_epochs": 0},
    }


def _layer_space(default: Any, sizes: str) -> Any:
    """The search space field of a sweep over layers: its default is the paper profile's."""
    return Field(
        default,
        description=f"layers (min_depth..max_depth) and {sizes} (min_size..max_size, on a log "
        "scale if log); the keys given replace the profile's",
    )


PRUNER_DESCRIPTION = (
    "what stops hopeless trials after an epoch: kind median, successive_halving, hyperband, "
    "threshold or none, and its settings; the keys given replace the profile's"
)


class SweepConfig(TrainingConfig, FannedOut):
    """Settings of every sweep; `kind`'s subclass adds its search space. `workers` and `dask_address`
    (FannedOut) run that many trials at once on a Dask cluster, as a part's trainings
    (tasks/sweeps/parallel.py); the Optuna storage coordinates them."""

    KIND: ClassVar[str] = ""
    DATASET: ClassVar[str] = "mnist"
    WORKERS_RUN_STEPS: ClassVar[bool] = False  # trial loops: MLflow and the Optuna storage, no Prefect

    trials: int = Field(20, ge=1, le=10_000, description="trials that must have finished (complete or pruned)")
    study_name: str | None = Field(None, description="Optuna study name (None: sweep-<kind>-<profile>)")
    # validate_default: the check that several workers have a database they can share runs unset too
    storage: str | None = Field(
        None, validate_default=True, description="SQLAlchemy URL of the Optuna storage (None: SQLite under mlruns/)"
    )
    seeds_per_trial: int = Field(
        1,
        ge=1,
        le=10,
        description=(
            "train each trial's model with this many seeds (seed, seed+1, ...) and score it by their mean, so "
            "that the sweep does not pick a lucky seed; pruning acts on the first seed (1: one seed, off)"
        ),
    )
    pruner: PrunerSettings = Field(PrunerSettings(), description=PRUNER_DESCRIPTION)
    heartbeat_interval_s: int = Field(20, ge=1, le=3600, description="how often a running trial says it is alive")
    heartbeat_grace_s: int = Field(60, ge=2, le=86_400, description="silence after which a trial counts as dead")

    @field_validator("study_name")
    @classmethod
    def _safe_name(cls, name):
        if name is not None and not STUDY_NAME_PATTERN.match(name):
            raise ValueError("use 1-120 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return name

    @field_validator("storage")
    @classmethod
    def _parsable_url(cls, url, info: ValidationInfo):
        if url is not None:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                make_url(url)
            except ArgumentError as exc:
                raise ValueError(
                    f"not an SQLAlchemy URL ({exc}); e.g. postgresql://user:password@host:5432/optuna"
                ) from None
        # `workers` and `dask_address` (FannedOut, a base class) are validated before `storage`
        workers, address = info.data.get("workers", 1), info.data.get("dask_address")
        if (workers > 1 or address is not None) and (url or paths.default_optuna_storage_url()).startswith("sqlite"):
            where = f"the Dask workers of {address}" if address is not None else f"{workers} workers"
            raise ValueError(
                f"{where} need an Optuna storage that several processes (and machines) can write at once; "
                "SQLite is a local file that locks the whole database. Give a PostgreSQL storage, e.g. --storage "
                "postgresql://user:password@127.0.0.1:5432/optuna, or run with workers=1 and no dask_address"
            )
        return url

    @field_validator("pruner")
    @classmethod
    def _budget_within_the_epochs(cls, pruner, info: ValidationInfo):
        # `epochs` (TrainSettings) is declared before `pruner`, so already validated
        epochs = info.data.get("epochs")
        if (
            pruner.kind == "hyperband"
            and pruner.max_resource is not None
            and epochs is not None
            and pruner.max_resource > epochs
        ):
            raise ValueError(
                f"max_resource {pruner.max_resource} exceeds epochs {epochs}: a trial never trains "
                "longer than the sweep's epochs (leave max_resource unset to use them)"
            )
        return pruner

    @field_validator("heartbeat_grace_s")
    @classmethod
    def _grace_exceeds_interval(cls, grace, info: ValidationInfo):
        interval = info.data.get("heartbeat_interval_s")
        if interval is not None and grace <= interval:
            raise ValueError(f"must exceed heartbeat_interval_s ({interval}), or live trials would be failed")
        return grace

    @property
    def resolved_study_name(self) -> str:
        return self.study_name or f"sweep-{self.KIND}-{self.profile}"

    @property
    def storage_url(self) -> str:
        return self.storage or paths.default_optuna_storage_url()

    def study_settings(self) -> dict[str, Any]:
        """What defines the study's trials; a resumed study must be given the same."""
        settings = self.model_dump(mode="json", exclude=set(RUN_ONLY_FIELDS))
        settings["kind"] = self.KIND
        return settings

    @classmethod
    def for_profile(cls, profile: str = "quick", **overrides: Any) -> Self:
        """As PartConfig's, but a partial `search_space` or `pruner` updates the profile's, field by field."""
        defaults = cls.PROFILE_DEFAULTS.get(profile, {})
        for name in ("search_space", "pruner"):
            given = overrides.get(name)
            if isinstance(given, BaseModel):
                overrides[name] = given = given.model_dump()
            if isinstance(given, dict):  # over the profile's value: the quick one, else the field's own
                base = defaults.get(name) or cls.model_fields[name].get_default().model_dump()
                overrides[name] = {**base, **given}
        return super().for_profile(profile, **overrides)


class MlpSweepConfig(SweepConfig):
    KIND: ClassVar[str] = "mlp"
    epochs: int = epochs_field(20)  # as the MLP part
    pruner: PrunerSettings = Field(PrunerSettings(warmup_epochs=2), description=PRUNER_DESCRIPTION)
    # Depths 1-9 and widths 32-2048 hold all five named MLPs (1000 x 2 ... 500 x 9).
    search_space: MlpSearchSpace = _layer_space(MlpSearchSpace(max_depth=9, min_size=32, max_size=2048), "widths")
    PROFILE_DEFAULTS: ClassVar = {"quick": _quick_layer_sweep({"max_depth": 3, "min_size": 16, "max_size": 256})}


class CnnSweepConfig(SweepConfig):
    KIND: ClassVar[str] = "cnn"
    # Depths 1-5 and filters 8-512 hold all five named CNNs (16, 32 ... 32-512).
    search_space: CnnSearchSpace = _layer_space(CnnSearchSpace(max_depth=5, min_size=8, max_size=512), "filters")
    PROFILE_DEFAULTS: ClassVar = {"quick": _quick_layer_sweep({"max_depth": 3, "min_size": 4, "max_size": 64})}


class MtlSweepConfig(SweepConfig):
    """Two objectives (validation accuracy of items and of groups); no pruning (see PrunerSettings)."""

    KIND: ClassVar[str] = "mtl"
    DATASET: ClassVar[str] = "fashion-mnist"
    search_space: MtlSearchSpace = Field(
        MtlSearchSpace(), description="the loss weight lambda's range (min_lambda..max_lambda, within [0, 1])"
    )
    pruner: PrunerSettings = Field(
        PrunerSettings(kind="none"), description="none: Optuna cannot prune a two-objective study"
    )

    PROFILE_DEFAULTS: ClassVar = {"quick": {"epochs": 1, "train_size": 2_000, "test_size": 500, "trials": 5}}

    @field_validator("pruner")
    @classmethod
    def _no_pruning(cls, pruner):
        if pruner.kind != "none":
            raise ValueError(
                "the MTL sweep has two objectives and Optuna cannot prune multi-objective "
                "studies; use pruner={'kind': 'none'}"
            )
        return pruner


SWEEP_CONFIGS: dict[str, type[SweepConfig]] = {"mlp": MlpSweepConfig, "cnn": CnnSweepConfig, "mtl": MtlSweepConfig}


def sweep_config(kind: str, profile: str = "quick", **overrides: Any) -> SweepConfig:
    """The validated config of a sweep kind; an unknown kind or value is a ConfigError."""
    if kind not in SWEEP_CONFIGS:
        raise ConfigError(f"unknown sweep kind {kind!r}; choose one of {', '.join(SWEEP_KINDS)}")
    return SWEEP_CONFIGS[kind].for_profile(profile, **overrides)
