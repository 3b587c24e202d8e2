"""The study report: every part's tables beside the original's, with its figures, from MLflow."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from mlflow import MlflowClient

from studyflow import machine, tracking
from studyflow.errors import UnpublishableReportError
from studyflow.tracking.names import Tag
from tasks.report import part_tables, sections
from tasks.report.comparison import mlp_vs_cnn
from tasks.report.pca_tables import pca_tables
from tasks.report.protocol import protocol_rows
from tasks.report.provenance import Provenance, duration, provenance
from tasks.report.replicates import summary_rows
from tasks.report.sections import PART_TITLES, Section
from tasks.report.sweep_tables import sweep_table

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Tables of each part; a part with none shows its figures only.
TABLE_BUILDERS = {
    "pca": pca_tables,
    "perceptron": part_tables.perceptron_tables,
    "mlp": lambda client, run: part_tables.architecture_tables(client, run, "mlp"),
    "cnn": lambda client, run: part_tables.architecture_tables(client, run, "cnn"),
    "inspect": part_tables.inspect_tables,
    "mtl": part_tables.mtl_tables,
}


REPLICATED_PARTS = ("perceptron", "mlp", "cnn", "mtl")


@dataclass
class Report:
    created: str
    tracking_uri: str
    ui_base: str
    sections: list[Section]
    sweep_tables: list
    provenance: Provenance | None = None
    protocol: list[tuple[str, str, str, str]] = field(default_factory=list)  # setting, value, source, why
    # A published report (committed, read on GitHub) links no number to a local MLflow UI that its
    # readers do not have; it names each run's id instead.
    links: bool = True

    @property
    def flags(self) -> int:
        return sum(
            cell.flag for section in self.sections for table in section.tables for row in table.rows for cell in row
        )

    def flags_by_direction(self) -> dict[str, int]:
        """Flagged differences by where ours lies: above or below the original (or a count that differs)."""
        counts = {"above": 0, "below": 0, "other": 0}
        for cell in (
            cell
            for section in self.sections
            for table in section.tables
            for row in table.rows
            for cell in row
            if cell.flag
        ):
            counts[next((word for word in ("above", "below") if f" {word}" in cell.text), "other")] += 1
        return counts


def build_section(client: MlflowClient, part: str, run_id: str | None = None) -> Section:
    section = Section(part, PART_TITLES[part], f"studyflow run {part} --profile paper")
    section.run = tracking.latest_parent(client, part, run_id)
    if section.run is None:
        return section
    section.command = sections.reproducing_command(part, section.run)
    section.link = sections.run_link(section.run)
    if part in TABLE_BUILDERS:
        section.tables = TABLE_BUILDERS[part](client, section.run)
    section.figures = sections.figures_of(client, section.run)
    if part == "perceptron":
        for name, child in sorted(sections.child_runs(client, part, section.run, sections.pair_of).items()):
            section.figures += sections.figures_of(client, child, caption_prefix=f"{name}: ")
    if part in REPLICATED_PARTS:
        section.notes.append(part_tables.replicate_note(summary_rows(client, section.run, part)))
    if part == "inspect":
        section.notes.append(sections.inspected_model(client, section.run))
    if section.profile == "quick":
        section.notes.append(
            "Quick profile: subsets of the data and few epochs. These numbers are a smoke "
            "test, not a reproduction; compare only a paper-profile run with the original."
        )
    return section


def build_report(client: MlflowClient, run_ids: dict[str, str] | None = None, published: bool = False) -> Report:
    run_ids = run_ids or {}
    built = [build_section(client, part, run_ids.get(part)) for part in PART_TITLES]
    named = {section.part: section.run for section in built}
    sweeps = [table for kind in ("mlp", "cnn") if (table := sweep_table(client, kind, named.get(kind)))]
    runs = {section.part: section.run for section in built if section.has_run}
    add_mlp_vs_cnn(client, built, runs)
    members = {part: tracking.member_runs(client, part, run.info.run_id) for part, run in runs.items()}
    host = machine.description()
    return Report(
        datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        tracking.tracking_uri(),
        tracking.ui_base(),
        built,
        sweeps,
        provenance(runs, host, members),
        protocol_rows(runs, host),
        links=not published,
    )


def add_mlp_vs_cnn(client: MlflowClient, built: list[Section], runs: dict) -> None:
    """The MLP vs CNN table and figure, drawn from the reported runs, in part 4's section (part 3's
    when part 4 has not run)."""
    table, figure, note = mlp_vs_cnn(client, runs)
    home = next((section for section in reversed(built) if section.part in ("cnn", "mlp") and section.has_run), None)
    if home is None:
        return
    home.tables += [table] if table else []
    home.figures += [figure] if figure else []
    home.notes += [note] if note else []


def check_publishable(client: MlflowClient, run_ids: dict[str, str] | None = None) -> None:
    """A published report shows a whole paper-profile study: every part run, every run paper."""
    runs = {part: tracking.latest_parent(client, part, (run_ids or {}).get(part)) for part in PART_TITLES}
    missing = [part for part, run in runs.items() if run is None]
    other = [
        f"{part} ({run.data.tags.get(Tag.PROFILE)})"
        for part, run in runs.items()
        if run is not None and run.data.tags.get(Tag.PROFILE) != "paper"
    ]
    if missing or other:
        problems = ([f"not run: {', '.join(missing)}"] if missing else []) + (
            [f"latest run not paper-profile: {', '.join(other)}"] if other else []
        )
        raise UnpublishableReportError(
            f"a published report needs every part's latest run in the paper profile ({'; '.join(problems)}); "
            "run `studyflow run study --profile paper` first, or name the runs with --run PART=RUN_ID"
        )


def save_figure(figure, target: Path) -> None:
    """A figure the report drew, saved as the parts' figures are logged (same resolution), then closed."""
    import matplotlib.pyplot as plt

    try:
        figure.savefig(target, dpi=110, bbox_inches="tight")
    finally:
        plt.close(figure)


