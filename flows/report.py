"""The study report: the last step of `study`, also `studyflow report`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from prefect import flow
from pydantic import Field, field_validator

from studyflow import paths, tracking
from studyflow.config import PartConfig, Profile
from tasks.report.write import write_report_task
from tasks.report.sections import PART_TITLES


class ReportConfig(PartConfig):
    out_dir: str | None = Field(None, description="folder to write into (default: reports/<timestamp>/)")
    run_ids: dict[str, str] = Field(default_factory=dict, description="part -> parent run id to report (default: latest)")

    @field_validator("run_ids")
    @classmethod
    def _known_parts(cls, run_ids):
        unknown = sorted(set(run_ids) - set(PART_TITLES))
        if unknown:
            raise ValueError(f"unknown part(s) {unknown}; known: {list(PART_TITLES)}")
        return run_ids


@flow(name="report")
def report_flow(profile: Profile = "quick", seed: int | None = None, out_dir: str | None = None,
                run_ids: dict[str, str] | None = None) -> str:
    config = ReportConfig.for_profile(profile, seed=seed, out_dir=out_dir, run_ids=run_ids)
    target = Path(config.out_dir) if config.out_dir else (
        paths.reports_dir() / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S"))
    client = tracking.connect()
    with tracking.tracked_run(client, "report", f"report-{target.name}", profile=config.profile, seed=config.seed,
                              dataset_digest="", tags={"studyflow.run_level": "parent"}) as recorder:
        report = write_report_task(client, target, config.run_ids)
        recorder.log_params({"out_dir": str(target), **{f"run_id.{k}": v for k, v in config.run_ids.items()}})
        recorder.log_metrics({"flags": report.flags,
                              "parts_run": sum(section.has_run for section in report.sections)})
        client.log_artifacts(recorder.run_id, str(target))
    print(f"[studyflow] report: {target / 'report.html'} (and report.md); MLflow run {recorder.run_id}")
    return str(target)
