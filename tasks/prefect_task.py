"""The Prefect task factories of the product, so every unit of work gets the same settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from studyflow.steps import StepCachePolicy


def studyflow_task(function: Callable, **options: Any):
    """Wrap a plain function as a Prefect task.

    Inputs are large arrays and MLflow handles: hashing them for Prefect's default input cache
    would cost more than the work, so no task caches unless it says so with `cache_policy`.
    """
    settings: dict[str, Any] = {"cache_policy": NO_CACHE, "log_prints": True}
    settings.update(options)
    return task(function, **settings)


def step_task(function: Callable, ignored: tuple[str, ...] = ("parent",), **options: Any):
    """An expensive, idempotent step: its result is persisted and reused under its step key
    (inputs, code closure, tracking store; see studyflow.steps). Call it through `run_step`."""
    return studyflow_task(function, cache_policy=StepCachePolicy(ignored=ignored), persist_result=True, **options)
