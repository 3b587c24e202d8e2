"""Optuna sweeps as Prefect flows: MLP widths and depth, CNN filters and depth, the MTL lambda.

    studyflow sweep cnn --profile paper                        # or: cnn_sweep_flow(profile="paper")
    studyflow sweep mlp --trials 6 --set search_space='{"max_depth": 4}'

Each sweep is an Optuna study in a database (SQLite under mlruns/ unless --storage names another)
and an MLflow parent run in `studyflow-sweep-<kind>` with one child run per trial. Running the same
command again continues the study until `trials` trials have finished (default: the profile's). The
search space, pruner, storage, `workers` and `dask_address` (trials at once on a Dask cluster, as a
part's trainings) are parameters (studyflow/config/sweeps.py says what each means). The flow runs the
steps of tasks.sweeps.run.sweep as Prefect tasks.
"""

from __future__ import annotations

from flows.common import part_flow
from studyflow import tracking
from studyflow.config.sweeps import SWEEP_KINDS, CnnSweepConfig, MlpSweepConfig, MtlSweepConfig, SweepConfig
from tasks.prefect_links import publish_run
from tasks.sweeps.record import sweep_part
from tasks.sweeps.run import sweep
from tasks.sweeps.tasks import PREFECT_STEPS


def _sweep(config: SweepConfig) -> dict:
    flow_run_id, _ = tracking.prefect_ids()
    outcome = sweep(config, PREFECT_STEPS, flow_run_id)
    study, parent, summary = outcome.study, outcome.parent, outcome.summary
    best = summary.get("best")
    publish_run(
        parent,
        f"sweep {config.KIND} {study.study_name}",
        {"best trial": best["trial"], "best val_accuracy": best["val_accuracy"]} if best else None,
    )
    print(
        f"[studyflow] sweep-{config.KIND}: study {study.study_name}, experiment "
        f"{tracking.experiment_name(sweep_part(config.KIND))} (id {parent.experiment_id}), parent run {parent.run_id}\n"
        f"[studyflow] {_outcome(summary)}"
    )
    return summary


def _outcome(summary: dict) -> str:
    counts = summary["trials"]
    text = f"{counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed trials"
    if "best" in summary:
        best = summary["best"]
        text += (
            f"; best: trial {best['trial']}, {best['architecture']}, val accuracy {best['val_accuracy']:.4f}, "
            f"{best['param_count']:,} parameters"
        )
    if summary.get("pareto_front"):
        text += "; Pareto front: " + ", ".join(
            f"lambda {row['lambda']:.2f} ({row['val_item_accuracy']:.3f} / {row['val_group_accuracy']:.3f})"
            for row in summary["pareto_front"]
        )
    return text


@part_flow("sweep-mlp", MlpSweepConfig)
def mlp_sweep_flow(config: MlpSweepConfig) -> dict:
    """An Optuna sweep of MLP depth and widths."""
    return _sweep(config)


@part_flow("sweep-cnn", CnnSweepConfig)
def cnn_sweep_flow(config: CnnSweepConfig) -> dict:
    """An Optuna sweep of CNN depth and filters per layer."""
    return _sweep(config)


@part_flow("sweep-mtl", MtlSweepConfig)
def mtl_sweep_flow(config: MtlSweepConfig) -> dict:
    """An Optuna sweep of the MTL loss weight lambda, with both task accuracies as objectives."""
    return _sweep(config)


SWEEP_FLOWS = {"mlp": mlp_sweep_flow, "cnn": cnn_sweep_flow, "mtl": mtl_sweep_flow}
assert tuple(SWEEP_FLOWS) == SWEEP_KINDS
