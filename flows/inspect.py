"""Study part 5: looking inside a CNN (filters, activation maps, deep dream) in one MLflow run.

The CNN is the registry's champion by default (`models:/mnist-cnn@champion`, made by part 4) or any
model URI given, e.g. `studyflow run inspect --set model_uri=models:/mnist-cnn/3`.
(Imported as `flows.inspect`; it does not shadow the standard library's `inspect`, which is only
ever imported absolutely.)
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from prefect import flow
from pydantic import Field, field_validator, model_validator

from flows.common import flow_parameters
from studyflow import tracking
from studyflow.steps import run_step
from studyflow.config import Profile, StepConfig
from tasks.inspect.compute import IMAGE_SIDE, DreamSettings, octave_sides
from tasks.data import load_dataset
from tasks.inspect.record import (CHAMPION_URI, URI_FORMS, inspection_run, load_inspected_model_task,
                                       dream_task, log_activations_task, log_digit_choice_task, log_dreams_task,
                                       log_filters_task, resolve_model_source, resolve_model_source_task)

# The coarsest octave must still show a digit's strokes: at least a quarter of the image's side.
MIN_OCTAVE_SIDE = IMAGE_SIDE // 4


class InspectConfig(StepConfig):
    model_uri: str = Field(CHAMPION_URI, min_length=1, description=f"the CNN to inspect: {URI_FORMS}")
    digits: list[Annotated[int, Field(ge=0, le=9)]] = Field(
        [2, 9], min_length=1, max_length=4, description="classes whose images, activations and dreams are shown")
    dream_steps: int = Field(60, ge=1, le=1000, description="gradient-ascent steps per octave")
    octaves: int = Field(3, ge=1, le=4, description="resolutions of the ascent, coarse to fine")
    octave_scale: float = Field(1.4, ge=1.1, le=2.0, description="side ratio between successive octaves")
    dream_learning_rate: float = Field(0.02, gt=0.0, le=0.5,
                                       description="pixel change per step, in gradient standard deviations")
    jitter: int = Field(1, ge=0, le=4, description="pixels the image is randomly rolled by each step (0: off)")
    blur_every: int = Field(4, ge=0, le=1000, description="blur the change from the start every N steps (0: off)")
    blur_sigma: float = Field(0.5, ge=0.1, le=3.0, description="the blur's Gaussian sigma, in pixels")
    l2_penalty: float = Field(0.05, ge=0.0, lt=1.0,
                              description="each step the change from the start shrinks by this fraction")

    PROFILE_DEFAULTS: ClassVar = {"quick": {"dream_steps": 30, "octaves": 2}, "paper": {}}

    @field_validator("model_uri")
    @classmethod
    def _model_uri_form(cls, uri):
        if not uri.startswith(("models:/", "runs:/")):
            raise ValueError(f"give one of {URI_FORMS}")
        return uri

    @field_validator("digits")
    @classmethod
    def _distinct_digits(cls, digits):
        if len(set(digits)) != len(digits):
            raise ValueError(f"digits must be distinct, got {digits}")
        return digits

    @model_validator(mode="after")
    def _coarsest_octave_fits(self):
        coarsest = octave_sides(self.octaves, self.octave_scale)[0]
        if coarsest < MIN_OCTAVE_SIDE:
            raise ValueError(f"octaves={self.octaves} with octave_scale={self.octave_scale} starts at "
                             f"{coarsest}x{coarsest} pixels; the coarsest octave must be at least "
                             f"{MIN_OCTAVE_SIDE}x{MIN_OCTAVE_SIDE}")
        return self

    def dream_settings(self) -> DreamSettings:
        return DreamSettings(self.dream_steps, self.octaves, self.octave_scale, self.dream_learning_rate,
                             self.jitter, self.blur_every, self.blur_sigma, self.l2_penalty, self.seed)

    def check_inputs(self) -> None:
        """Before any flow starts: the model exists (ModelSourceError says what to do if not)."""
        resolve_model_source(tracking.connect(), self.model_uri)


@flow(name="inspect")
def inspect_flow(
    profile: Profile = "quick",
    seed: int | None = None,
    force: bool | None = None,
    model_uri: str | None = None,
    digits: list[int] | None = None,
    dream_steps: int | None = None,
    octaves: int | None = None,
    octave_scale: float | None = None,
    dream_learning_rate: float | None = None,
    jitter: int | None = None,
    blur_every: int | None = None,
    blur_sigma: float | None = None,
    l2_penalty: float | None = None,
) -> dict[str, float]:
    config = InspectConfig.for_profile(profile, **flow_parameters(locals()))
    client = tracking.connect()
    source = resolve_model_source_task(client, config.model_uri)  # before the run: a bad URI leaves none
    model = load_inspected_model_task(source)
    dataset = load_dataset("mnist")
    with inspection_run(client, config.model_dump(), config.profile, config.seed, dataset, source) as recorder:
        chosen = log_digit_choice_task(recorder, model, dataset, config.digits)
        log_filters_task(recorder, model)
        log_activations_task(recorder, model, chosen)
        dreams = run_step(dream_task, model, chosen, config.dream_settings(), force=config.force)
        metrics = log_dreams_task(recorder, dreams, chosen, config.dream_settings())
    return metrics
