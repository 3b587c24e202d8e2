"""Part 6's Prefect tasks: one model variant trained in its own child run (a reusable step), and
the part's summary on the parent run."""

from __future__ import annotations

import keras

from models.multitask import build_multitask
from studyflow.config import TrainSettings
from studyflow.tracking import RunRecorder, Tag
from studyflow.tracking.names import replicate_run_name
from tasks.model_store import log_keras_model, log_splits, verify_round_trip
from tasks.mtl.compute import CROSS_ENTROPY, MtlData, Variant, VariantOutcome, final_task_metrics, task_metrics
from tasks.mtl.record import log_mtl_summary, variant_params
from tasks.prefect_links import publish_run
from tasks.prefect_task import step_task, studyflow_task
from tasks.training import compile_model, fresh_model, train


def train_variant(
    parent: RunRecorder, variant: Variant, data: MtlData, settings: TrainSettings, log_model: bool
) -> VariantOutcome:
    """Build, train and record one variant in its own child run."""
    tags = {
        Tag.MODEL_KIND: "mtl" if variant.mtl_lambda is not None else "single-task",
        Tag.TASKS: ",".join(variant.tasks),
    }
    if variant.mtl_lambda is not None:
        tags[Tag.MTL_LAMBDA] = variant.mtl_lambda
    training = data.for_tasks(variant.tasks)
    with parent.child(replicate_run_name(variant.name, settings.seed), tags=tags, seed=settings.seed) as run:
        log_splits(run, training, "fashion-mnist")
        if log_model:
            run.start_logged_model(variant.name)
        model = fresh_model(
            lambda: build_multitask(
                variant.tasks, group_count=len(data.group_names), name=variant.name.replace("-", "_")
            ),
            settings,
        )
        compile_model(
            model,
            settings,
            loss={task: CROSS_ENTROPY for task in variant.tasks},
            metrics=task_metrics(variant.tasks),
            loss_weights=variant.loss_weights,
        )
        run.log_params(variant_params(variant, data, training, settings, model.count_params()))
        result = train(model, training, settings, recorder=run, selection_metric=variant.selection_metric)
        task_accuracies = final_task_metrics(result.final_metrics, variant.tasks)
        run.log_metrics(task_accuracies)
        model_uri = None
        if log_model:
            model_uri = log_keras_model(run, model, training.test_inputs)
            verify_round_trip(model_uri, model, training.test_inputs[:256])
            run.set_tags({Tag.MODEL_URI: model_uri})
        print(
            f"{variant.label} seed {settings.seed}: "
            + ", ".join(f"{name} {value:.4f}" for name, value in task_accuracies.items())
            + f", {result.final_metrics['train_time_s']:.1f} s"
        )
    publish_run(
        run,
        f"{variant.label} seed {settings.seed}",
        {**task_accuracies, "train_time_s": result.final_metrics["train_time_s"]},
    )
    outcome = VariantOutcome(
        variant,
        run.run_id,
        result.param_count,
        {**result.final_metrics, **task_accuracies},
        result.history,
        model_uri,
        settings.seed,
    )
    del model, result
    keras.backend.clear_session()  # 26 M parameters and their Adam state: free them before the next model
    return outcome


# A step: rerun with the same inputs, code and data, it reuses this run instead of training again.
train_variant_task = step_task(
    train_variant, name="train-mtl-variant", task_run_name="train-{variant.name}-seed-{settings.seed}"
)
log_mtl_summary_task = studyflow_task(log_mtl_summary, name="log-mtl-summary")
