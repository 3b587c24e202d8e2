"""Each study part's config: its fields are the part's parameters (flows, command line, deployments).

Defaults are the original study's settings (the paper profile); PROFILE_DEFAULTS lighten the quick
profile. Validation happens here, before any work: a bad value is a ConfigError naming it.
"""

from __future__ import annotations

import itertools
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, FiniteFloat, field_validator, model_validator

from studyflow import reference
from studyflow.config.base import FannedOut, PartConfig, Replicated, Seeded, StepConfig, TrainingConfig, epochs_field
from studyflow.config.mtl import MtlConfig
from studyflow.tracking.names import CHAMPION_URI, MODEL_URI_FORMS, REGISTERED_CNN

Digit = Annotated[int, Field(ge=0, le=9)]
Width = Annotated[int, Field(ge=1, le=100_000)]
# The interval [0, 1] pixels are mapped onto, linearly. The original study does not state its scaling;
# its PCA digit table (centroids, variances) is reproduced by [-1, 1] (see docs/study.md, part 1).
ORIGINAL_PIXEL_RANGE = (-1.0, 1.0)


def _check_pixel_range(pixel_range: tuple[float, float]) -> tuple[float, float]:
    low, high = pixel_range
    if not low < high:
        raise ValueError(f"give [low, high] with low < high, got [{low}, {high}]")
    return pixel_range


PixelRange = Annotated[tuple[FiniteFloat, FiniteFloat], AfterValidator(_check_pixel_range)]

DEFAULT_PAIRS = [(1, 0), (8, 3), (4, 9), (8, 7), (2, 9)]
ALL_PAIRS = [tuple(pair) for pair in itertools.combinations(range(10), 2)]


class PcaConfig(StepConfig):
    sample_size: int = Field(10_000, ge=200, le=60_000, description="images the PCA is fitted on (seeded sample)")
    holdout_fraction: float = Field(0.25, gt=0.0, lt=1.0, description="share of each pair's samples held out")
    svc_max_iter: int = Field(10_000, ge=1, description="LinearSVC max_iter")
    dimensions: list[Annotated[int, Field(ge=2, le=784)]] = Field(
        [10, 50], description="further PCA dimensions in which the pair accuracies are computed"
    )
    pixel_range: PixelRange = Field(
        ORIGINAL_PIXEL_RANGE,
        description="[low, high] the pixels are scaled to before the PCA ([-1, 1] reproduces "
        "the original's centroids and variances; [0, 1] halves them)",
    )

    PROFILE_DEFAULTS: ClassVar = {"quick": {"sample_size": 5_000}}


class PerceptronSettings(Seeded):
    """How one pair's perceptron is trained: the object that reaches `train_perceptron`, logged as it is."""

    learning_rate: float = Field(0.01, gt=0.0, description="the perceptron's learning rate")
    max_epochs: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="iterations at most: batch updates, each one pass over the pair's "
        "training images (the original's 1000 iterations)",
    )
    tolerance: float = Field(
        1e-3, ge=0.0, lt=1.0, description="training stops once the training misclassification error is below this"
    )
    init_scale: float = Field(
        0.5, ge=0.0, le=100.0, description="initial weights and bias are drawn uniformly from [-init_scale, init_scale]"
    )


class PerceptronConfig(StepConfig, PerceptronSettings, Replicated, FannedOut):
    pairs: list[tuple[Digit, Digit]] | Literal["all"] = Field(
        DEFAULT_PAIRS, description='digit pairs (first digit +1, second -1), or "all" for the 45 pairs'
    )
    pixel_range: PixelRange = Field(
        ORIGINAL_PIXEL_RANGE, description="[low, high] the pixels are scaled to (as in part 1)"
    )
    train_size: int | None = Field(None, ge=100, description="training images drawn from MNIST (None: all)")
    test_size: int | None = Field(None, ge=100, description="test images drawn from MNIST (None: all)")

    PROFILE_DEFAULTS: ClassVar = {"quick": {"max_epochs": 100, "train_size": 10_000, "test_size": 2_000}}

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

    def perceptron_settings(self) -> PerceptronSettings:
        return PerceptronSettings(**self.model_dump(include=set(PerceptronSettings.model_fields)))


class ArchitectureConfig(TrainingConfig, StepConfig, Replicated, FannedOut):
    """Parts 3 and 4: named architectures, each trained in its own child run."""

    architectures: dict[str, list[Width]] = Field(
        default_factory=dict, description="name -> widths per hidden layer (MLP) or filters per conv layer (CNN)"
    )

    @field_validator("architectures")
    @classmethod
    def _not_empty(cls, architectures):
        if not architectures:
            raise ValueError("give at least one architecture")
        for name, widths in architectures.items():
            if not name.strip() or not widths:
                raise ValueError(f"architecture {name!r} needs a name and at least one layer")
        return architectures


