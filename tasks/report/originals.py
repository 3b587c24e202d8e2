"""Tables of the original's figures that the main comparison leaves out: times per epoch and per
million parameters, the original's second MLP run, and its best MTL model against the single-task pair."""

from __future__ import annotations

from mlflow.entities import Run

from tasks.report.judging import signed
from tasks.report.sections import original_results, run_link
from tasks.report.tables import MISSING, Cell, Table, comparison_columns, ratio_cells


def ours_value(name: str, metric: str, members: dict[str, list[Run]], parent: Run) -> tuple[float | None, str | None]:
    """Our value of `metric` for model `name`: its mean over the model's runs (its seeds), and the
    run it links to: the model's own run with one seed, the part's run (which holds the summary) with several."""
    runs = [run for run in members.get(name, []) if metric in run.data.metrics]
    if not runs:
        return None, None
    mean = sum(run.data.metrics[metric] for run in runs) / len(runs)
    return mean, run_link(runs[0] if len(runs) == 1 else parent)


def epoch_times_table(kind: str, originals: dict[str, dict], members: dict[str, list[Run]], parent: Run) -> Table:
    """Training time, time per epoch and per epoch per million parameters, the original's beside ours.
    The original gives totals only: its per-epoch figures are its total over its epochs."""
    epochs = original_results()[kind]["epochs"]
    table = Table(
        f"{kind.upper()} training times in seconds of wall time, each on its own machine (compare by "
        f"ratio only; ours: the mean over a model's seeds); the original's per-epoch times are its totals over its "
        f"{epochs} epochs",
        ["name"] + comparison_columns(["time (s)", "time per epoch (s)", "time per epoch per million parameters (s)"]),
    )
    for name in list(originals) + sorted(set(members) - set(originals)):
        entry = originals.get(name, {})
        total = entry.get("train_time_s")
        per_epoch = total / epochs if total is not None else None
        per_mparam = per_epoch / (entry["param_count"] / 1e6) if per_epoch is not None else None
        row = [Cell(name)]
        for original, metric, fmt in (
            (total, "train_time_s", "{:.1f}"),
            (per_epoch, "epoch_time_s", "{:.2f}"),
            (per_mparam, "epoch_time_per_mparam_s", "{:.2f}"),
        ):
            ours, link = ours_value(name, metric, members, parent)
            row += ratio_cells(original, ours, link, fmt)
        table.rows.append(row)
    return table


def second_mlp_run_table(originals: dict[str, dict], members: dict[str, list[Run]], parent: Run) -> Table:
    """The original's two MLP runs beside ours: how far its own runs differ is the spread its figures
    carry, and where ours lies against both."""
    settings = original_results()["mlp"]
    low, high = settings["second_run_epoch_time_range_s"]
    table = Table(
        f"Test accuracy of the original's two MLP runs (the second: {settings['second_run_epochs']} epochs, "
        f"{low}-{high} s per epoch) and ours (the mean over its seeds)",
        ["name", "original run 1", "original run 2", "run 2 - run 1", "ours", "ours against both runs"],
    )
    for name, entry in originals.items():
        first, second = entry["test_accuracy"], entry.get("second_run_test_accuracy")
        ours, link = ours_value(name, "test_accuracy", members, parent)
        if second is None:
            continue
        if ours is None:
            where = MISSING
        elif ours > max(first, second):
            where = f"above both (by {signed(ours - max(first, second), 4)})"
        elif ours < min(first, second):
            where = f"below both (by {signed(ours - min(first, second), 4)})"
        else:
            where = "between them"
        table.rows.append(
            [
                Cell(name),
                Cell(f"{first:.4f}"),
                Cell(f"{second:.4f}"),
                Cell(signed(second - first, 4)),
                Cell.of(ours, link, "{:.4f}"),
                Cell(where),
            ]
        )
    return table


def mtl_best_table(original: dict, run: Run | None) -> Table:
    """The best MTL model against the two single-task models, by the mean of the two tasks' test
    accuracies (ours: the MTL model with the best mean validation accuracy, from the parent run)."""
    metrics, link = (run.data.metrics, run_link(run)) if run else ({}, None)
    table = Table(
        "Best MTL model against the two single-task models: the mean of the two tasks' test accuracies "
        "(ours: the lambda with the best mean validation accuracy)",
        ["", "best MTL lambda", "best MTL mean accuracy", "single-task mean accuracy", "best MTL minus single-task"],
    )
    theirs = original["best_mean_accuracy"] - original["single_task_mean_accuracy"]
    table.rows.append(
        [
            Cell("original"),
            Cell(f"{original['best_lambda']:g}"),
            Cell(f"{original['best_mean_accuracy']:.4f}"),
            Cell(f"{original['single_task_mean_accuracy']:.4f}"),
            Cell(signed(theirs, 4)),
        ]
    )
    difference = metrics.get("best_mtl_minus_single_task_accuracy")
    table.rows.append(
        [
            Cell("ours"),
            Cell.of(metrics.get("best_mtl_lambda"), link, "{:g}"),
            Cell.of(metrics.get("best_mtl_mean_test_accuracy"), link, "{:.4f}"),
            Cell.of(metrics.get("single_task_mean_test_accuracy"), link, "{:.4f}"),
            Cell(signed(difference, 4), link) if difference is not None else Cell(MISSING),
        ]
    )
    return table
