"""One Optuna trial: `create_model(trial)` from the search space, then `objective(trial)` trains it.

Training is the product's one routine (tasks/training.train) inside a child run of the sweep's
parent, so a trial logs the same per-epoch metrics as the named architectures of parts 3 and 4.
Pruning: optuna-integration's KerasPruningCallback reports `val_accuracy` after each epoch (Optuna
step = epoch index from 0; MLflow step = epoch from 1) and raises TrialPruned when the pruner says
so; the trial's run then ends FINISHED with `studyflow.trial_state=PRUNED`, not FAILED.
"""

from __future__ import annotations

import math
import time

import keras
import optuna
from optuna_integration import KerasPruningCallback

from models.architectures import build_cnn, build_mlp
from studyflow.config import TrainSettings
from studyflow.config.sweeps import OBJECTIVES, SweepConfig
from studyflow.tracking import RunRecorder, Tag, TrialAttr
from studyflow.tracking.names import trial_run_name
from tasks.architectures.compute import training_data
from tasks.data import Dataset, load_dataset, subset
from tasks.model_store import log_splits
from tasks.sweeps.record import trial_tags
from tasks.training import TrainingData, compile_model, fresh_model, train


def sweep_data(config: SweepConfig) -> tuple[Dataset, TrainingData]:
    """The profile's subset and validation split; every trial of a sweep trains on exactly this."""
    if config.KIND == "mtl":
        from tasks.sweeps.mtl import mtl_sweep_data

        return mtl_sweep_data(config)
    dataset = subset(load_dataset(config.DATASET), config.train_size, config.test_size, config.seed)
    return dataset, training_data(dataset, config.validation_fraction, config.seed)


def _suggest_layers(trial: optuna.Trial, space, size_name: str) -> list[int]:
    depth = trial.suggest_int("depth", space.min_depth, space.max_depth)
    return [
        trial.suggest_int(f"{size_name}_{index}", space.min_size, space.max_size, log=space.log)
        for index in range(1, depth + 1)
    ]


def suggest_architecture(config: SweepConfig, trial: optuna.Trial) -> dict:
    """The trial's architecture from the search space: the only place that names the parameters."""
    if config.KIND == "mlp":
        return {"hidden_widths": _suggest_layers(trial, config.search_space, "width")}
    if config.KIND == "cnn":
        return {"filters": _suggest_layers(trial, config.search_space, "filters")}
    space = config.search_space
    return {"lambda": trial.suggest_float("lambda", space.min_lambda, space.max_lambda)}


def create_model(config: SweepConfig, trial: optuna.Trial, settings: TrainSettings) -> tuple[keras.Model, dict]:
    """Build and compile the trial's model, from a cleared Keras state and seeded, as every model of
    the product (tasks.training.fresh_model)."""
    architecture = suggest_architecture(config, trial)
    name = f"trial_{trial.number}"

    def build() -> keras.Model:
        if config.KIND == "mlp":
            return compile_model(build_mlp(architecture["hidden_widths"], name=name), settings)
        if config.KIND == "cnn":
            return compile_model(build_cnn(architecture["filters"], name=name), settings)
        from tasks.sweeps.mtl import build_mtl_trial_model

        return build_mtl_trial_model(architecture["lambda"], settings, name=name)

    return fresh_model(build, settings), architecture


class EpochTally(keras.callbacks.Callback):
    """Epochs a trial trained and their wall time, including the epoch after which it was pruned."""

    def __init__(self):
        super().__init__()
        self.epochs = 0
        self.seconds = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1
        self.seconds += time.perf_counter() - self._started


