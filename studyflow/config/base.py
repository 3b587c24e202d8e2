"""Typed, validated configuration: one object per study part, built once from a profile and overrides.

A part's config class is the only declaration of its parameters:
- the command line's `--set NAME=VALUE` and a deployment's `-p NAME=VALUE` are its fields;
- the part's Prefect flow takes exactly these fields as parameters (`flow_signature`, used by
  `flows.common.part_flow`), so the Prefect UI shows a typed form and nothing is declared twice;
- the training settings are a sub-object of it (`TrainingConfig.train_settings()`) that travels to
  `model.fit` and is logged to MLflow as it is.

A field left unset (None) takes the value of the chosen profile: `quick` (subsets, few epochs: a
part in a minute or two on 2 cores) or `paper` (the settings of the original study). Unknown keys
and bad values are a ConfigError naming the parameter, before any work.
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Annotated, Any, ClassVar, Literal, Optional, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from studyflow.errors import ConfigError

Profile = Literal["quick", "paper"]
PROFILES: tuple[str, ...] = ("quick", "paper")
# Keras dtype policies a model can be trained in (see tasks.training.precision_policy).
Precision = Literal["float32", "mixed_bfloat16"]
# What a user may ask for: a policy, or "auto", resolved on the machine that builds the config.
PrecisionChoice = Literal["auto", "float32", "mixed_bfloat16"]
# CPU flags of native bfloat16 arithmetic; without them TensorFlow emulates bfloat16, slower than float32.
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


def resolve_precision(choice: str, cpu_flags: list[str] | None = None) -> str:
    """ "auto" -> mixed_bfloat16 where the CPU computes bfloat16 natively (AVX512-BF16 or AMX), else
    float32; a named policy stays itself. `cpu_flags` defaults to this machine's."""
    if choice != "auto":
        return choice
    if cpu_flags is None:
        from studyflow.machine import cpu_flags as machine_flags

        cpu_flags = machine_flags()
    return "mixed_bfloat16" if any(flag in cpu_flags for flag in NATIVE_BFLOAT16_FLAGS) else "float32"


def auto_precision_reason(cpu_flags: list[str] | None = None) -> str:
    """What "auto" picks on this CPU (or one with `cpu_flags`), and why, in one line for the console."""
    if cpu_flags is None:
        from studyflow.machine import cpu_flags as machine_flags

        cpu_flags = machine_flags()
    native = [flag for flag in NATIVE_BFLOAT16_FLAGS if flag in cpu_flags]
    why = (
        f"the CPU computes bfloat16 natively ({', '.join(native)})"
        if native
        else "the CPU has no native bfloat16 (AVX512_BF16 or AMX), and emulated it is slower than float32"
    )
    return f"precision auto -> {resolve_precision('auto', cpu_flags)}: {why}"


class StrictModel(BaseModel):
    """Immutable, and a key it does not know is an error (a typo never passes silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Seeded(StrictModel):
    seed: int = Field(0, ge=0, description="seeds sampling, splits and weight initialisation")


Seed = Annotated[int, Field(ge=0)]


class Replicated(StrictModel):
    """A part whose models can be trained over several seeds (replicates), to tell a real difference
    between models from seed noise. The data (subsets, validation split) stay drawn with `seed`: the
    replicates differ only in the training's randomness (initial weights, shuffling order), so two
    models trained with the same seed saw the same data in the same order and pair up by seed."""

    seeds: list[Seed] | None = Field(
        None,
        description="train every model once per seed (replicates: means and 95 % intervals); None: once, with `seed`",
    )

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds):
        if seeds is None:
            return seeds
        if not seeds:
            raise ValueError("give at least one seed, or leave seeds unset to train once with `seed`")
        duplicates = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        if duplicates:
            raise ValueError(f"seeds must be distinct; repeated: {duplicates}")
        return seeds

    def replicate_seeds(self) -> list[int]:
        return list(self.seeds) if self.seeds is not None else [self.seed]  # type: ignore[attr-defined]


DASK_ADDRESS_VARIABLE = "STUDYFLOW_DASK_ADDRESS"  # the default scheduler of `dask_address` (set by the stacks)


class FannedOut(StrictModel):
    """A part whose independent trainings (a sweep's trials) can run at once, on a Dask cluster
    (studyflow.cluster: a part's through prefect-dask, studyflow.fanout; a sweep's as trial loops,
    tasks.sweeps.parallel). `workers=1` and no address: one after another in this process, as always."""

    # Whether the cluster's workers run the part's steps: Prefect tasks that report to a Prefect server
    # and persist their results in the step-results folder. A sweep's trial loops are plain Dask tasks
    # that write to MLflow and the Optuna storage only.
    WORKERS_RUN_STEPS: ClassVar[bool] = True

    workers: int = Field(
        1,
        ge=1,
        le=1024,
        description="trainings (a sweep's trials) at once: 1 runs them one "
        "after another in this process; N > 1 starts a local Dask "
        "cluster of N worker processes, each with its share of the "
        "cores",
    )
    dask_address: str | None = Field(
        default_factory=lambda: os.environ.get(DASK_ADDRESS_VARIABLE) or None,
        description="a Dask scheduler (tcp://host:8786) to send the trainings to instead (default: "
        f"${DASK_ADDRESS_VARIABLE}, else none); needs an MLflow server every worker reaches, and for a "
        "part's steps a Prefect server and a shared step-results folder (for a sweep's trials a "
        "PostgreSQL --storage instead)",
    )

    @field_validator("dask_address")
    @classmethod
    def _scheduler_address(cls, address):
        if address is None or not address.strip():
            return None
        address = address.strip()
        scheme, sep, rest = address.partition("://")
        if not sep:
            address, scheme, rest = f"tcp://{address}", "tcp", address
        host, _, port = rest.rpartition(":")
        if scheme not in ("tcp", "tls") or not host or not port.isdigit():
            raise ValueError(f"a Dask scheduler address is tcp://HOST:PORT (or tls://), got {address!r}")
        return address

    def fans_out(self) -> bool:
        """True when the trainings go to a Dask cluster (local or given)."""
        return self.workers > 1 or self.dask_address is not None


class PartConfig(Seeded):
    """Settings every study part has, and the profile machinery."""

    profile: Profile = "quick"

    # The paper profile is the fields' own defaults (the original study's settings); the quick profile
    # gives these lighter values to the fields the caller leaves unset.
    PROFILE_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {"quick": {}}

    @classmethod
    def for_profile(cls, profile: str = "quick", **overrides: Any) -> Self:
        """The config of a profile with the caller's overrides (None means 'the profile's value')."""
        if profile not in PROFILES:
            raise ConfigError(f"parameter 'profile': unknown profile {profile!r}; choose one of {PROFILES}")
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {', '.join(unknown)} for {cls.__name__}; "
                f"known: {', '.join(sorted(set(cls.model_fields) - {'profile'}))}"
            )
        values = dict(cls.PROFILE_DEFAULTS.get(profile, {}))
        values.update({key: value for key, value in overrides.items() if value is not None})
        values["profile"] = profile
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from exc

    @classmethod
    def flow_signature(cls) -> inspect.Signature:
        """The part flow's parameters: `profile`, then every field, unset (None) by default."""
        parameters = [inspect.Parameter("profile", inspect.Parameter.KEYWORD_ONLY, default="quick", annotation=Profile)]
        parameters += [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Optional[field.annotation],  # noqa: UP045 (built at run time)
            )
            for name, field in cls.model_fields.items()
            if name != "profile"
        ]
        return inspect.Signature(parameters)

    @classmethod
    def parameter_docs(cls) -> str:
        """The fields' descriptions as a docstring's Args section (Prefect shows them in its UI)."""
        lines = ["Args:", "    profile: quick (subsets, few epochs) or paper (the original study's settings)"]
        lines += [
            f"    {name}: {field.description}"
            for name, field in cls.model_fields.items()
            if field.description and name != "profile"
        ]
        return "\n".join(lines)

    def flow_arguments(self) -> dict[str, Any]:
        """Every field's resolved value, as a flow takes them (a run's parameters show what ran)."""
        return {"profile": self.profile, **self.model_dump(exclude={"profile"})}


