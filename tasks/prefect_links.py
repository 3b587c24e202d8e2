"""Links from Prefect to MLflow: a flow or task run that made an MLflow run publishes, as Prefect
artifacts, a link to that run's page in the MLflow UI and a table of its key metrics.

(The other way, every MLflow run carries its Prefect flow run id, and the flow run's page address
when a lasting Prefect server is used: see studyflow.tracking.provenance.)
"""

from __future__ import annotations

import math
import re

from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.context import FlowRunContext, TaskRunContext

from studyflow import tracking


def _key(title: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes): the same model's artifacts of
    successive flow runs share it, so Prefect shows them as one artifact's versions."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", f"mlflow-{title}".lower())).strip("-")[:100]


def metrics_markdown(title: str, url: str, metrics: dict[str, float]) -> str:
    rows = "\n".join(
        f"| {name} | {value:.4f} |" if isinstance(value, float) and not math.isnan(value) else f"| {name} | {value} |"
        for name, value in metrics.items()
    )
    return f"### {title}\n\n[MLflow run]({url})\n\n| metric | value |\n|---|---|\n{rows}\n"


def publish_run(recorder: tracking.RunRecorder, title: str, metrics: dict[str, float] | None = None) -> None:
    """Publish the MLflow run of `recorder` on the current Prefect flow or task run (nothing outside
    Prefect). A Prefect API that does not take it costs a warning, never the work."""
    if TaskRunContext.get() is None and FlowRunContext.get() is None:
        return
    url = tracking.run_url(recorder.experiment_id, recorder.run_id)
    try:
        create_link_artifact(
            link=url, link_text=f"MLflow run: {title}", key=_key(title), description=f"The MLflow run of {title}"
        )
        if metrics:
            create_markdown_artifact(
                markdown=metrics_markdown(title, url, metrics),
                key=_key(title) + "-metrics",
                description=f"Key metrics of {title}",
            )
    except Exception as exc:  # the link is a convenience; the MLflow run is the record
        print(f"[studyflow] could not publish the Prefect artifact of {title}: {exc}")