class PruningBeforeTheLastEpoch(KerasPruningCallback):
    """optuna-integration's callback, except after the last epoch: the value is reported, but a trial
    that has trained every epoch is complete (pruning it would save nothing and lose its value)."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= (self.params or {}).get("epochs", epoch + 2):
            value = (logs or {}).get(self._monitor)
            if value is not None:
                self._trial.report(float(value), step=epoch)
            return
        super().on_epoch_end(epoch, logs)


class TrialObjective:
    """`objective(trial)`: train the trial's model in a child run of `parent`; return its validation
    accuracy (or both task accuracies for the MTL sweep), the last epoch's like every model here."""

    def __init__(self, config: SweepConfig, data: TrainingData, parent: RunRecorder, flow_run_id: str = ""):
        self.config = config
        self.data = data
        self.parent = parent
        self.flow_run_id = flow_run_id
        self.objective = OBJECTIVES[config.KIND]
        self.settings = config.train_settings()
        self.current_trial_id: int | None = None  # for the caller to retry it after Ctrl-C

    def __call__(self, trial: optuna.Trial):
        self.current_trial_id = trial._trial_id
        trial.set_user_attr(TrialAttr.MLFLOW_PARENT_RUN_ID, self.parent.run_id)
        trial.set_user_attr(TrialAttr.PREFECT_FLOW_RUN_ID, self.flow_run_id)
        pruned: optuna.TrialPruned | None = None
        tags = trial_tags(self.config, trial, self.flow_run_id)
        with self.parent.child(trial_run_name(trial.number), tags=tags) as run:
            trial.set_user_attr(TrialAttr.MLFLOW_RUN_ID, run.run_id)  # first: the heartbeat's cleanup needs it
            try:
                values = self._train(trial, run)
            except optuna.TrialPruned as exc:
                pruned = exc
            except BaseException:
                run.set_tags({Tag.TRIAL_STATE: "FAIL"})
                raise
            if pruned is not None:
                epochs = trial.user_attrs.get(TrialAttr.EPOCHS_RUN, 0)
                run.log_metrics({"epochs_run": epochs})
                run.set_tags({Tag.TRIAL_STATE: "PRUNED", Tag.PRUNED: "true", Tag.PRUNED_AFTER_EPOCH: epochs})
            else:
                run.set_tags({Tag.TRIAL_STATE: "COMPLETE"})
        if pruned is not None:
            raise pruned  # outside the run, which ends FINISHED
        return values[0] if len(values) == 1 else values

    def _train(self, trial: optuna.Trial, run: RunRecorder) -> list[float]:
        model, architecture = create_model(self.config, trial, self.settings)
        layers = next((value for key, value in architecture.items() if isinstance(value, list)), None)
        params = {
            **trial.params,
            **architecture,
            **self.settings.as_params(),
            "param_count": model.count_params(),
            "train_samples": len(self.data.train_inputs),
            "val_samples": len(self.data.val_inputs),
            "test_samples": len(self.data.test_inputs),
        }
        if layers is not None:
            params["architecture"] = "x".join(str(size) for size in layers)
        run.log_params(params)
        log_splits(run, self.data, self.config.DATASET)
        trial.set_user_attr(TrialAttr.PARAM_COUNT, model.count_params())
        tally = EpochTally()
        callbacks = [tally]
        if self.objective.prunable:
            callbacks.append(PruningBeforeTheLastEpoch(trial, self.objective.metrics[0]))
        try:
            result = train(
                model,
                self.data,
                self.settings,
                recorder=run,
                extra_callbacks=callbacks,
                selection_metric=self.objective.metrics[0],
            )
        finally:
            trial.set_user_attr(TrialAttr.EPOCHS_RUN, tally.epochs)
            trial.set_user_attr(TrialAttr.TRAIN_TIME_S, round(tally.seconds, 3))
        values = [float(result.final_metrics[metric]) for metric in self.objective.metrics]
        if self.config.seeds_per_trial > 1:
            values = self._mean_over_seeds(trial, run, values)
        if any(math.isnan(value) for value in values):
            raise FloatingPointError(f"trial {trial.number}: {self.objective.metrics} = {values} (training diverged)")
        return values

    def _mean_over_seeds(self, trial: optuna.Trial, run: RunRecorder, first: list[float]) -> list[float]:
        """Train the trial's architecture again with the further seeds (unpruned: the first seed
        already passed the pruner) and score it by the mean over all its seeds. The trial's run keeps
        the first seed's curves; each seed's final values and the means are logged beside them."""
        per_seed = {self.settings.seed: first}
        for seed in range(self.settings.seed + 1, self.settings.seed + self.config.seeds_per_trial):
            settings = self.settings.model_copy(update={"seed": seed})
            model, _ = create_model(self.config, trial, settings)  # the same suggestions: the same architecture
            tally = EpochTally()
            result = train(
                model, self.data, settings, extra_callbacks=[tally], selection_metric=self.objective.metrics[0]
            )
            trial.set_user_attr(TrialAttr.EPOCHS_RUN, trial.user_attrs.get(TrialAttr.EPOCHS_RUN, 0) + tally.epochs)
            trial.set_user_attr(
                TrialAttr.TRAIN_TIME_S, round(trial.user_attrs.get(TrialAttr.TRAIN_TIME_S, 0.0) + tally.seconds, 3)
            )
            per_seed[seed] = [float(result.final_metrics[metric]) for metric in self.objective.metrics]
        means = [
            float(sum(values[index] for values in per_seed.values()) / len(per_seed))
            for index in range(len(self.objective.metrics))
        ]
        run.log_metrics(
            {
                **{
                    f"{metric}_seed_{seed}": values[index]
                    for seed, values in per_seed.items()
                    for index, metric in enumerate(self.objective.metrics)
                },
                **{
                    f"{metric}_mean_over_seeds": mean
                    for metric, mean in zip(self.objective.metrics, means, strict=False)
                },
            }
        )
        run.set_tags({Tag.TRIAL_SEEDS: ",".join(map(str, per_seed))})
        return means