class StepConfig(PartConfig):
    """Settings of a part whose expensive steps are reused by a rerun (see studyflow.steps)."""

    force: bool = Field(
        False,
        description="redo every step, even one that a finished run already did with the same inputs, code and data",
    )


def epochs_field(default: int) -> Any:
    """The `epochs` field with a part's own default (its paper-profile value), one set of limits."""
    return Field(default, ge=1, le=1000, description="passes over the training set")


class TrainSettings(Seeded):
    """How a network is trained: the object that reaches `model.fit`, logged to MLflow as it is.

    A hyperparameter is a field here and is read where it is used (tasks.training); nothing else
    declares it: the flows' parameters, the command line and the MLflow params follow.
    """

    epochs: int = epochs_field(10)
    batch_size: int = Field(128, ge=1, le=60_000, description="images per gradient step")
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0, description="Adam's learning rate")
    weight_decay: float = Field(
        0.0, ge=0.0, lt=1.0, description="Adam's decoupled weight decay (0: none, as the original)"
    )
    # "auto" by default: bench.precision_choice found bfloat16's mean test accuracies inside float32's
    # 95 % intervals (CNN-1 and MTL at paper length, 3 seeds each) on a CPU with native bfloat16.
    precision: PrecisionChoice = Field(
        "auto",
        validate_default=True,
        description="Keras dtype policy: mixed_bfloat16 computes in bfloat16 with float32 weights, "
        "faster on CPUs with native bf16 (AVX512-BF16, AMX), emulated and slower elsewhere; "
        "auto (the default): mixed_bfloat16 on such CPUs, float32 elsewhere (runs log the policy used)",
    )

    @field_validator("precision")
    @classmethod
    def _resolve_auto(cls, precision: str) -> str:
        # Resolved once, here: the params, the step keys and the models all carry the policy used.
        return resolve_precision(precision)

    def as_params(self) -> dict[str, Any]:
        return {**self.model_dump(), "optimizer": "adam"}


class TrainingConfig(PartConfig, TrainSettings):
    """Settings every part that trains networks has (MLP, CNN, multi-task, sweeps)."""

    validation_fraction: float = Field(
        0.1, gt=0.0, lt=1.0, description="share of the training set held out for model selection"
    )
    train_size: int | None = Field(None, ge=100, description="training images drawn (None: all 60,000)")
    test_size: int | None = Field(None, ge=100, description="test images drawn (None: all 10,000)")
    system_metrics: bool = Field(
        True,
        description="sample CPU, memory, disk and network use into each training "
        "run (MLflow system metrics, every 5 s)",
    )

    def train_settings(self) -> TrainSettings:
        return TrainSettings(**self.model_dump(include=set(TrainSettings.model_fields)))


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "config"
        lines.append(f"parameter '{location}': {error['msg']} (got {error.get('input')!r})")
    return "; ".join(lines)


def parse_set_options(assignments: list[str]) -> dict[str, Any]:
    """Turn `--set NAME=VALUE` strings into a dict; VALUE is JSON where it parses, else a string."""
    values: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set expects NAME=VALUE, got {assignment!r}")
        try:
            values[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[name.strip()] = raw
    return values
