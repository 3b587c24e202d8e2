"""The report's Protocol section: every choice that shapes the numbers, its value as the runs used
it, and where it comes from: the original, our reading of it (where it is ambiguous), or our own
default (where it is silent). Values are read from each part's run (its logged config), or, for a
part not run, from the paper profile's config: nothing here restates a number the code holds."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from mlflow.entities import Run

from studyflow.config.base import TrainSettings
from studyflow.config.parts import PART_CONFIGS
from studyflow.tracking.runs import param_text
from tasks.data import LOADED_PIXEL_RANGE

ORIGINAL = "the original"
READING = "our reading of the original"
DEFAULT = "our default (the original is silent)"
NETWORKS = ("mlp", "cnn", "mtl")


def _percent(text: str) -> str:
    return f"{100 * float(text):g} %"


def _count(text: str) -> str:
    return f"{int(float(text)):,}"


def _range(text: str) -> str:
    low, high = json.loads(text)
    return f"[{low:g}, {high:g}]"


def _seeds(text: str) -> str:
    return "one per model (`seed`)" if text == "None" else f"{text} (replicates)"


@dataclass(frozen=True)
class Choice:
    setting: str
    param: str | None  # the config field the runs log it as; None: a fixed value (`fixed`)
    parts: tuple[str, ...]
    source: str
    why: str = ""
    show: Callable[[str], str] = str
    fixed: str | None = None


CHOICES = [
    Choice("images the PCA is fitted on", "sample_size", ("pca",), ORIGINAL, "a seeded random sample", _count),
    Choice("pair hold-out share (LinearSVC)", "holdout_fraction", ("pca",), DEFAULT, "", _percent),
    Choice("LinearSVC max_iter", "svc_max_iter", ("pca",), ORIGINAL, "", _count),
    Choice(
        "pixel scaling",
        "pixel_range",
        ("pca", "perceptron"),
        READING,
        "the original does not say; [-1, 1] reproduces its per-digit PCA table, [0, 1] halves its centroids",
        _range,
    ),
    Choice(
        "pixel scaling",
        None,
        NETWORKS,
        DEFAULT,
        "pixels / 255, as loaded",
        fixed=f"[{LOADED_PIXEL_RANGE[0]:g}, {LOADED_PIXEL_RANGE[1]:g}]",
    ),
    Choice("perceptron learning rate", "learning_rate", ("perceptron",), ORIGINAL),
    Choice("perceptron iterations at most", "max_epochs", ("perceptron",), ORIGINAL, "", _count),
    Choice(
        "what one perceptron iteration is",
        None,
        ("perceptron",),
        READING,
        "the original does not say whether an iteration is an epoch, an update or a sample",
        fixed="one full-batch update: one pass over the pair's training images",
    ),
    Choice(
        "perceptron stopping tolerance",
        "tolerance",
        ("perceptron",),
        ORIGINAL,
        "training error below it stops training",
    ),
    Choice(
        "perceptron initial weights",
        "init_scale",
        ("perceptron",),
        DEFAULT,
        "random (the original); uniform in [-scale, scale] with this scale (ours)",
    ),
    Choice("epochs", "epochs", ("mlp", "cnn"), ORIGINAL),
    Choice("epochs", "epochs", ("mtl",), READING, "the original does not state them; its conv nets' count (part 4)"),
    Choice(
        "validation split (model selection)",
        "validation_fraction",
        NETWORKS,
        DEFAULT,
        "carved from the training set with a fixed seed; the test set is only reported",
        _percent,
    ),
    Choice("optimizer", None, NETWORKS, DEFAULT, fixed=TrainSettings().as_params()["optimizer"].capitalize()),
    Choice("learning rate", "learning_rate", NETWORKS, DEFAULT),
    Choice("batch size", "batch_size", NETWORKS, DEFAULT, "images per gradient step"),
    Choice("weight decay", "weight_decay", NETWORKS, DEFAULT),
    Choice(
        "precision (Keras dtype policy)",
        "precision",
        NETWORKS,
        DEFAULT,
        "auto: mixed_bfloat16 where the CPU computes bfloat16 natively, else float32",
    ),
    Choice(
        "seed",
        "seed",
        ("pca", "perceptron", "mlp", "cnn", "inspect", "mtl"),
        DEFAULT,
        "samples, splits and initial weights",
    ),
    Choice("seeds per model", "seeds", ("perceptron", "mlp", "cnn", "mtl"), DEFAULT, "", _seeds),
]


def _logged(part: str, param: str, runs: dict[str, Run]) -> str | None:
    """The value a part ran with: its run's logged param, else the paper profile's default."""
    run = runs.get(part)
    if run is not None and param in run.data.params:
        return run.data.params[param]
    config = PART_CONFIGS[part].for_profile("paper")
    return param_text(getattr(config, param)) if param in type(config).model_fields else None


def protocol_rows(runs: dict[str, Run], machine: str) -> list[tuple[str, str, str, str]]:
    """(setting, value by part, source, why) for every choice, then the machine. Parts that ran with
    the same value share it ("mlp, cnn: 20"); a part not run shows the paper profile's value."""
    rows = []
    for choice in CHOICES:
        values: dict[str, list[str]] = {}
        for part in choice.parts:
            text = choice.fixed if choice.param is None else _logged(part, choice.param, runs)
            if text is not None:
                values.setdefault(text if choice.param is None else choice.show(text), []).append(part)
        shown = "; ".join(f"{', '.join(parts)}: {value}" for value, parts in values.items())
        rows.append((choice.setting, shown, choice.source, choice.why))
    rows.append(
        (
            "machine",
            machine,
            "ours (the original's is not stated)",
            "times compare by ratio only; the host this report was generated on",
        )
    )
    return rows
