"""Parts 3 and 4's Prefect tasks: one architecture trained in its own child run (a reusable step),
the summaries, and the Model Registry step."""

from __future__ import annotations

from studyflow.config import TrainSettings
from studyflow.tracking import RunRecorder, Tag
from studyflow.tracking.names import replicate_run_name
from tasks.architectures.compute import BUILDERS, ArchitectureOutcome, model_name
from tasks.architectures.record import architecture_params, log_architecture_summary, log_mlp_vs_cnn
from tasks.architectures.registry import register_and_promote
from tasks.model_store import log_keras_model, log_splits, verify_round_trip
from tasks.prefect_links import publish_run
from tasks.prefect_task import step_task, studyflow_task
from tasks.training import TrainingData, compile_model, fresh_model, train

PUBLISHED_METRICS = ("train_accuracy", "val_accuracy", "test_accuracy", "train_time_s")


def train_architecture(
    parent: RunRecorder, kind: str, name: str, widths: list[int], data: TrainingData, settings: TrainSettings
) -> ArchitectureOutcome:
    """Build, train and log one architecture; the model is logged once, checked by reloading."""
    builder, _ = BUILDERS[kind]
    with parent.child(
        replicate_run_name(name, settings.seed), tags={Tag.ARCHITECTURE: name, Tag.MODEL_KIND: kind}, seed=settings.seed
    ) as run:
        log_splits(run, data, "mnist")
        run.start_logged_model(name)  # named after the architecture
        model = compile_model(fresh_model(lambda: builder(widths, name=model_name(name)), settings), settings)
        run.log_params(architecture_params(kind, name, widths, settings, model.count_params(), data))
        result = train(model, data, settings, recorder=run)
        model_uri = log_keras_model(run, model, data.test_inputs)
        verify_round_trip(model_uri, model, data.test_inputs[:256])
        run.set_tags({Tag.MODEL_URI: model_uri})
        print(
            f"{name} seed {settings.seed}: test accuracy {result.final_metrics['test_accuracy']:.4f}, "
            f"{result.final_metrics['train_time_s']:.1f} s"
        )
    publish_run(run, f"{name} seed {settings.seed}", {key: result.final_metrics[key] for key in PUBLISHED_METRICS})
    return ArchitectureOutcome(
        name, kind, list(widths), settings.seed, run.run_id, model_uri, result.final_metrics, result.history
    )


# A step: rerun with the same inputs, code and data, it reuses this run instead of training again.
train_architecture_task = step_task(
    train_architecture, name="train-architecture", task_run_name="train-{name}-seed-{settings.seed}"
)
log_architecture_summary_task = studyflow_task(log_architecture_summary, name="log-architecture-summary")
log_mlp_vs_cnn_task = studyflow_task(log_mlp_vs_cnn, name="mlp-vs-cnn")
register_and_promote_task = studyflow_task(register_and_promote, name="register-best-cnn")
