"""Figures of parts 3 and 4: learning curves, accuracy against time, MLP vs CNN."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from tasks.figures import new_figure
from tasks.replicates.figures import plot_band


def learning_curves_figure(histories: dict[str, list[dict[str, list[float]]]], kind: str):
    """Accuracy and loss per epoch of every architecture, train (solid, circles) and test (dashed,
    squares): the mean over its seeds, with the 95 % interval as a band when it has several.
    Markers on both, so that a one-epoch run still shows its two points."""
    figure, (accuracy_axes, loss_axes) = new_figure(13, 5, ncols=2)
    for index, (name, seed_histories) in enumerate(histories.items()):
        colour = f"C{index}"
        epochs = np.arange(1, max(len(history["train_accuracy"]) for history in seed_histories) + 1)
        for axes, metric in ((accuracy_axes, "accuracy"), (loss_axes, "loss")):
            for split, style in (("train", "-o"), ("test", "--s")):
                plot_band(
                    axes,
                    epochs,
                    [history[f"{split}_{metric}"] for history in seed_histories],
                    colour,
                    f"{name} {split}",
                    style,
                )
    accuracy_axes.set_title(f"{kind.upper()} learning curves: accuracy")
    accuracy_axes.set_ylabel("accuracy")
    loss_axes.set_title(f"{kind.upper()} learning curves: loss")
    loss_axes.set_ylabel("sparse categorical cross-entropy")
    for axes in (accuracy_axes, loss_axes):
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axes.legend(fontsize="x-small", ncol=2)
    return figure


def accuracy_vs_time_figure(table: pd.DataFrame, title: str):
    """Test accuracy against training time; marker area proportional to the parameter count."""
    figure, axes = new_figure(8, 5.5)
    sizes = 40 + 400 * table["param_count"] / table["param_count"].max()
    for index, row in enumerate(table.itertuples()):
        axes.scatter(
            row.train_time_s,
            row.test_accuracy,
            s=sizes.iloc[index],
            alpha=0.6,
            color=f"C{index}",
            label=f"{row.name} ({row.param_count / 1e6:.2f} M params)",
        )
        axes.annotate(row.name, (row.train_time_s, row.test_accuracy), xytext=(6, 4), textcoords="offset points")
    axes.set_title(title + "\n(marker area proportional to parameter count)")
    axes.set_xlabel("training time (s)")
    axes.set_ylabel("test accuracy")
    axes.legend(fontsize="small", markerscale=0.5)
    return figure
