"""The study report after tiny runs: of PCA and the perceptron (both columns, 'not run' for the rest,
valid HTML, the protocol, provenance, a published report refused, a resumed part), and of the network
parts (seeds to resolve, the original's times, MLP vs CNN, the inspected CNN). The report's cells and
figures on given numbers: test_report_tables.py."""

from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import assert_png

from flows.cnn import cnn_flow
from flows.inspect import inspect_flow
from flows.mlp import mlp_flow
from flows.pca import pca_flow
from flows.perceptron import perceptron_flow
from flows.report import report_flow
from studyflow import reference, tracking
from studyflow.config.parts import PART_CONFIGS
from studyflow.errors import UnpublishableReportError
from studyflow.tracking.names import Tag
from tasks.replicates.compute import SEEDS_FOR_POWER
from tasks.report.judging import judge_one_seed, signed
from tasks.report.replicates import read_table
from tasks.report.write import build_report, render

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
    # All ten digits of the original's PCA table beside ours, centroids and variances in two tables
    # narrow enough for a page (at most 8 columns each).
    for entry in reference.original_study()["pca"]["centroids"]:
        assert f"\n| {entry['digit']} | {entry['centroid_pc1']:.2f} | [" in markdown
        assert f"\n| {entry['digit']} | {entry['variance_pc1']:.2f} | [" in markdown
        assert f"| {entry['variance_pc2']:.2f} | [" in markdown
    assert len(reference.original_study()["pca"]["centroids"]) == 10
    assert "only" not in markdown.split("*Per digit: centroid")[1].split("\n")[0]
    assert max(line.count(" | ") for line in markdown.splitlines() if line.startswith("| digit")) <= 8
    assert "train accuracy (original)" in markdown and "| 1 vs 0 |" in markdown
    # The perceptron counts the original's "iterations", never "epochs"; no difference reads "-0.00".
    assert "iterations (original)" in markdown and "epochs (original)" not in markdown
    assert "-0.00 " not in markdown and "-0.0000 " not in markdown and "-0.00 |" not in markdown
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

    # The perceptron's accuracies are judged both ways by the one-seed rule, from the run's own counts.
    (pair_run,) = [run for run in tracking.find_runs(mlflow_client, "perceptron") if Tag.PAIR in run.data.tags]
    for split in ("train", "test"):
        original = reference.original_study()["perceptron"]["pairs"][0][f"{split}_accuracy"]
        ours = pair_run.data.metrics[f"{split}_accuracy"]
        expected = judge_one_seed(original, ours, int(pair_run.data.params[f"{split}_samples"]))
        assert (
            f"| {signed(ours - original, 4)} {expected.words}{' **⚑**' if expected.beyond_noise else ''} |" in markdown
        )
    assert "1.96 binomial standard errors" in markdown

    # The protocol, at the top: each choice with its value as the runs logged it (the quick runs'
    # own settings; the paper profile's for parts not run) and its source.
    protocol = markdown.split("## Protocol")[1].split("\n## ")[0]
    assert markdown.index("## Protocol") < markdown.index("## 1. PCA")
    paper = {kind: PART_CONFIGS[kind].for_profile("paper") for kind in ("mlp", "cnn", "mtl")}
    assert (
        f"| validation split (model selection) | mlp, cnn, mtl: {100 * paper['mlp'].validation_fraction:g} % "
        "| our default" in protocol
    )
    assert f"| batch size | mlp, cnn, mtl: {paper['mlp'].batch_size} |" in protocol
    assert f"| learning rate | mlp, cnn, mtl: {paper['mlp'].learning_rate} |" in protocol
    assert "| optimizer | mlp, cnn, mtl: Adam |" in protocol
    assert f"| epochs | mlp: {paper['mlp'].epochs}; cnn: {paper['cnn'].epochs} | the original |" in protocol
    assert f"| epochs | mtl: {paper['mtl'].epochs} | our reading of the original |" in protocol
    assert "| pixel scaling | pca, perceptron: [-1, 1] | our reading of the original |" in protocol
    assert "| pixel scaling | mlp, cnn, mtl: [0, 1] | our default" in protocol
    assert "| perceptron iterations at most | perceptron: 5 | the original |" in protocol  # this run's, not 1000
    assert "| images the PCA is fitted on | pca: 2,000 |" in protocol
    assert "| what one perceptron iteration is | perceptron: one full-batch update" in protocol
    assert f"| precision (Keras dtype policy) | mlp, cnn, mtl: {paper['mlp'].precision} |" in protocol
    assert "| seeds per model |" in protocol and "| machine |" in protocol

    # Each part's section says how to rerun it as it ran: its profile and the settings it changed.
    assert "Reproduce: `studyflow run pca --profile quick --set sample_size=2000 --set 'dimensions=[10]'`" in markdown
    # Provenance, from the runs themselves: each run's id, commit and wall time.
    assert "## Where these numbers come from" in markdown
    commit = pca_run.data.tags[Tag.GIT_COMMIT][:10]
    assert f"| pca | `{pca_run.info.run_id}` | `{commit}" in markdown
    # PCA's work is all in its own run: its own time is that run's, said so, not "0 min 00 s".
    (pca_row,) = [line for line in markdown.splitlines() if line.startswith("| pca | `")]
    assert pca_row.endswith("(its own run) |")

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
    render(
        report, {(f.run_id, f.artifact_path): "x.png" for s in report.sections for f in s.figures}, tmp_path / "offline"
    )
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
    assert part.member_s == pytest.approx(
        sum((run.info.end_time - run.info.start_time) / 1000 for run in first_members)
    )
    (tmp_path / "resumed").mkdir()
    render(
        resumed,
        {(f.run_id, f.artifact_path): "x.png" for s in resumed.sections for f in s.figures},
        tmp_path / "resumed",
    )
    resumed_markdown = (tmp_path / "resumed" / "report.md").read_text()
    assert "Resumed:" in resumed_markdown
    assert f"| perceptron | `{rerun.info.run_id}` |" in resumed_markdown
    assert f"| {len(first_members)} ({len(first_members)}) |" in resumed_markdown