def _collect_figures(client: MlflowClient, report: Report, out_dir: Path) -> dict[tuple[str, str], str]:
    """Copy every figure next to the report; returns (run id, artifact) -> path relative to it."""
    local = {}
    for section in report.sections:
        for figure in section.figures:
            # figures/filters/conv_1.png and figures/activations/conv_1.png must not meet in one file
            flat = "-".join(Path(figure.artifact_path).parts[1:])
            target = out_dir / "figures" / section.part / f"{figure.run_id[:8]}-{flat}"
            target.parent.mkdir(parents=True, exist_ok=True)
            if figure.drawn is not None:  # drawn by the report itself
                save_figure(figure.drawn, target)
            else:
                shutil.copyfile(client.download_artifacts(figure.run_id, figure.artifact_path), target)
            local[(figure.run_id, figure.artifact_path)] = target.relative_to(out_dir).as_posix()
    return local


def render(report: Report, figure_paths: dict, out_dir: Path) -> tuple[Path, Path]:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True
    )
    context = {"report": report, "figure_paths": figure_paths, "duration": duration}
    markdown = out_dir / "report.md"
    html = out_dir / "report.html"
    markdown.write_text(environment.get_template("report.md.j2").render(**context))
    html.write_text(environment.get_template("report.html.j2").render(**context))
    return markdown, html


def write_report(
    client: MlflowClient, out_dir: Path, run_ids: dict[str, str] | None = None, published: bool = False
) -> Report:
    """The report in `out_dir`; `published`: run ids instead of UI links, the folder's old figures gone
    (report_flow has refused, with check_publishable, anything but a whole paper-profile study)."""
    report = build_report(client, run_ids, published)
    out_dir.mkdir(parents=True, exist_ok=True)
    if published:  # the folder holds this report only: no figure of an earlier one stays behind
        shutil.rmtree(out_dir / "figures", ignore_errors=True)
    render(report, _collect_figures(client, report, out_dir), out_dir)
    return report
