"""What stops a sweep's hopeless trials: the pruner's settings (Optuna builds the pruner from them,
tasks/sweeps/storage.py)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from studyflow.config.base import StrictModel


class PrunerSettings(StrictModel):
    """Which pruner stops hopeless trials, judged on validation accuracy after each epoch.

    Optuna's pruners, as they are; a trial reports after every epoch with Optuna step = epoch index
    from 0, and is never pruned after its last epoch (tasks/sweeps/trials.py).
    - `median` (the default): MedianPruner. A trial is stopped after epoch k when its validation
      accuracy is below the median of the earlier trials at epoch k. It needs no resource schedule,
      acts from the first epochs once `startup_trials` trials have finished, and does not depend on
      the number of workers.
    - `successive_halving`: SuccessiveHalvingPruner (asynchronous successive halving). Rung k is
      judged at step `min_resource * reduction_factor ** (min_early_stopping_rate + k)`, i.e. after
      that many epochs plus one; a trial goes on only if it is in the best 1 / `reduction_factor`
      of the trials that reached the rung (the first trials at a rung go on more easily: Optuna
      cannot resume a stopped trial).
    - `hyperband`: HyperbandPruner: several successive-halving brackets, from the most aggressive
      (min_early_stopping_rate 0) to the most lenient, up to `max_resource` (default: the sweep's
      epochs); each trial is assigned to one bracket by its number. It shines with hundreds of trials
      and a long maximum budget; with ~20 trials each bracket holds a handful of trials, and Optuna's
      docs advise more trials with TPE, whose startup trials are counted per bracket.
    - `threshold` prunes any trial below a fixed validation accuracy (a strict rule for tests and for
      excluding known-bad regions).
    - `none` turns pruning off (the benchmark's baseline, and the only choice for the two-objective
      MTL sweep: Optuna cannot prune multi-objective studies).
    Fields that another kind reads are ignored (a profile's median settings stay harmless).
    """

    kind: Literal["median", "successive_halving", "hyperband", "threshold", "none"] = "median"
    startup_trials: int = Field(5, ge=0, le=1000, description="median: trials that finish before any pruning")
    warmup_epochs: int = Field(
        1, ge=0, le=1000, description="median, threshold: epochs every trial runs before it can be pruned"
    )
    min_val_accuracy: float | None = Field(None, ge=0.0, le=1.0, description="threshold: prune below this")
    min_resource: int = Field(
        1,
        ge=1,
        le=1000,
        description=(
            "successive_halving, hyperband: epochs (Optuna steps) before the first rung is judged, which is "
            "after epoch min_resource + 1"
        ),
    )
    reduction_factor: int = Field(
        3,
        ge=2,
        le=100,
        description=(
            "successive_halving, hyperband: a rung keeps the best 1 / reduction_factor of its trials, and the "
            "next rung is that many times further"
        ),
    )
    min_early_stopping_rate: int = Field(
        0,
        ge=0,
        le=30,
        description=("successive_halving: the first rung at min_resource * reduction_factor ** rate (0: the earliest)"),
    )
    max_resource: int | None = Field(
        None,
        ge=1,
        le=1000,
        description=("hyperband: the longest budget, in epochs, that sets the brackets (None: the sweep's epochs)"),
    )

    @model_validator(mode="after")
    def _kind_needs(self) -> Self:
        if self.kind == "threshold" and self.min_val_accuracy is None:
            raise ValueError("a threshold pruner needs min_val_accuracy")
        if self.kind == "hyperband" and self.max_resource is not None and self.max_resource < self.min_resource:
            raise ValueError(
                f"max_resource {self.max_resource} is below min_resource {self.min_resource}: "
                "Hyperband would have no bracket"
            )
        return self
