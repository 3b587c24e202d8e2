"""Prefect flows: one per study part, plus `study`, which runs them all. Flows only compose tasks."""

import studyflow  # noqa: F401  (sets library defaults before Prefect is imported)
