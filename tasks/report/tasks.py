"""The report's Prefect task: write the study report from the tracking store."""

from __future__ import annotations

from tasks.prefect_task import studyflow_task
from tasks.report.write import write_report

write_report_task = studyflow_task(write_report, name="write-report")
