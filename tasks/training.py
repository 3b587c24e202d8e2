"""The one training routine of every network in the product, with per-epoch MLflow logging.

Seeded (`keras.utils.set_random_seed`), Adam, validation on a split carved from the training set,
the test set evaluated once per epoch for the learning curves (never for selection).

Like the original study, a model is trained for its fixed number of epochs and the final weights
are the model: its final metrics are the last epoch's, so every metric's latest value in MLflow is
the model's. The best validation epoch is recorded (`best_epoch`, `best_val_accuracy`) for
information; architectures are compared by their final validation accuracy.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import keras
import numpy as np
import tensorflow as tf

from studyflow.config import Precision, TrainSettings
from studyflow.errors import TrainingDivergedError
from tasks.initializer_seeds import own_initializer_seeds

# What "best epoch" means unless a caller says otherwise (recorded, not restored).
DEFAULT_SELECTION_METRIC = "val_accuracy"

# Training steps run per call into TensorFlow (Keras' steps_per_execution). With one, Keras returns
# to Python after every batch (its callbacks, TerminateOnNaN's check of the loss): at MLP-1's size
# that is a large share of the step. Sixteen steps per call trains the same batches in the same order
# to the same weights (tests/test_part34_architectures.py checks it) while the per-epoch
# metrics, callbacks and logging stay exact: Keras still ends every epoch at its last batch.
# bench.training_speed measures it; 64 was no faster than 16 on the 2-core machines measured.
STEPS_PER_EXECUTION = 16

# Evaluation (validation each epoch, the test set for the curves) needs no gradients, so it takes
# bigger batches than training: fewer steps, same accuracy, the loss equal up to float round-off.
EVALUATION_BATCH_FACTOR = 4


class MetricsSink(Protocol):
    """Where a training's per-epoch metrics go (a studyflow.tracking.RunRecorder), if anywhere."""

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None: ...


@contextmanager
def precision_policy(precision: Precision) -> Iterator[None]:
    """Layers built inside compute in `precision`; the previous global policy is restored after.

    Keras reads the global dtype policy when a layer is built, and a built model keeps it (it is
    saved with the model). The models' softmax layers are float32 whatever the policy, so
    probabilities and losses are computed in float32 (Keras' mixed-precision guidance).
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@dataclass
class TrainingData:
    """Inputs and targets; targets are a dict of arrays for multi-output models."""

    train_inputs: np.ndarray
    train_targets: object
    val_inputs: np.ndarray
    val_targets: object
    test_inputs: np.ndarray
    test_targets: object


@dataclass
class TrainResult:
    model: keras.Model
    history: dict[str, list[float]]  # train_*, val_*, test_* per epoch
    final_metrics: dict[str, float]
    param_count: int
    epoch_times_s: list[float] = field(default_factory=list)


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch (training and validation), without the test-set evaluation."""

    def __init__(self):
        super().__init__()
        self.epoch_times_s: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_times_s.append(time.perf_counter() - self._started)


class EpochMetricsLogger(keras.callbacks.Callback):
    """After each epoch: evaluate the test set and log every metric of the epoch in one batch.

    Keras' `loss`/`accuracy` become `train_loss`/`train_accuracy`; `val_*` stay as they are; the
    test set gives `test_*`. Works for multi-output models (`item_accuracy` -> `train_item_accuracy`).
    """

    def __init__(self, recorder: MetricsSink | None, test_inputs, test_targets, batch_size: int):
        super().__init__()
        self.recorder = recorder
        self.test_inputs = test_inputs
        self.test_targets = test_targets
        self.batch_size = batch_size
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        metrics = {
            (key if key.startswith("val_") else f"train_{key}"): float(value)
            for key, value in (logs or {}).items()
            if key != "learning_rate"
        }
        test = self.model.evaluate(
            self.test_inputs,
            self.test_targets,
            batch_size=self.batch_size * EVALUATION_BATCH_FACTOR,
            verbose=0,
            return_dict=True,
        )
        metrics.update({f"test_{key}": float(value) for key, value in test.items()})
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(value)
        if self.recorder is not None:
            self.recorder.log_metrics(metrics, step=epoch + 1)


class StopOnDivergence(keras.callbacks.Callback):
    """Ends the fit with TrainingDivergedError at the end of an epoch whose loss is not finite.

    Keras' TerminateOnNaN only stops the epoch at the first bad batch: the epoch still ends, so the
    callbacks after it would judge a meaningless epoch (a pruner would call the trial PRUNED on the
    accuracy of NaN weights, and Optuna would never see it fail). Placed after the metrics logger,
    so the diverged epoch is still recorded, and before any caller's callbacks.
    """

    def __init__(self, settings: TrainSettings):
        super().__init__()
        self.settings = settings

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            raise diverged(loss, epoch + 1, self.settings)


