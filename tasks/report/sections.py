"""A report section and the helpers that read a part's runs from MLflow: its member runs by tag,
its figures, the command that reproduces it. The tables are built in part_tables and pca_tables."""

from __future__ import annotations

import csv
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Run

from studyflow import reference, tracking
from studyflow.config.base import PROFILES
from studyflow.config.parts import PART_CONFIGS
from studyflow.tracking.names import Tag, mtl_label, pair_label
from studyflow.tracking.runs import param_text
from tasks.report.tables import Table

PART_TITLES = {
    "pca": "1. PCA map and linear separability (MNIST)",
    "perceptron": "2. Perceptrons on digit pairs (MNIST)",
    "mlp": "3. MLP architectures (MNIST)",
    "cnn": "4. CNN architectures (MNIST)",
    "inspect": "5. Looking inside the CNN (MNIST)",
    "mtl": "6. Multi-task learning (Fashion-MNIST)",
}


@dataclass
class Figure:
    run_id: str  # the run whose artifact it is; REPORT_RUN for a figure drawn by the report itself
    artifact_path: str
    caption: str
    drawn: Any = None  # a matplotlib figure the report drew (its run_id is REPORT_RUN)


REPORT_RUN = "report"


@dataclass
class Section:
    part: str
    title: str
    command: str
    run: Run | None = None
    link: str | None = None
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def has_run(self) -> bool:
        return self.run is not None

    @property
    def profile(self) -> str | None:
        return self.run.data.tags.get(Tag.PROFILE) if self.run else None

    @property
    def precision(self) -> str | None:
        """The Keras dtype policy its networks trained in (parts without networks have none)."""
        return self.run.data.params.get("precision") if self.run else None


def original_results() -> dict:
    return reference.original_study()


# Settings that change how a part runs, not what it computes: a reproducing command leaves them out.
EXECUTION_SETTINGS = {"profile", "force", "workers", "dask_address", "system_metrics"}


def reproducing_command(part: str, run: Run) -> str:
    """The command that reruns a part as this run ran it: its profile, and every scientific setting
    whose logged value differs from that profile's default (`--set NAME=VALUE`)."""
    profile = run.data.tags.get(Tag.PROFILE, "paper")
    command = f"studyflow run {part} --profile {profile}"
    config = PART_CONFIGS.get(part)
    if config is None or profile not in PROFILES:
        return command
    defaults = config.for_profile(profile).model_dump()
    for name, default in defaults.items():
        logged = run.data.params.get(name)
        if name not in EXECUTION_SETTINGS and logged is not None and logged != param_text(default):
            command += f" --set {shlex.quote(f'{name}={logged}')}"
    return command


def run_link(run: Run) -> str:
    return tracking.run_url(run.info.experiment_id, run.info.run_id)


def child_runs(client: MlflowClient, part: str, parent: Run, key: Callable[[Run], str | None]) -> dict[str, Run]:
    """The parent's member runs by what `key` reads from their tags (runs it gives None are left out)."""
    runs = {}
    for run in tracking.member_runs(client, part, parent.info.run_id):
        name = key(run)
        if name is not None:
            runs[name] = run
    return runs


def children_by(client: MlflowClient, part: str, parent: Run, key: Callable[[Run], str | None]) -> dict[str, list[Run]]:
    """The parent's finished member runs grouped by what `key` reads from their tags: every seed of a
    model (child_runs keeps one run per model)."""
    groups: dict[str, list[Run]] = {}
    for run in tracking.member_runs(client, part, parent.info.run_id):
        name = key(run)
        if name is not None and run.info.status == "FINISHED":
            groups.setdefault(name, []).append(run)
    return groups


def tag_of(tag: str) -> Callable[[Run], str | None]:
    return lambda run: run.data.tags.get(tag)


def pair_of(run: Run) -> str | None:
    value = run.data.tags.get(Tag.PAIR)
    return pair_label(value) if value else None


def mtl_variant_of(run: Run) -> str | None:
    """The original table's row label of an MTL child run, from its tags ("MTL lambda 0.25")."""
    tasks, mtl_lambda = run.data.tags.get(Tag.TASKS), run.data.tags.get(Tag.MTL_LAMBDA)
    if not tasks:
        return None
    return mtl_label(tuple(tasks.split(",")), float(mtl_lambda) if mtl_lambda is not None else None)


def trial_of(run: Run) -> str | None:
    number = run.data.tags.get(Tag.TRIAL_NUMBER)
    return f"trial {number}" if number is not None else None


# Figures a part logs that the report draws again itself: a part's MLP vs CNN figure shows only the
# runs that existed when the part ran (none of the CNNs when part 3 ran first).
REDRAWN_FIGURES = {"mlp_vs_cnn.png"}


def figures_of(client: MlflowClient, run: Run, caption_prefix: str = "", folder: str = "figures") -> list[Figure]:
    """Every PNG under the run's `figures/`, sub-folders included (part 5 keeps its filters,
    activation maps and dreams in figures/filters, figures/activations and figures/dreams)."""
    found = []
    for item in client.list_artifacts(run.info.run_id, folder):
        if item.is_dir:
            found += figures_of(client, run, caption_prefix, item.path)
        elif item.path.endswith(".png") and Path(item.path).name not in REDRAWN_FIGURES:
            where = Path(item.path).relative_to("figures")
            caption = " ".join([*where.parent.parts, where.stem]).replace("_", " ")
            found.append(Figure(run.info.run_id, item.path, caption_prefix + caption))
    return found


def csv_rows(client: MlflowClient, run: Run, artifact: str) -> list[dict]:
    path = client.download_artifacts(run.info.run_id, artifact)
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def inspected_model(client: MlflowClient, run: Run) -> str:
    """Which CNN part 5 looked inside: its model URI and registry version, the run that trained it and
    that run's architecture, from the inspection run's tags."""
    tags = run.data.tags
    uri, source_id = tags.get(Tag.SOURCE_MODEL_URI, "unknown"), tags.get(Tag.SOURCE_RUN_ID)
    version = tags.get(Tag.SOURCE_MODEL_VERSION)  # "<registered name>/<version>"
    name, _, number = (version or "").rpartition("/")
    text = f"Inspected CNN: `{uri}`" + (f" (registered model {name}, version {number})" if version else "")
    if source_id:
        source = client.get_run(source_id)
        architecture = source.data.tags.get(Tag.ARCHITECTURE)
        text += f", trained by run `{source_id}`" + (
            f" ({architecture}, seed {source.data.tags.get(Tag.SEED)})" if architecture else ""
        )
    return text + "."
