"""Study part 2: the classic perceptron on pairs of MNIST digits.

One of the original's "iterations" is one batch update: every training image is classified with the
current weights, and the weights move by the learning rate times the sum of y * x over the images
misclassified (the perceptron criterion's gradient over the whole training set). Training stops
when the training misclassification error falls below the tolerance, or after the last iteration.
This reading reproduces the original's counts (1 vs 0 stops after a few hundred iterations, the
other pairs never reach an error of 1e-3 and run all 1000) and its accuracies; docs/study.md sets
it beside the readings it was chosen over. scikit-learn's Perceptron and SGDClassifier update after
every single image and stop on the loss, not the error, so they cannot express it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studyflow.config.parts import PerceptronSettings
from tasks.data import Dataset, rescaled

POSITIVE, NEGATIVE = 1, -1


@dataclass(frozen=True)
class PairData:
    pair: tuple[int, int]  # the first digit is labelled +1, the second -1
    train_features: np.ndarray
    train_targets: np.ndarray
    test_features: np.ndarray
    test_targets: np.ndarray


@dataclass(frozen=True)
class PerceptronResult:
    pair: tuple[int, int]
    train_accuracy: float
    test_accuracy: float
    epochs_run: int  # iterations: batch updates, each one pass over the pair's training images
    train_errors: list[float]  # training misclassification rate after each iteration
    weights: np.ndarray  # (784,)
    intercept: float
    run_id: str | None = None  # the MLflow run that recorded it
    seed: int | None = None  # the seed it was trained with (replicates)


def pair_data(dataset: Dataset, pair: tuple[int, int], pixel_range: tuple[float, float]) -> PairData:
    """The two digits' images as float64 vectors scaled to `pixel_range`, and +1/-1 targets."""
    positive, negative = pair

    def select(images: np.ndarray, labels: np.ndarray):
        mask = (labels == positive) | (labels == negative)
        features = rescaled(np.asarray(images[mask].reshape(int(mask.sum()), -1), dtype=np.float64), pixel_range)
        targets = np.where(labels[mask] == positive, POSITIVE, NEGATIVE)
        return features, targets

    train_features, train_targets = select(dataset.train_images, dataset.train_labels)
    test_features, test_targets = select(dataset.test_images, dataset.test_labels)
    return PairData(pair, train_features, train_targets, test_features, test_targets)


def misclassified(features: np.ndarray, targets: np.ndarray, weights: np.ndarray, intercept: float) -> np.ndarray:
    """Which samples lie on the wrong side of the hyperplane (a point on it counts as wrong)."""
    return targets * (features @ weights + intercept) <= 0


def train_perceptron(data: PairData, settings: PerceptronSettings) -> PerceptronResult:
    """Batch perceptron from random weights and bias, drawn uniformly from [-init_scale, init_scale]."""
    rng = np.random.default_rng(settings.seed)
    weights = rng.uniform(-settings.init_scale, settings.init_scale, data.train_features.shape[1])
    intercept = float(rng.uniform(-settings.init_scale, settings.init_scale))
    targets = data.train_targets.astype(np.float64)
    train_errors: list[float] = []
    wrong = misclassified(data.train_features, targets, weights, intercept)
    while len(train_errors) < settings.max_epochs and wrong.mean() >= settings.tolerance:
        # Only the misclassified images move the weights (a few percent of them after the first iterations).
        step = settings.learning_rate * targets[wrong]
        weights = weights + data.train_features[wrong].T @ step
        intercept += float(step.sum())
        wrong = misclassified(data.train_features, targets, weights, intercept)
        train_errors.append(float(wrong.mean()))
    test_wrong = misclassified(data.test_features, data.test_targets, weights, intercept)
    return PerceptronResult(
        pair=data.pair,
        train_accuracy=1.0 - float(wrong.mean()),
        test_accuracy=1.0 - float(test_wrong.mean()),
        epochs_run=len(train_errors),
        train_errors=train_errors,
        weights=weights,
        intercept=intercept,
    )
