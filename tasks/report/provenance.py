"""Where a report's numbers came from: each part's run, its code commit, when and how long it ran.

All of it is read from the runs' own tags and times in MLflow, so a report regenerated later, or
elsewhere, states the same provenance; only the machine is the report's host, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mlflow.entities import Run

from studyflow.tracking.names import Tag

VERSIONS_SHOWN = ("tensorflow-cpu", "keras", "mlflow", "prefect", "optuna", "scikit-learn")


@dataclass(frozen=True)
class PartProvenance:
    part: str
    run_id: str
    commit: str  # the commit's first 10 characters, "+ changes" when the checkout differed from it
    started: str
    wall_s: float | None  # None while the run has no end time
    # The runs the part is made of (its trainings, fits, figures' runs), reused ones included, and
    # their own time summed: what the part's work took even when a resumed command reused most of it
    # and its own wall time is only the last stretch.
    member_runs: int = 0
    reused_runs: int = 0
    member_s: float = 0.0

    @property
    def own_s(self) -> float | None:
        """The part's work's own time: its runs' summed, or, for a part whose work is all in its own
        run (PCA, inspection), that run's wall time."""
        return self.member_s if self.member_runs else self.wall_s


@dataclass(frozen=True)
class Provenance:
    parts: list[PartProvenance]
    commits: list[str]
    first_start: str
    last_end: str | None
    span_s: float | None  # first start to last end: the study's wall time when its parts ran together

    @property
    def resumed(self) -> bool:
        """Some part reused runs of an earlier command: its wall time and the span are not the work's."""
        return any(part.reused_runs for part in self.parts)

    @property
    def member_s(self) -> float:
        return sum(part.own_s or 0.0 for part in self.parts)

    versions: dict[str, str]
    machine: str

    @property
    def span(self) -> str:
        return duration(self.span_s)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _when(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def commit_of(run: Run) -> str:
    commit = run.data.tags.get(Tag.GIT_COMMIT, "unknown")[:10]
    return commit + (" + changes" if run.data.tags.get(Tag.GIT_DIRTY) == "true" else "")


def _seconds(run: Run) -> float | None:
    return (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else None


def provenance(runs: dict[str, Run], machine: str, members: dict[str, list[Run]] | None = None) -> Provenance | None:
    """The provenance of the parts' parent runs (part -> run), None when no part has a run.

    `members`: part -> the runs its parent is made of (tracking.member_runs), reused ones included."""
    if not runs:
        return None
    members = members or {}
    parts = []
    for part, run in runs.items():
        own = [member for member in members.get(part, []) if member.info.run_id != run.info.run_id]
        # by the parent's list, not by each member's parent: a seed run under a replicate group is the part's own
        listed = set(run.data.tags.get(Tag.REUSED_RUN_IDS, "").split(","))
        reused = [member for member in own if member.info.run_id in listed]
        parts.append(
            PartProvenance(
                part,
                run.info.run_id,
                commit_of(run),
                _when(run.info.start_time),
                _seconds(run),
                len(own),
                len(reused),
                sum(_seconds(member) or 0.0 for member in own),
            )
        )
    starts = [run.info.start_time for run in runs.values()]
    ends = [run.info.end_time for run in runs.values()]
    finished = all(ends)
    latest = max(runs.values(), key=lambda run: run.info.start_time)
    versions = {
        name: latest.data.tags[Tag.VERSION_PREFIX + name]
        for name in VERSIONS_SHOWN
        if Tag.VERSION_PREFIX + name in latest.data.tags
    }
    return Provenance(
        parts,
        sorted({part.commit for part in parts}),
        _when(min(starts)),
        _when(max(ends)) if finished else None,
        (max(ends) - min(starts)) / 1000 if finished else None,
        versions,
        machine,
    )