def diverged(loss: float, epoch: int, settings: TrainSettings) -> TrainingDivergedError:
    return TrainingDivergedError(
        f"the training loss became {loss} in epoch {epoch}: training stopped "
        f"(learning rate {settings.learning_rate}, batch size {settings.batch_size})"
    )


def fresh_model(build: Callable[[], keras.Model], settings: TrainSettings) -> keras.Model:
    """Build a model from a cleared Keras state and the settings' seed, in the settings' precision.

    Cleared so that what ran before (even a failed fit) cannot change this model's initial weights;
    without gc.collect() (free_memory): that costs a large share of a short run's tracking overhead
    with MLflow, Prefect and TensorFlow loaded (bench.tracking_overhead measures it).
    """
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(settings.seed)
    with precision_policy(settings.precision), own_initializer_seeds(settings.seed):
        return build()


def fused_adam(learning_rate: float, weight_decay: float | None = None) -> keras.optimizers.Adam:
    """Keras' Adam, its per-variable update run as TensorFlow's fused kernel (ResourceApplyAdam).

    Keras 3 writes Adam's update as about ten element-wise operations per variable, each a pass over
    the variable's memory; for MLP-1 and the MTL model that update was 29 % and 41 % of a training
    step (bench.training_efficiency). The fused kernel computes the same formula (Kingma and Ba's,
    with the same alpha, moments and epsilon) in one pass; the weights agree with Keras' to round-off
    after a step (tests/test_part34_architectures.py). Only this instance's update is replaced, not
    the class, so a saved model names a plain Keras Adam and loads anywhere without studyflow.
    Weight decay, gradient clipping and the step counter stay Keras' (they run outside update_step).
    """
    optimizer = keras.optimizers.Adam(learning_rate, weight_decay=weight_decay)
    keras_update_step = optimizer.update_step

    def update_step(gradient, variable, learning_rate):
        if optimizer.amsgrad or isinstance(gradient, tf.IndexedSlices):  # no fused form: Keras' own
            return keras_update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(optimizer.iterations + 1, dtype)
        index = optimizer._get_variable_index(variable)
        beta_1, beta_2 = tf.cast(optimizer.beta_1, dtype), tf.cast(optimizer.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=optimizer._momentums[index].value.handle,
            v=optimizer._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(optimizer.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )

    optimizer.update_step = update_step
    return optimizer


def compile_model(
    model: keras.Model,
    settings: TrainSettings,
    loss="sparse_categorical_crossentropy",
    metrics=("accuracy",),
    loss_weights=None,
    steps_per_execution: int = STEPS_PER_EXECUTION,
) -> keras.Model:
    model.compile(
        optimizer=fused_adam(settings.learning_rate, settings.weight_decay or None),
        loss=loss,
        metrics=list(metrics) if not isinstance(metrics, dict) else metrics,
        loss_weights=loss_weights,
        steps_per_execution=steps_per_execution,
    )
    return model


def train(
    model: keras.Model,
    data: TrainingData,
    settings: TrainSettings,
    recorder: MetricsSink | None = None,
    extra_callbacks: list | None = None,
    selection_metric: str = DEFAULT_SELECTION_METRIC,
) -> TrainResult:
    """Fit a compiled model; log each epoch to `recorder`; return curves and final metrics."""
    timer = EpochTimer()
    logger = EpochMetricsLogger(recorder, data.test_inputs, data.test_targets, settings.batch_size)
    model.fit(
        data.train_inputs,
        data.train_targets,
        validation_data=(data.val_inputs, data.val_targets),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        shuffle=True,
        validation_batch_size=settings.batch_size * EVALUATION_BATCH_FACTOR,
        callbacks=[
            timer,
            logger,
            keras.callbacks.TerminateOnNaN(),
            StopOnDivergence(settings),
            *(extra_callbacks or []),
        ],
        verbose=1 if sys.stdout.isatty() else 2,
    )
    history = logger.history
    last_loss = model.history.history.get("loss", [float("nan")])[-1] if model.history else float("nan")
    if not history or not np.isfinite(last_loss):
        raise diverged(last_loss, len(timer.epoch_times_s), settings)
    selection = history[selection_metric]
    param_count = model.count_params()
    train_time_s = float(sum(timer.epoch_times_s))
    epoch_time_s = train_time_s / len(timer.epoch_times_s)
    summary = {
        "best_epoch": int(np.argmax(selection)) + 1,
        f"best_{selection_metric}": float(np.max(selection)),
        "epochs_run": len(timer.epoch_times_s),
        "param_count": param_count,
        "train_time_s": train_time_s,
        "epoch_time_s": epoch_time_s,
        "epoch_time_per_mparam_s": epoch_time_s / (param_count / 1e6),
    }
    if recorder is not None:
        recorder.log_metrics(summary)  # step 0: these are single values, not curves
    final = {key: values[-1] for key, values in history.items()}  # the model is the last epoch's
    final.update(summary)
    return TrainResult(model, history, final, param_count, timer.epoch_times_s)
