"""The fan-out benchmark's arithmetic: how long a study's trainings take on N workers (longest first,
each to the worker free first), and a training's paper-profile time from a measured quick one
(bench/fan_out.py measures; its docstring says how the projection is made)."""

from __future__ import annotations

import heapq

from bench.common import FULL_TRAIN_IMAGES


def lpt_makespan(durations: list[float], workers: int) -> float:
    """The time `workers` take for `durations` under longest-processing-time-first list scheduling:
    the longest job first, each to the worker that is free first."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    loads = [0.0] * min(workers, max(1, len(durations)))
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(loads, loads[0] + duration)
    return max(loads)


def projected_wall_s(parts: dict[str, dict], unfanned_s: float, workers: int) -> float:
    """The study's wall time on `workers`: its parts one after another, each its time outside the
    trainings (`overhead_s`) + the LPT makespan of its trainings (`trainings_s`), plus `unfanned_s`."""
    return unfanned_s + sum(part["overhead_s"] + lpt_makespan(part["trainings_s"], workers) for part in parts.values())


def paper_scale(part: str, measured: dict[str, object]) -> tuple[float, float]:
    """(paper's training images / measured ones, the paper's epochs); for the perceptron, the
    paper's iteration cap / the measured run's."""
    from studyflow.config.parts import CnnConfig, MlpConfig, MtlConfig, PerceptronConfig

    config = {"perceptron": PerceptronConfig, "mlp": MlpConfig, "cnn": CnnConfig, "mtl": MtlConfig}[part]
    paper, quick = config.for_profile("paper"), config.for_profile("quick", **measured)
    images = (paper.train_size or FULL_TRAIN_IMAGES) / (quick.train_size or FULL_TRAIN_IMAGES)
    return images, (paper.max_epochs / quick.max_epochs if part == "perceptron" else paper.epochs)


def paper_training_s(training: dict, images_ratio: float, epochs: float) -> float:
    """One training's paper time from its measured run (see the module's docstring)."""
    if training["warm_epoch_s"] is None:  # the perceptron: its whole run, recording included
        return training["run_s"] * images_ratio * epochs
    outside_epochs_s = max(0.0, training["run_s"] - (training["epochs_s"] or 0.0))
    return outside_epochs_s + training["warm_epoch_s"] * images_ratio * epochs
