"""The sweep's table and figures: the trials table, optimisation history, per-epoch validation
curves with the pruned trials, parameter importances, and for MTL the Pareto front and both
accuracies across lambda."""

from __future__ import annotations

import json
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

from studyflow.config.sweeps import OBJECTIVES, SweepConfig  # noqa: E402
from studyflow.tracking.names import TrialAttr  # noqa: E402


def trials_table(config: SweepConfig, trials: list[FrozenTrial]) -> pd.DataFrame:
    metrics = OBJECTIVES[config.KIND].metrics
    rows = []
    for trial in trials:
        row = {"trial": trial.number, "state": trial.state.name}
        row.update({name: (trial.values[index] if trial.values else None) for index, name in enumerate(metrics)})
        if trial.state == TrialState.PRUNED and trial.intermediate_values:
            row[metrics[0]] = None  # a pruned trial has no objective value; see last_reported
        row["last_reported_val_accuracy"] = (
            trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else None
        )
        row["epochs_run"] = trial.user_attrs.get(TrialAttr.EPOCHS_RUN)
        row["train_time_s"] = trial.user_attrs.get(TrialAttr.TRAIN_TIME_S)
        row["param_count"] = trial.user_attrs.get(TrialAttr.PARAM_COUNT)
        row["params"] = json.dumps(trial.params, sort_keys=True)
        row["retry_of"] = trial.system_attrs.get("failed_trial")
        row["mlflow_run_id"] = trial.user_attrs.get(TrialAttr.MLFLOW_RUN_ID)
        rows.append(row)
    return pd.DataFrame(rows)


def _finished(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [trial for trial in trials if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def history_figure(config: SweepConfig, trials: list[FrozenTrial]):
    metrics = OBJECTIVES[config.KIND].metrics
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    for index, metric in enumerate(metrics):
        numbers = [trial.number for trial in complete]
        values = [trial.values[index] for trial in complete]
        axis.scatter(numbers, values, label=f"{metric} (complete trial)", zorder=3)
        if len(metrics) == 1 and values:
            axis.step(numbers, np.maximum.accumulate(values), where="post", color="tab:red", label="best so far")
    pruned = [trial for trial in trials if trial.state == TrialState.PRUNED and trial.intermediate_values]
    if pruned:
        axis.scatter(
            [trial.number for trial in pruned],
            [trial.intermediate_values[max(trial.intermediate_values)] for trial in pruned],
            marker="x",
            color="grey",
            label="pruned (last reported value)",
            zorder=3,
        )
    _finish(
        axis, f"Optimisation history: {config.resolved_study_name}", "trial number", "validation accuracy (last epoch)"
    )
    return figure


def learning_curves_figure(config: SweepConfig, trials: list[FrozenTrial]):
    """Validation accuracy per epoch as the pruner saw it: complete trials solid, pruned dashed."""
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    styles = {TrialState.COMPLETE: ("-", "complete"), TrialState.PRUNED: ("--", "pruned")}
    labelled = set()
    for trial in _finished(trials):
        if not trial.intermediate_values:
            continue
        steps = sorted(trial.intermediate_values)
        style, label = styles[trial.state]
        axis.plot(
            [step + 1 for step in steps],
            [trial.intermediate_values[step] for step in steps],
            style,
            marker="o",
            label=f"{label} trial" if label not in labelled else None,
            alpha=0.8,
        )
        labelled.add(label)
    _finish(
        axis,
        f"Validation accuracy per epoch, every trial: {config.resolved_study_name}",
        "epoch",
        "validation accuracy",
    )
    return figure


def _finish(axis, title: str, xlabel: str, ylabel: str, legend: str = "lower right", whole_x: bool = True) -> None:
    """Titles, the legend and the grid of a sweep's plots; whole-number ticks where x counts (trials, epochs)."""
    axis.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if whole_x:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend(loc=legend)
    axis.grid(alpha=0.3)


def importances(study: optuna.Study) -> dict[str, float]:
    """PED-ANOVA (Optuna 5's default): also rates the per-layer sizes that only deeper trials have."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optuna.importance.get_param_importances(study)


def importances_figure(config: SweepConfig, values: dict[str, float]):
    figure, axis = plt.subplots(figsize=(7.5, 0.45 * len(values) + 1.8))
    names = list(values)[::-1]
    axis.barh(names, [values[name] for name in names], color="tab:blue", label="importance (normalised to 1)")
    what = "both objectives (Pareto)" if config.KIND == "mtl" else "validation accuracy"
    axis.set(
        title=f"Parameter importances for {what}: {config.resolved_study_name}",
        xlabel="importance (PED-ANOVA, sums to 1)",
        ylabel="parameter",
    )
    axis.legend(loc="lower right")
    return figure


def pareto_figure(config: SweepConfig, trials: list[FrozenTrial], front: list[FrozenTrial]):
    figure, axis = plt.subplots(figsize=(6.5, 5))
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    axis.scatter(
        [t.values[0] for t in complete],
        [t.values[1] for t in complete],
        color="lightgrey",
        edgecolor="grey",
        label="trial",
    )
    ordered = sorted(front, key=lambda trial: trial.values[0])
    axis.plot(
        [t.values[0] for t in ordered], [t.values[1] for t in ordered], "-o", color="tab:red", label="Pareto front"
    )
    for trial in ordered:
        axis.annotate(
            f"λ={trial.params['lambda']:.2f}",
            (trial.values[0], trial.values[1]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    _finish(
        axis,
        f"Pareto front, items vs groups: {config.resolved_study_name}",
        "validation accuracy, task 1 (10 items)",
        "validation accuracy, task 2 (3 groups)",
        legend="lower left",
        whole_x=False,
    )
    return figure


def lambda_figure(config: SweepConfig, trials: list[FrozenTrial]):
    figure, axis = plt.subplots(figsize=(7, 4.5))
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.params["lambda"])
    lambdas = [t.params["lambda"] for t in complete]
    axis.plot(lambdas, [t.values[0] for t in complete], "-o", label="task 1: items")
    axis.plot(lambdas, [t.values[1] for t in complete], "-s", label="task 2: groups")
    _finish(
        axis,
        f"Validation accuracy across lambda: {config.resolved_study_name}",
        "lambda (weight of the item loss)",
        "validation accuracy (last epoch)",
        legend="lower center",
        whole_x=False,
    )
    return figure