@pytest.mark.integration
def test_report_of_the_network_parts_gives_seeds_to_resolve_times_and_the_inspected_cnn(
    prefect_server, mlflow_client, tiny, tmp_path
):
    # MLP over three seeds (replicates: intervals and differences), then a CNN, then part 5 on its
    # champion: the MLP vs CNN comparison must hold both, although part 3 ran before part 4.
    mlp_flow(profile="quick", architectures={"MLP-1": [16], "MLP-2": [8]}, seeds=[0, 1, 2], precision="float32", **tiny)
    cnn_flow(profile="quick", architectures={"CNN-4": [4]}, precision="float32", **tiny)
    inspect_flow(profile="quick", dream_steps=2, octaves=1)
    out = tmp_path / "report"
    report_flow(out_dir=str(out))
    markdown = (out / "report.md").read_text()
    mlp = markdown.split("## 3. MLP")[1].split("\n## ")[0]
    cnn = markdown.split("## 4. CNN")[1].split("\n## ")[0]
    inspect = markdown.split("## 5. Looking")[1].split("\n## ")[0]

    # The differences between models say how many seeds would resolve each, as the part logged it.
    mlp_parent = tracking.latest_parent(mlflow_client, "mlp")
    (logged,) = [
        row
        for row in read_table(mlflow_client, mlp_parent, "tables/mlp_differences.csv")
        if row["metric"] == "test_accuracy"
    ]
    needed = logged[SEEDS_FOR_POWER]
    assert "| seeds to resolve |" in mlp
    assert f"| {logged['verdict']} | {int(needed) if needed == needed else 'none practical'} |" in mlp
    assert "80 % power, alpha 0.05" in mlp and "(3 seeds)" in mlp

    # The original's times per epoch and per million parameters (its totals over its epochs) and its
    # second MLP run, beside ours.
    original = {entry["name"]: entry for entry in reference.original_study()["mlp"]["architectures"]}["MLP-1"]
    epochs = reference.original_study()["mlp"]["epochs"]
    per_epoch = original["train_time_s"] / epochs
    assert f"| MLP-1 | {original['train_time_s']:.1f} | [" in mlp
    assert f"| {per_epoch:.2f} | [" in mlp and f"| {per_epoch / (original['param_count'] / 1e6):.2f} | [" in mlp
    seeds = [run for run in tracking.find_runs(mlflow_client, "mlp") if run.data.tags.get(Tag.ARCHITECTURE) == "MLP-1"]
    assert len(seeds) == 3  # ours: the mean over the three seeds, every figure alike
    for metric in ("train_time_s", "epoch_time_s", "epoch_time_per_mparam_s"):
        mean = sum(run.data.metrics[metric] for run in seeds) / 3
        assert f"| [{mean:.1f}](" in mlp if metric == "train_time_s" else f"| [{mean:.2f}](" in mlp, metric
    second = original["second_run_test_accuracy"]
    assert (
        f"| MLP-1 | {original['test_accuracy']:.4f} | {second:.4f} | {signed(second - original['test_accuracy'], 4)} |"
        in mlp
    )

    # MLP vs CNN, drawn by the report from both parts' runs, in part 4's section; the parts' own
    # (part 3's without any CNN) are left out.
    assert "| MLP-1 | MLP |" in cnn and "| CNN-4 | CNN |" in cnn
    assert "mlp_vs_cnn" not in mlp
    (figure_line,) = [line for line in cnn.splitlines() if "MLP vs CNN (drawn by the report)" in line]
    assert_png(out / figure_line.split("](")[1].rstrip(")"))

    # Part 5 names the CNN it looked inside: the model URI and version, and the run that trained it.
    (cnn_child,) = [run for run in tracking.find_runs(mlflow_client, "cnn") if run.data.tags.get(Tag.ARCHITECTURE)]
    assert (
        "Inspected CNN: `models:/mnist-cnn@champion` (registered model mnist-cnn, version 1), trained by run "
        f"`{cnn_child.info.run_id}` (CNN-4, seed 0)" in inspect
    )
    (inspect_row,) = [line for line in markdown.splitlines() if line.startswith("| inspect | `")]
    assert inspect_row.endswith("(its own run) |")
