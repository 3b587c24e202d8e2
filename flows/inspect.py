"""Study part 5: looking inside a CNN (filters, activation maps, deep dream) in one MLflow run.

The CNN is the registry's champion by default (`models:/mnist-cnn@champion`, made by part 4) or any
model URI given, e.g. `studyflow run inspect --set model_uri=models:/mnist-cnn/3`.
(Imported as `flows.inspect`; it does not shadow the standard library's `inspect`, which is only
ever imported absolutely.)
"""

from __future__ import annotations

from flows.common import part_flow
from studyflow import tracking
from studyflow.config.parts import InspectConfig
from studyflow.steps import run_step
from tasks.data import load_dataset
from tasks.inspect.record import inspection_run
from tasks.inspect.tasks import (
    dream_task,
    load_inspected_model_task,
    log_activations_task,
    log_digit_choice_task,
    log_dreams_task,
    log_filters_task,
    resolve_model_source_task,
)
from tasks.prefect_links import publish_run


@part_flow("inspect", InspectConfig)
def inspect_flow(config: InspectConfig) -> dict[str, float]:
    """Filters, activation maps and deep dreams of a CNN, in one run linked to the run that trained it."""
    client = tracking.connect()
    source = resolve_model_source_task(client, config.model_uri)  # before the run: a bad URI leaves none
    model = load_inspected_model_task(source)
    dataset = load_dataset("mnist")
    with inspection_run(client, config.model_dump(), config.profile, config.seed, dataset, source) as recorder:
        publish_run(recorder, f"inspect {config.profile}")
        chosen = log_digit_choice_task(recorder, model, dataset, config.digits)
        log_filters_task(recorder, model)
        log_activations_task(recorder, model, chosen)
        dreams = run_step(dream_task, model, chosen, config.dream_settings(), force=config.force)
        return log_dreams_task(recorder, dreams, chosen, config.dream_settings())
