"""The study report: the last step of `study`, also `studyflow report`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flows.common import part_flow
from studyflow import paths, tracking
from studyflow.config.study import ReportConfig
from studyflow.tracking.names import report_run_name
from tasks.prefect_links import publish_run
from tasks.report.tasks import write_report_task
from tasks.report.write import check_publishable


@part_flow("report", ReportConfig)
def report_flow(config: ReportConfig) -> str:
    """Every part's latest finished run (or the runs named) beside the original study's figures."""
    target = (
        Path(config.out_dir) if config.out_dir else (paths.reports_dir() / datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
    )
    client = tracking.connect()
    if config.published:  # before the report's own run opens: a refused report leaves nothing behind
        check_publishable(client, config.run_ids)
    with tracking.tracked_run(
        client, "report", report_run_name(target.name), profile=config.profile, seed=config.seed, dataset_digest=""
    ) as recorder:
        publish_run(recorder, f"report {target.name}")
        report = write_report_task(client, target, config.run_ids, config.published)
        recorder.log_params({"out_dir": str(target), **{f"run_id.{k}": v for k, v in config.run_ids.items()}})
        recorder.log_metrics({"flags": report.flags, "parts_run": sum(section.has_run for section in report.sections)})
        client.log_artifacts(recorder.run_id, str(target))
    print(f"[studyflow] report: {target / 'report.html'} (and report.md); MLflow run {recorder.run_id}")
    return str(target)
