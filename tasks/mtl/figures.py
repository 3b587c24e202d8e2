"""Figures of part 6: both tasks' test accuracy across lambda, per epoch and final."""

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


def final_accuracy_figure(mtl_accuracies: dict[float, dict[str, list[float]]], single_task: dict[str, list[float]]):
    """Final test accuracy of both tasks against lambda, the mean over seeds with its 95 % interval
    as a band (several seeds); single-task models as dashed lines (their interval dotted).

    `mtl_accuracies`: lambda -> task -> test accuracy of each seed; `single_task`: task -> test
    accuracies of the single-task model of that task (absent if it was not trained).
    """
    figure, axes = new_figure(8, 5.5)
    lambdas = sorted(mtl_accuracies)
    for task, title in TASK_TITLES.items():
        # per lambda, so that a lambda with a seed fewer (it diverged) still has its point
        means, _, lows, highs = np.array([interval(np.array(mtl_accuracies[value][task])) for value in lambdas]).T
        seeds = max(len(mtl_accuracies[value][task]) for value in lambdas)
        axes.plot(lambdas, means, "-o", color=TASK_COLOURS[task],
                  label=f"MTL, {title}" + (f" (mean of {seeds} seeds)" if seeds > 1 else ""))
        if seeds > 1:
            axes.fill_between(lambdas, lows, highs, color=TASK_COLOURS[task], alpha=0.2, linewidth=0)
        if task in single_task:
            mean, _, low, high = interval(np.array(single_task[task]))
            axes.axhline(mean, ls="--", color=TASK_COLOURS[task], label=f"single-task model, {title}")
            if np.isfinite(low):
                axes.axhspan(low, high, color=TASK_COLOURS[task], alpha=0.08)
    axes.set_title("Multi-task learning on Fashion-MNIST: final test accuracy across lambda")
    axes.set_xlabel(LAMBDA_AXIS)
    axes.set_ylabel("test accuracy (fraction correct)")
    axes.set_xticks(lambdas)
    axes.set_ylim(0, 1.02)
    axes.legend(fontsize="small", loc="lower center")
    return figure


def per_epoch_accuracy_figure(mtl_histories: dict[float, list[dict[str, list[float]]]],
                              single_task_histories: dict[str, list[dict[str, list[float]]]]):
    """Test accuracy per epoch, one panel per task: one line per lambda, single-task dashed black;
    each the mean over seeds with its 95 % interval as a band."""
    figure, panels = new_figure(13, 5, ncols=2)
    lambdas = sorted(mtl_histories)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(len(lambdas), 1)))
    max_epochs = max(len(history["train_loss"]) for histories in [*mtl_histories.values(), *single_task_histories.values()]
                     for history in histories)
    epochs = np.arange(1, max_epochs + 1)
    for axes, (task, title) in zip(panels, TASK_TITLES.items()):
        metric = f"test_{task}_accuracy"
        for colour, value in zip(colours, lambdas):
            plot_band(axes, epochs, [history[metric] for history in mtl_histories[value]], colour, f"MTL lambda {value}")
        if task in single_task_histories:
            plot_band(axes, epochs, [history[metric] for history in single_task_histories[task]], "black",
                      "single-task model", "--s")
        axes.set_title(f"Test accuracy per epoch, {title}")
        axes.set_xlabel("epoch")
        axes.set_xlim(0.5, max_epochs + 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axes.set_ylabel("test accuracy (fraction correct)")
        axes.set_ylim(0, 1.02)
        axes.legend(fontsize="small")
    return figure
