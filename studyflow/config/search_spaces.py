"""What a sweep searches: depth and per-layer sizes for the MLP and CNN sweeps, the loss weight's
range for the MTL sweep (tasks/sweeps/trials.py draws the trials' parameters from them)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from studyflow import reference
from studyflow.config.base import StrictModel


class _LayerSpace(StrictModel):
    """Depth and per-layer sizes: layer i's size is its own parameter `<size_name>_<i>`."""

    min_depth: int = Field(1, ge=1, le=20)
    max_depth: int = Field(3, ge=1, le=20)
    min_size: int = Field(16, ge=1, le=8192)
    max_size: int = Field(256, ge=1, le=8192)
    log: bool = Field(True, description="sample sizes on a log scale (16, 32, 64 equally likely)")

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        if self.min_depth > self.max_depth:
            raise ValueError(f"min_depth {self.min_depth} exceeds max_depth {self.max_depth}")
        if self.min_size > self.max_size:
            raise ValueError(f"min_size {self.min_size} exceeds max_size {self.max_size}")
        return self


class MlpSearchSpace(_LayerSpace):
    """MLP depth (hidden layers) and per-layer widths `width_<i>`."""


class CnnSearchSpace(_LayerSpace):
    """CNN depth (conv layers) and per-layer filters `filters_<i>`; kernels and strides as in part 4."""

    @model_validator(mode="after")
    def _fits_the_image(self) -> Self:
        if self.max_depth > reference.max_cnn_depth():
            raise ValueError(
                f"max_depth {self.max_depth}: at most {reference.max_cnn_depth()} stride-2 conv layers "
                "fit a 28x28 image"
            )
        return self


class MtlSearchSpace(StrictModel):
    """The MTL loss weight lambda: lambda * CE(items) + (1 - lambda) * CE(groups), within [0, 1]."""

    min_lambda: float = Field(0.0, ge=0.0, le=1.0)
    max_lambda: float = Field(1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.min_lambda > self.max_lambda:
            raise ValueError(f"min_lambda {self.min_lambda} exceeds max_lambda {self.max_lambda}")
        return self
