"""What every part's flow shares: its parameters come from its config class, and its parent run.

`part_flow` makes a Prefect flow whose parameters are the config's fields (derived, not declared):
the command line (`--set epochs=5`), a deployment (`prefect deployment run 'cnn/quick' -p epochs=5`)
and the Prefect UI's form all speak the config's field names, and a new field is a new parameter
without another edit. Prefect's own validation is off: one validator, the config class.

The config is built once on its way to `fit`:
- a deployment or the Prefect UI gives parameters: the flow builds the config from them
  (`PartConfig.for_profile`, which names a bad parameter);
- the command line builds and checks the config before Prefect starts, then `run_with_config`
  hands that very object to the body; Prefect records its resolved values as the run's parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from prefect import Flow, flow

from studyflow import tracking
from studyflow.config import PartConfig
from studyflow.tracking import RunRecorder
from studyflow.tracking.descriptions import DESCRIPTION_TAG, parent_description
from studyflow.tracking.names import parent_run_name
from tasks.data import Dataset
from tasks.prefect_links import publish_run

ConfigT = TypeVar("ConfigT", bound=PartConfig)

# The config a caller built for the flow it is about to call (run_with_config); taken by that flow's
# body, so a subflow it starts builds its own from its parameters.
_built_config: ContextVar[PartConfig | None] = ContextVar("studyflow_built_config", default=None)


def part_flow(name: str, config_class: type[ConfigT], **options) -> Callable[[Callable[[ConfigT], object]], Flow]:
    """Decorate `body(config)` into the flow `name`, taking `config_class`'s fields as parameters."""

    def decorate(body: Callable[[ConfigT], object]) -> Flow:
        @functools.wraps(body)
        def run(profile: str = "quick", **parameters):
            return body(_take_built_config(config_class) or config_class.for_profile(profile, **parameters))

        del run.__wrapped__  # Prefect reads the signature below, not the body's
        run.__signature__ = config_class.flow_signature()
        run.__doc__ = f"{body.__doc__ or ''}\n\n{config_class.parameter_docs()}"
        return flow(name=name, validate_parameters=False, **options)(run)

    return decorate


def _take_built_config(config_class: type[ConfigT]) -> ConfigT | None:
    """The config run_with_config built for this flow, once (a subflow builds its own). A module-level
    function: the flow's body is sent to Dask workers by value, and a ContextVar cannot be pickled."""
    built = _built_config.get()
    if type(built) is not config_class:
        return None
    _built_config.set(None)
    return built


def run_with_config(part_flow_: Flow, config: PartConfig) -> Any:
    """Run a part's flow on a config already built and checked: its body receives `config` itself."""
    token = _built_config.set(config)
    try:
        return part_flow_(**config.flow_arguments())
    finally:
        _built_config.reset(token)


@contextmanager
def parent_run(part: str, config: PartConfig, dataset: Dataset, run_name: str | None = None) -> Iterator[RunRecorder]:
    """The flow's parent MLflow run with its config as params and its data as dataset input."""
    client = tracking.connect()
    with tracking.tracked_run(
        client,
        part,
        run_name or parent_run_name(part, config.profile),
        profile=config.profile,
        seed=config.seed,
        dataset_digest=dataset.digest,
    ) as recorder:
        recorder.set_tags({DESCRIPTION_TAG: parent_description(part, config.profile, config.model_dump())})
        recorder.system_metrics = bool(getattr(config, "system_metrics", False))
        recorder.log_params(config.model_dump())
        recorder.log_dataset(dataset, "train")
        recorder.log_dataset(dataset, "test")
        publish_run(recorder, f"{part} {config.profile}")
        yield recorder
    print(
        f"[studyflow] {part}: experiment {tracking.experiment_name(part)} (id {recorder.experiment_id}), "
        f"run {recorder.run_id}: {tracking.run_url(recorder.experiment_id, recorder.run_id)}"
    )
