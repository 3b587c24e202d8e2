"""The study report after tiny runs of two parts: both columns, 'not run' for the rest, valid HTML."""

from html.parser import HTMLParser
from pathlib import Path

import pytest

from flows.pca import pca_flow
from flows.perceptron import perceptron_flow
from flows.report import report_flow
from studyflow import reference, tracking
from studyflow.tracking.names import Tag
from studyflow.errors import UnpublishableReportError
from tasks.report.write import build_report, render

from conftest import assert_png

VOID_ELEMENTS = {"meta", "img", "br", "hr", "link", "input"}


class StrictHtml(HTMLParser):
    """Checks that every element closes in order, and collects image sources and links."""

    def __init__(self):
        super().__init__()
        self.open_tags, self.images, self.links, self.errors = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "img":
            self.images.append(attributes["src"])
        if tag == "a":
            self.links.append(attributes["href"])
        if tag not in VOID_ELEMENTS:
            self.open_tags.append(tag)

    def handle_endtag(self, tag):
        if not self.open_tags or self.open_tags[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open_tags[-1:] or 'nothing'}")
        else:
            self.open_tags.pop()


@pytest.mark.integration
def test_report_sets_ours_beside_the_original_and_lists_what_did_not_run(prefect_server, mlflow_client, tmp_path):
    pca_flow(profile="quick", sample_size=2000, dimensions=[10])
    perceptron_flow(profile="quick", pairs=[[1, 0]], max_epochs=5, train_size=3000)
    out = tmp_path / "report"
    report_flow(out_dir=str(out))

    markdown = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "mean pair accuracy (original) | mean pair accuracy (ours)" in markdown
    original = reference.original_study()["pca"]["mean_pair_accuracy"]
    assert f"| {original:.4f} |" in markdown  # the original's figure, read from the reference data file
    # All ten digits of the PCA table; the original's centroids beside ours where it gives them (0 and 1).
    assert "variance PC2 (ours)" in markdown and "\n| 1 | -6.71 | [" in markdown and "\n| 0 | 7.77 | [" in markdown
    assert all(f"\n| {digit} | - | [" in markdown for digit in range(2, 10))
    assert "train accuracy (original)" in markdown and "| 1 vs 0 |" in markdown
    for part in ("mlp", "cnn", "inspect", "mtl"):
        assert f"`studyflow run {part} --profile paper`" in markdown
    assert markdown.count("Quick profile: subsets") == 2

    parser = StrictHtml()
    parser.feed(html)
    parser.close()
    assert not parser.errors and parser.open_tags == []
    assert len(parser.images) >= 6
    for source in parser.images:
        assert_png(out / source)
    (pca_run,) = [run for run in tracking.find_runs(mlflow_client, "pca") if run.info.status == "FINISHED"]
    assert any(link.endswith(f"/runs/{pca_run.info.run_id}?workflowType=machine_learning") for link in parser.links)

    (report_run,) = tracking.find_runs(mlflow_client, "report")
    assert report_run.info.status == "FINISHED" and report_run.data.metrics["parts_run"] == 2
    logged = {item.path for item in mlflow_client.list_artifacts(report_run.info.run_id)}
    assert {"report.md", "report.html", "figures"} <= logged
    assert Path(out / "figures" / "pca").is_dir()

    # Each part's section says how to rerun it as it ran: its profile and the settings it changed.
    assert "Reproduce: `studyflow run pca --profile quick --set sample_size=2000 --set 'dimensions=[10]'`" in markdown
    # Provenance, from the runs themselves: each run's id, commit and wall time.
    assert "## Where these numbers come from" in markdown
    commit = pca_run.data.tags[Tag.GIT_COMMIT][:10]
    assert f"| pca | `{pca_run.info.run_id}` | `{commit}" in markdown

    # A published report needs a whole paper-profile study: refused, naming what is missing, before
    # the report's own run opens.
    with pytest.raises(UnpublishableReportError, match=r"not run: mlp, cnn, inspect, mtl.*pca \(quick\)"):
        report_flow(out_dir=str(tmp_path / "published"), published=True)
    assert len(tracking.find_runs(mlflow_client, "report")) == 1
    assert not (tmp_path / "published").exists()

    # Published, a report links to no local MLflow UI (its readers have none) and names run ids.
    report = build_report(mlflow_client)
    report.links = False
    (tmp_path / "offline").mkdir()
    render(report, {(f.run_id, f.artifact_path): "x.png" for s in report.sections for f in s.figures},
           tmp_path / "offline")
    offline = StrictHtml()
    offline.feed((tmp_path / "offline" / "report.html").read_text())
    assert offline.links == [link for link in offline.links if link.startswith("#")]
    offline_markdown = (tmp_path / "offline" / "report.md").read_text()
    assert "](http" not in offline_markdown and f"`{pca_run.info.run_id}`" in offline_markdown

    # Rerun, the part reuses its finished training instead of redoing it (a resumed study): the
    # provenance counts that run as reused and sums the work's own time, and the report says that
    # the part's wall time covers only the rerun.
    assert "Resumed:" not in markdown
    first = tracking.latest_parent(mlflow_client, "perceptron")
    first_members = tracking.member_runs(mlflow_client, "perceptron", first.info.run_id)
    perceptron_flow(profile="quick", pairs=[[1, 0]], max_epochs=5, train_size=3000)
    rerun = tracking.latest_parent(mlflow_client, "perceptron")
    assert rerun.info.run_id != first.info.run_id
    resumed = build_report(mlflow_client)
    (part,) = [part for part in resumed.provenance.parts if part.part == "perceptron"]
    assert part.run_id == rerun.info.run_id
    assert (part.member_runs, part.reused_runs) == (len(first_members), len(first_members)) and part.member_runs >= 1
    assert part.member_s == pytest.approx(sum((run.info.end_time - run.info.start_time) / 1000 for run in first_members))
    (tmp_path / "resumed").mkdir()
    render(resumed, {(f.run_id, f.artifact_path): "x.png" for s in resumed.sections for f in s.figures},
           tmp_path / "resumed")
    resumed_markdown = (tmp_path / "resumed" / "report.md").read_text()
    assert "Resumed:" in resumed_markdown
    assert f"| perceptron | `{rerun.info.run_id}` |" in resumed_markdown
    assert f"| {len(first_members)} ({len(first_members)}) |" in resumed_markdown
