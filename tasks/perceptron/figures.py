"""Figures of study part 2."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm

from tasks.figures import new_figure
from tasks.perceptron.compute import PerceptronResult


def weight_heatmap_figure(result: PerceptronResult):
    positive, negative = result.pair
    figure, axes = new_figure(6, 5)
    weights = result.weights.reshape(28, 28)
    limit = float(np.abs(weights).max()) or 1.0
    image = axes.imshow(weights, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -limit, limit))
    colourbar = figure.colorbar(image, ax=axes)
    colourbar.set_label(f"weight (red: evidence for {positive}, blue: for {negative})")
    axes.set_title(f"Perceptron weights, {positive} (+1) vs {negative} (-1)")
    axes.set_xlabel("pixel column")
    axes.set_ylabel("pixel row")
    return figure


def training_error_figure(results: list[PerceptronResult]):
    figure, axes = new_figure(8, 5)
    for result in results:
        iterations = np.arange(1, result.epochs_run + 1)
        axes.plot(iterations, result.train_errors, lw=1.2, label=f"{result.pair[0]} vs {result.pair[1]}")
    axes.set_yscale("log")
    axes.set_title("Perceptron training misclassification error per iteration")
    axes.set_xlabel("iteration (one batch update over the pair's training images)")
    axes.set_ylabel("training error (fraction misclassified, log scale)")
    axes.legend(title="pair")
    return figure


def train_test_gap_figure(summary: pd.DataFrame):
    figure, (accuracy_axes, gap_axes) = new_figure(11, 4.5, ncols=2)
    positions = np.arange(len(summary))
    accuracy_axes.bar(positions - 0.2, summary["train_accuracy"], 0.4, label="train")
    accuracy_axes.bar(positions + 0.2, summary["test_accuracy"], 0.4, label="test")
    accuracy_axes.set_ylim(max(0.0, summary[["train_accuracy", "test_accuracy"]].min().min() - 0.02), 1.0)
    accuracy_axes.set_title("Perceptron accuracy per digit pair")
    accuracy_axes.set_ylabel("accuracy")
    gap_axes.bar(positions, summary["train_test_gap"] * 100, color="darkorange", label="train - test")
    gap_axes.axhline(0, color="black", lw=0.8)
    gap_axes.set_title("Generalisation gap per digit pair")
    gap_axes.set_ylabel("train - test accuracy (percentage points)")
    for axes in (accuracy_axes, gap_axes):
        axes.set_xticks(positions, summary["pair"])
        axes.set_xlabel("digit pair (+1 vs -1)")
        axes.legend()
    return figure
