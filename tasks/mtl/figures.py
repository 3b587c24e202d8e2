"""Figures of part 6: both tasks' test accuracy across lambda, per epoch and final.

One panel per task, each with its own y-axis zoomed on the trained heads: the models differ by one or
two points, which an axis from 0 to 1 flattens into one line. A head trained with loss weight 0
(task 1 at lambda 0, task 2 at lambda 1) is at chance, far below the rest; it is named in the panel
with its value instead of being drawn, so that it does not stretch the axis back to 0.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from tasks.figures import new_figure
from tasks.replicates.compute import interval
from tasks.replicates.figures import plot_band

TASK_TITLES = {"item": "task 1: item (10 classes)", "group": "task 2: group"}
TASK_COLOURS = {"item": "C0", "group": "C1"}
LAMBDA_AXIS = "lambda (weight of the task-1 loss; task 2 gets 1 - lambda)"
Y_MARGIN = 0.15  # of the drawn values' range, above and below


def head_trained(task: str, mtl_lambda: float) -> bool:
    """Task 1's loss weight is lambda, task 2's 1 - lambda: a head with weight 0 never learned."""
    return (mtl_lambda if task == "item" else 1.0 - mtl_lambda) > 0.0


def zoom(axes, values: list[float]) -> None:
    """The y-axis around `values` (the trained heads' accuracies and their intervals), not 0 to 1."""
    finite = [value for value in values if np.isfinite(value)]
    if not finite:
        return
    low, high = min(finite), max(finite)
    margin = max((high - low) * Y_MARGIN, 0.002)
    axes.set_ylim(low - margin, min(high + margin, 1.0))


def _finish_panel(axes, title: str, xlabel: str, drawn: list[float], untrained: dict[float, float], what: str) -> None:
    """A task's panel: its untrained heads named with their accuracy (`what` says which) instead of
    drawn, the y axis zoomed on what is drawn, the titles and the grid."""
    if untrained:
        entries = [f"lambda {value:g}: {what}{accuracy:.4f}" for value, accuracy in untrained.items()]
        axes.text(
            0.02,
            0.02,
            "not drawn (untrained head, loss weight 0):\n" + "\n".join(entries),
            transform=axes.transAxes,
            fontsize="x-small",
            va="bottom",
            bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0},
        )
    zoom(axes, drawn)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("test accuracy (fraction correct; axis zoomed)")
    axes.grid(axis="y", alpha=0.3)


def final_accuracy_figure(mtl_accuracies: dict[float, dict[str, list[float]]], single_task: dict[str, list[float]]):
    """Final test accuracy of each task against lambda, one panel per task: the mean over seeds with
    its 95 % interval as a band (several seeds); the single-task model as a dashed line.

    `mtl_accuracies`: lambda -> task -> test accuracy of each seed; `single_task`: task -> test
    accuracies of the single-task model of that task (absent if it was not trained).
    """
    figure, panels = new_figure(13, 5, ncols=2)
    lambdas = sorted(mtl_accuracies)
    for axes, (task, title) in zip(panels, TASK_TITLES.items(), strict=False):
        trained = [value for value in lambdas if head_trained(task, value)]
        means, _, lows, highs = (
            np.array([interval(np.array(mtl_accuracies[value][task])) for value in trained]).T
            if trained
            else (np.array([]),) * 4
        )
        seeds = max((len(mtl_accuracies[value][task]) for value in lambdas), default=1)
        drawn = [*means, *lows, *highs]
        axes.plot(
            trained,
            means,
            "-o",
            color=TASK_COLOURS[task],
            label="MTL" + (f" (mean of {seeds} seeds)" if seeds > 1 else ""),
        )
        if seeds > 1 and trained:
            axes.fill_between(trained, lows, highs, color=TASK_COLOURS[task], alpha=0.2, linewidth=0)
        if task in single_task:
            mean, _, low, high = interval(np.array(single_task[task]))
            axes.axhline(mean, ls="--", color="black", label="single-task model")
            drawn += [mean, low, high]
            if np.isfinite(low):
                axes.axhspan(low, high, color="black", alpha=0.08)
        untrained = {
            value: float(np.mean(mtl_accuracies[value][task])) for value in lambdas if not head_trained(task, value)
        }
        _finish_panel(axes, f"Final test accuracy across lambda, {title}", LAMBDA_AXIS, drawn, untrained, "")
        axes.set_xticks(lambdas)
        axes.set_xlim(min(lambdas) - 0.05, max(lambdas) + 0.05)
        axes.legend(fontsize="small", loc="upper right")
    figure.suptitle("Multi-task learning on Fashion-MNIST")
    return figure


def per_epoch_accuracy_figure(
    mtl_histories: dict[float, list[dict[str, list[float]]]],
    single_task_histories: dict[str, list[dict[str, list[float]]]],
):
    """Test accuracy per epoch, one panel per task: one line per lambda, single-task dashed black;
    each the mean over seeds with its 95 % interval as a band."""
    figure, panels = new_figure(13, 5, ncols=2)
    lambdas = sorted(mtl_histories)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(len(lambdas), 1)))
    max_epochs = max(
        len(history["train_loss"])
        for histories in [*mtl_histories.values(), *single_task_histories.values()]
        for history in histories
    )
    epochs = np.arange(1, max_epochs + 1)
    for axes, (task, title) in zip(panels, TASK_TITLES.items(), strict=False):
        metric = f"test_{task}_accuracy"
        drawn: list[float] = []
        for colour, value in zip(colours, lambdas, strict=False):
            curves = [history[metric] for history in mtl_histories[value]]
            if head_trained(task, value):
                plot_band(axes, epochs, curves, colour, f"MTL lambda {value}")
                drawn += [point for curve in curves for point in curve]
        if task in single_task_histories:
            curves = [history[metric] for history in single_task_histories[task]]
            plot_band(axes, epochs, curves, "black", "single-task model", "--s")
            drawn += [point for curve in curves for point in curve]
        untrained = {
            value: float(np.mean([history[metric][-1] for history in mtl_histories[value]]))
            for value in lambdas
            if not head_trained(task, value)
        }
        _finish_panel(axes, f"Test accuracy per epoch, {title}", "epoch", drawn, untrained, "last epoch ")
        axes.set_xlim(0.5, max_epochs + 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axes.legend(fontsize="small")
    return figure
