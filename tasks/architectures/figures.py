"""Figures of parts 3 and 4: learning curves, accuracy against time, MLP vs CNN."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.figures import new_figure


def learning_curves_figure(histories: dict[str, dict[str, list[float]]], kind: str):
    """Accuracy and loss per epoch of every architecture, train (solid) and test (dashed)."""
    figure, (accuracy_axes, loss_axes) = new_figure(13, 5, ncols=2)
    for index, (name, history) in enumerate(histories.items()):
        colour = f"C{index}"
        epochs = np.arange(1, len(history["train_accuracy"]) + 1)
        for axes, metric in ((accuracy_axes, "accuracy"), (loss_axes, "loss")):
            axes.plot(epochs, history[f"train_{metric}"], "-o", ms=3, color=colour, label=f"{name} train")
            axes.plot(epochs, history[f"test_{metric}"], "--", color=colour, label=f"{name} test")
    accuracy_axes.set_title(f"{kind.upper()} learning curves: accuracy")
    accuracy_axes.set_ylabel("accuracy")
    loss_axes.set_title(f"{kind.upper()} learning curves: loss")
    loss_axes.set_ylabel("sparse categorical cross-entropy")
    for axes in (accuracy_axes, loss_axes):
        axes.set_xlabel("epoch")
        axes.legend(fontsize="x-small", ncol=2)
    return figure


def accuracy_vs_time_figure(table: pd.DataFrame, title: str):
    """Test accuracy against training time; marker area proportional to the parameter count."""
    figure, axes = new_figure(8, 5.5)
    sizes = 40 + 400 * table["param_count"] / table["param_count"].max()
    for index, row in enumerate(table.itertuples()):
        axes.scatter(row.train_time_s, row.test_accuracy, s=sizes.iloc[index], alpha=0.6, color=f"C{index}",
                     label=f"{row.name} ({row.param_count / 1e6:.2f} M params)")
        axes.annotate(row.name, (row.train_time_s, row.test_accuracy), xytext=(6, 4), textcoords="offset points")
    axes.set_title(title + "\n(marker area proportional to parameter count)")
    axes.set_xlabel("training time (s)")
    axes.set_ylabel("test accuracy")
    axes.legend(fontsize="small", markerscale=0.5)
    return figure
