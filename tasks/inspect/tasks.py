"""Part 5's Prefect tasks: find and load the CNN, record what is inside it; the dreams are a reusable step."""

from __future__ import annotations

from studyflow.tracking.model_source import resolve_model_source
from tasks.inspect.compute import dream_digits
from tasks.inspect.record import log_activations, log_digit_choice, log_dreams, log_filters
from tasks.inspect.source import load_inspected_model
from tasks.prefect_task import step_task, studyflow_task

resolve_model_source_task = studyflow_task(resolve_model_source, name="resolve-model")
load_inspected_model_task = studyflow_task(load_inspected_model, name="load-model")
log_digit_choice_task = studyflow_task(log_digit_choice, name="choose-digit-images")
log_filters_task = studyflow_task(log_filters, name="log-filters")
log_activations_task = studyflow_task(log_activations, name="log-activations")
# A step: the same model (by its weights), images and settings reuse the dreams of an earlier run.
dream_task = step_task(dream_digits, ignored=(), name="deep-dream")
log_dreams_task = studyflow_task(log_dreams, name="log-dreams")