class MlpConfig(ArchitectureConfig):
    epochs: int = epochs_field(20)  # the original's MLP runs: 20 epochs (its conv nets: 10)
    architectures: dict[str, list[Width]] = Field(
        default_factory=lambda: reference.named_architectures("mlp"),
        description="name -> widths of the hidden layers (default MLP-1..5)",
    )

    PROFILE_DEFAULTS: ClassVar = {"quick": {"epochs": 2, "train_size": 1_500, "test_size": 500}}


class CnnConfig(ArchitectureConfig):
    architectures: dict[str, list[Width]] = Field(
        default_factory=lambda: reference.named_architectures("cnn"),
        description="name -> filters of the conv layers (default CNN-1..5)",
    )
    registered_model: str = Field(REGISTERED_CNN, min_length=1, description="Model Registry name of the best CNN")

    PROFILE_DEFAULTS: ClassVar = {
        # Two epochs, so that every curve has two points, on few images: the quick profile is a smoke
        # test of every figure and table, sized for a 2-core AVX2 laptop (bench.study_quick).
        "quick": {"epochs": 2, "train_size": 600, "test_size": 500}
    }

    @field_validator("architectures")
    @classmethod
    def _depth_fits_the_image(cls, architectures):
        limit = reference.max_cnn_depth()
        for name, filters in architectures.items():
            if len(filters) > limit:
                raise ValueError(f"{name}: {len(filters)} conv layers; at most {limit} fit a 28x28 image")
        return architectures


class DreamSettings(Seeded):
    """Part 5's deep dream: gradient ascent on the input, coarse to fine, with regularisers."""

    dream_steps: int = Field(60, ge=1, le=1000, description="gradient-ascent steps per octave")
    octaves: int = Field(3, ge=1, le=4, description="resolutions of the ascent, coarse to fine")
    octave_scale: float = Field(1.4, ge=1.1, le=2.0, description="side ratio between successive octaves")
    dream_learning_rate: float = Field(
        0.02, gt=0.0, le=0.5, description="pixel change per step, in gradient standard deviations"
    )
    jitter: int = Field(1, ge=0, le=4, description="pixels the image is randomly rolled by each step (0: off)")
    blur_every: int = Field(4, ge=0, le=1000, description="blur the change from the start every N steps (0: off)")
    blur_sigma: float = Field(0.5, ge=0.1, le=3.0, description="the blur's Gaussian sigma, in pixels")
    l2_penalty: float = Field(
        0.05, ge=0.0, lt=1.0, description="each step the change from the start shrinks by this fraction"
    )

    def octave_sides(self) -> list[int]:
        """The side of each octave's resolution, coarse to fine, ending at the image's side."""
        side = reference.architectures()["geometry"]["image_side"]
        return [max(2, round(side / self.octave_scale**level)) for level in reversed(range(self.octaves))]


class InspectConfig(StepConfig, DreamSettings):
    model_uri: str = Field(CHAMPION_URI, min_length=1, description=f"the CNN to inspect: {MODEL_URI_FORMS}")
    digits: list[Digit] = Field(
        [2, 9], min_length=1, max_length=4, description="classes whose images, activations and dreams are shown"
    )

    PROFILE_DEFAULTS: ClassVar = {"quick": {"dream_steps": 30, "octaves": 2}}

    @field_validator("model_uri")
    @classmethod
    def _model_uri_form(cls, uri):
        if not uri.startswith(("models:/", "runs:/")):
            raise ValueError(f"give one of {MODEL_URI_FORMS}")
        return uri

    @field_validator("digits")
    @classmethod
    def _distinct_digits(cls, digits):
        if len(set(digits)) != len(digits):
            raise ValueError(f"digits must be distinct, got {digits}")
        return digits

    @model_validator(mode="after")
    def _coarsest_octave_fits(self):
        # The coarsest octave must still show a digit's strokes: at least a quarter of the image's side.
        smallest = reference.architectures()["geometry"]["image_side"] // 4
        coarsest = self.octave_sides()[0]
        if coarsest < smallest:
            raise ValueError(
                f"octaves={self.octaves} with octave_scale={self.octave_scale} starts at "
                f"{coarsest}x{coarsest} pixels; the coarsest octave must be at least "
                f"{smallest}x{smallest}"
            )
        return self

    def dream_settings(self) -> DreamSettings:
        return DreamSettings(**self.model_dump(include=set(DreamSettings.model_fields)))


# Each part's config, by the part's name (what its runs are tagged with), in study order.
PART_CONFIGS: dict[str, type[PartConfig]] = {
    "pca": PcaConfig,
    "perceptron": PerceptronConfig,
    "mlp": MlpConfig,
    "cnn": CnnConfig,
    "inspect": InspectConfig,
    "mtl": MtlConfig,
}
PART_NAMES = tuple(PART_CONFIGS)  # study order
