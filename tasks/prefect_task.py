"""The one Prefect task factory of the product, so every unit of work gets the same settings."""

from __future__ import annotations

from typing import Any, Callable

from prefect import task
from prefect.cache_policies import NO_CACHE


def studyflow_task(function: Callable, **options: Any):
    """Wrap a plain function as a Prefect task.

    Inputs are large arrays and MLflow handles: hashing them for Prefect's default input cache
    would cost more than the work, so no task caches unless it says so with `cache_policy`.
    """
    settings: dict[str, Any] = {"cache_policy": NO_CACHE, "log_prints": True}
    settings.update(options)
    return task(function, **settings)
