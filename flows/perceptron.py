"""Study part 2: perceptrons on pairs of MNIST digits."""

from __future__ import annotations

import itertools
from typing import Annotated, ClassVar, Literal

from prefect import flow
from pydantic import Field, field_validator

from flows.common import flow_parameters, parent_run
from studyflow.config import Profile, StepConfig
from studyflow.steps import run_step
from tasks.data import load_dataset, subset
from tasks.perceptron.compute import pair_data
from tasks.perceptron.record import log_perceptron_summary_task, train_pair_task

Digit = Annotated[int, Field(ge=0, le=9)]
DEFAULT_PAIRS = [(1, 0), (8, 3), (4, 9), (8, 7), (2, 9)]
ALL_PAIRS = [tuple(pair) for pair in itertools.combinations(range(10), 2)]


class PerceptronConfig(StepConfig):
    pairs: list[tuple[Digit, Digit]] | Literal["all"] = Field(
        DEFAULT_PAIRS, description='digit pairs (first digit +1, second -1), or "all" for the 45 pairs'
    )
    learning_rate: float = Field(0.01, gt=0.0)
    max_epochs: int = Field(1000, ge=1, le=100_000)
    tolerance: float = Field(1e-3, ge=0.0, description="minimum improvement of the mean loss that counts")
    patience: int = Field(5, ge=1, description="epochs without such improvement before stopping")
    train_size: int | None = Field(None, ge=100, description="training images drawn from MNIST (None: all)")
    test_size: int | None = Field(None, ge=100, description="test images drawn from MNIST (None: all)")

    PROFILE_DEFAULTS: ClassVar = {
        "quick": {"max_epochs": 100, "train_size": 10_000, "test_size": 2_000},
        "paper": {},
    }

    @field_validator("pairs")
    @classmethod
    def _distinct_digits(cls, pairs):
        if pairs == "all":
            return pairs
        if not pairs:
            raise ValueError("give at least one pair")
        for first, second in pairs:
            if first == second:
                raise ValueError(f"pair ({first}, {second}) needs two different digits")
        return pairs

    def resolved_pairs(self) -> list[tuple[int, int]]:
        return ALL_PAIRS if self.pairs == "all" else [tuple(pair) for pair in self.pairs]


@flow(name="perceptron")
def perceptron_flow(
    profile: Profile = "quick",
    seed: int | None = None,
    force: bool | None = None,
    pairs: list[tuple[int, int]] | Literal["all"] | None = None,
    learning_rate: float | None = None,
    max_epochs: int | None = None,
    tolerance: float | None = None,
    patience: int | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
) -> list[dict]:
    config = PerceptronConfig.for_profile(profile, **flow_parameters(locals()))
    dataset = subset(load_dataset("mnist"), config.train_size, config.test_size, config.seed)
    with parent_run("perceptron", config, dataset) as recorder:
        results = [
            run_step(train_pair_task, pair_data(dataset, pair), config.learning_rate, config.max_epochs,
                     config.tolerance, config.patience, config.seed, parent=recorder, force=config.force)
            for pair in config.resolved_pairs()
        ]
        summary = log_perceptron_summary_task(recorder, results)
    return summary.to_dict(orient="records")
