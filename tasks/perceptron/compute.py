"""Study part 2: the classic perceptron on pairs of MNIST digits (scikit-learn's Perceptron)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import Perceptron

from tasks.data import Dataset

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
    epochs_run: int
    train_errors: list[float]  # misclassification rate on the training data after each epoch
    weights: np.ndarray  # (784,)
    intercept: float
    run_id: str | None = None  # the MLflow run that recorded it
    seed: int | None = None  # the seed it was trained with (replicates)


def pair_data(dataset: Dataset, pair: tuple[int, int]) -> PairData:
    """The two digits' images as float64 vectors (what sklearn computes in) and +1/-1 targets."""
    positive, negative = pair

    def select(images: np.ndarray, labels: np.ndarray):
        mask = (labels == positive) | (labels == negative)
        features = np.ascontiguousarray(images[mask].reshape(int(mask.sum()), -1), dtype=np.float64)
        targets = np.where(labels[mask] == positive, POSITIVE, NEGATIVE)
        return features, targets

    train_features, train_targets = select(dataset.train_images, dataset.train_labels)
    test_features, test_targets = select(dataset.test_images, dataset.test_labels)
    return PairData(pair, train_features, train_targets, test_features, test_targets)


def train_perceptron(
    data: PairData, learning_rate: float, max_epochs: int, tolerance: float, patience: int, seed: int
) -> PerceptronResult:
    """Train epoch by epoch with `partial_fit`, recording the training error after each epoch.

    The stopping rule is scikit-learn's own (`tol`, `n_iter_no_change`): stop once the mean
    perceptron loss has failed to improve by `tolerance` for `patience` epochs in a row. We apply
    it here because `fit` runs all its epochs internally and exposes no per-epoch error.
    """
    model = Perceptron(eta0=learning_rate, random_state=seed, shuffle=True)
    classes = np.array([NEGATIVE, POSITIVE])
    best_loss, epochs_without_improvement = np.inf, 0
    train_errors: list[float] = []
    for _ in range(max_epochs):
        model.partial_fit(data.train_features, data.train_targets, classes=classes)
        margins = data.train_targets * model.decision_function(data.train_features)
        train_errors.append(float(np.mean(margins <= 0)))
        loss = float(np.mean(np.maximum(0.0, -margins)))
        epochs_without_improvement = epochs_without_improvement + 1 if loss > best_loss - tolerance else 0
        best_loss = min(best_loss, loss)
        if epochs_without_improvement >= patience:
            break
    return PerceptronResult(
        pair=data.pair,
        train_accuracy=float(model.score(data.train_features, data.train_targets)),
        test_accuracy=float(model.score(data.test_features, data.test_targets)),
        epochs_run=len(train_errors),
        train_errors=train_errors,
        weights=model.coef_.ravel().copy(),
        intercept=float(model.intercept_[0]),
    )
