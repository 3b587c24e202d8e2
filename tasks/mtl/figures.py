"""Figures of part 6: both tasks' test accuracy across lambda, per epoch and final."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from tasks.figures import new_figure

TASK_TITLES = {"item": "task 1: item (10 classes)", "group": "task 2: group"}
TASK_COLOURS = {"item": "C0", "group": "C1"}
LAMBDA_AXIS = "lambda (weight of the task-1 loss; task 2 gets 1 - lambda)"


def final_accuracy_figure(mtl_accuracies: dict[float, dict[str, float]], single_task: dict[str, float]):
    """Final test accuracy of both tasks against lambda; single-task models as dashed lines.

    `mtl_accuracies`: lambda -> task -> test accuracy; `single_task`: task -> test accuracy of the
    single-task model of that task (absent if it was not trained).
    """
    figure, axes = new_figure(8, 5.5)
    lambdas = sorted(mtl_accuracies)
    for task, title in TASK_TITLES.items():
        values = [mtl_accuracies[value][task] for value in lambdas]
        axes.plot(lambdas, values, "-o", color=TASK_COLOURS[task], label=f"MTL, {title}")
        if task in single_task:
            axes.axhline(single_task[task], ls="--", color=TASK_COLOURS[task], label=f"single-task model, {title}")
    axes.set_title("Multi-task learning on Fashion-MNIST: final test accuracy across lambda")
    axes.set_xlabel(LAMBDA_AXIS)
    axes.set_ylabel("test accuracy (fraction correct)")
    axes.set_xticks(lambdas)
    axes.set_ylim(0, 1.02)
    axes.legend(fontsize="small", loc="lower center")
    return figure


def per_epoch_accuracy_figure(mtl_histories: dict[float, dict[str, list[float]]],
                              single_task_histories: dict[str, dict[str, list[float]]]):
    """Test accuracy per epoch, one panel per task: one line per lambda, single-task dashed black."""
    figure, panels = new_figure(13, 5, ncols=2)
    lambdas = sorted(mtl_histories)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(len(lambdas), 1)))
    max_epochs = max(len(history["train_loss"]) for history in [*mtl_histories.values(), *single_task_histories.values()])
    for axes, (task, title) in zip(panels, TASK_TITLES.items()):
        metric = f"test_{task}_accuracy"
        for colour, value in zip(colours, lambdas):
            curve = mtl_histories[value][metric]
            axes.plot(np.arange(1, len(curve) + 1), curve, "-o", ms=4, color=colour, label=f"MTL lambda {value}")
        if task in single_task_histories:
            curve = single_task_histories[task][metric]
            axes.plot(np.arange(1, len(curve) + 1), curve, "--s", ms=4, color="black", label="single-task model")
        axes.set_title(f"Test accuracy per epoch, {title}")
        axes.set_xlabel("epoch")
        axes.set_xlim(0.5, max_epochs + 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axes.set_ylabel("test accuracy (fraction correct)")
        axes.set_ylim(0, 1.02)
        axes.legend(fontsize="small")
    return figure
