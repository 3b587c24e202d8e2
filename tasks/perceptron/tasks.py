"""Part 2's Prefect tasks: a pair trained in its own child run (a reusable step), and the summary."""

from __future__ import annotations

import dataclasses

from studyflow import paths
from studyflow.config.parts import PerceptronSettings
from studyflow.tracking import RunRecorder, Tag
from studyflow.tracking.names import pair_run_name, pair_tag, replicate_run_name
from tasks.perceptron.compute import PairData, PerceptronResult, train_perceptron
from tasks.perceptron.record import log_pair, log_perceptron_summary
from tasks.prefect_task import step_task, studyflow_task


def train_pair(parent: RunRecorder, data: PairData, settings: PerceptronSettings) -> PerceptronResult:
    """One pair in its own child run: train, then record it.

    Takes the pair's images, not the whole dataset: the step's cache key hashes only what it uses."""
    with parent.child(
        replicate_run_name(pair_run_name(data.pair), settings.seed),
        tags={Tag.PAIR: pair_tag(data.pair)},
        seed=settings.seed,
    ) as run:
        source, name = str(paths.data_dir() / "mnist"), f"mnist-{pair_tag(data.pair)}"
        run.log_split(f"{name}-train", "train", data.train_features, data.train_targets, source)
        run.log_split(f"{name}-test", "test", data.test_features, data.test_targets, source)
        result = train_perceptron(data, settings)
        log_pair(run, data, result, settings)
        print(
            f"{pair_run_name(data.pair)} seed {settings.seed}: train {result.train_accuracy:.4f}, "
            f"test {result.test_accuracy:.4f}, {result.epochs_run} iterations"
        )
    return dataclasses.replace(result, run_id=run.run_id, seed=settings.seed)


# A step: rerun with the same inputs, code and data, it reuses this pair's run instead of training again.
train_pair_task = step_task(
    train_pair, name="perceptron-pair", task_run_name="perceptron-{data.pair[0]}-vs-{data.pair[1]}-seed-{settings.seed}"
)
log_perceptron_summary_task = studyflow_task(log_perceptron_summary, name="log-perceptron-summary")
