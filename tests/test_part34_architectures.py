"""Parts 3 and 4 end to end on tiny subsets: child runs, per-epoch histories, figures, the champion;
and what one training guarantees: a NaN loss fails only its run, the logged model holds the run's final
metrics, a seed gives its metrics again, the round-trip check, steps per execution and the fused Adam as
speed settings only. (The promotion gate and the registry's descriptions: test_cnn_registry.py.)"""

import keras
import mlflow
import mlflow.keras
import numpy as np
import pytest
from conftest import assert_png, download, runs_of
from conftest import tiny_data as _tiny_data
from conftest import tracked_parent as _parent

from flows.cnn import cnn_flow
from flows.mlp import mlp_flow
from models.architectures import build_cnn
from studyflow.tracking.names import Tag
from tasks.architectures.registry import CHAMPION_ALIAS
from tasks.architectures.tasks import train_architecture
from tasks.data import load_dataset, subset
from tasks.training import TrainSettings

PER_EPOCH = ["train_accuracy", "train_loss", "val_accuracy", "val_loss", "test_accuracy", "test_loss"]
FINAL = ["test_accuracy", "test_loss", "param_count", "train_time_s", "epoch_time_s", "epoch_time_per_mparam_s"]


def _children(client, part):
    runs = runs_of(client, part)
    parent = next(run for run in runs if run.data.tags.get(Tag.RUN_LEVEL) == "parent")
    return parent, {
        run.data.tags[Tag.ARCHITECTURE]: run
        for run in runs
        if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }


@pytest.mark.integration
def test_mlp_flow_logs_each_architecture_per_epoch(prefect_server, mlflow_client, tiny):
    # Two epochs for the per-epoch history; 1,500 images so that MLP-a's accuracy clears the bar below by
    # a wide margin (on the tiny profile's 600 it lands at about 0.33).
    mlp_flow(
        profile="quick",
        architectures={"MLP-a": [32, 32], "MLP-b": [16]},
        precision="float32",
        **dict(tiny, epochs=2, train_size=1500),
    )
    parent, children = _children(mlflow_client, "mlp")
    assert set(children) == {"MLP-a", "MLP-b"}
    for name, run in children.items():
        assert run.info.status == "FINISHED"
        for metric in PER_EPOCH:
            history = mlflow_client.get_metric_history(run.info.run_id, metric)
            assert [point.step for point in history] == [1, 2], metric
        for metric in FINAL:
            assert metric in run.data.metrics, metric
        assert run.data.params["hidden_widths"] == ("[32, 32]" if name == "MLP-a" else "[16]")
        assert run.outputs.model_outputs, "the model is logged once, as the run's output"
    assert children["MLP-a"].data.metrics["param_count"] == 784 * 32 + 32 + 32 * 32 + 32 + 330
    assert children["MLP-a"].data.metrics["test_accuracy"] > 0.3  # 22 Adam steps: clearly above chance (0.1)
    for figure in ("mlp_learning_curves.png", "mlp_accuracy_vs_time.png", "mlp_vs_cnn.png"):
        assert_png(download(mlflow_client, parent.info.run_id, f"figures/{figure}"))
    table = download(mlflow_client, parent.info.run_id, "tables/mlp_architectures.csv").read_text().splitlines()
    assert table[0].startswith("model,seed,hidden_widths,train_accuracy") and len(table) == 3


@pytest.mark.integration
def test_cnn_flow_registers_the_best_and_the_champion_predicts(prefect_server, mlflow_client, tiny):
    # In mixed_bfloat16 (the MLP flow above trains in float32): the policy reaches every model, is
    # saved with it, and the registered model still serves float32 probabilities through pyfunc.
    cnn_flow(profile="quick", architectures={"CNN-a": [4, 8], "CNN-b": [8]}, precision="mixed_bfloat16", **tiny)
    parent, children = _children(mlflow_client, "cnn")
    assert set(children) == {"CNN-a", "CNN-b"}
    assert parent.data.params["precision"] == "mixed_bfloat16"
    assert {run.data.params["precision"] for run in children.values()} == {"mixed_bfloat16"}
    assert keras.mixed_precision.global_policy().name == "float32", "the policy must not leak to later models"
    reloaded = mlflow.keras.load_model(children["CNN-a"].data.tags[Tag.MODEL_URI])
    assert reloaded.get_layer("conv_1").dtype_policy.name == "mixed_bfloat16"
    assert reloaded.get_layer("conv_1").kernel.dtype == "float32"  # weights stay float32
    assert reloaded.get_layer("probabilities").dtype_policy.name == "float32"
    best_accuracy = max(run.data.metrics["val_accuracy"] for run in children.values())
    champion = mlflow_client.get_model_version_by_alias("mnist-cnn", CHAMPION_ALIAS)
    by_run_id = {run.info.run_id: run for run in children.values()}
    assert by_run_id[champion.run_id].data.metrics["val_accuracy"] == best_accuracy  # a best one (ties: either)
    recorded = float(champion.tags["test_accuracy"])
    dataset = subset(load_dataset("mnist"), tiny["train_size"], tiny["test_size"], seed=0)
    model = mlflow.pyfunc.load_model("models:/mnist-cnn@champion")
    predictions = model.predict(dataset.test_images)["label"].to_numpy()  # the serving contract: label + probabilities
    assert np.mean(predictions == dataset.test_labels) == pytest.approx(recorded, abs=1e-6)
    comparison = download(mlflow_client, parent.info.run_id, "tables/mlp_vs_cnn.csv").read_text()
    assert "CNN-a" in comparison
    assert_png(download(mlflow_client, parent.info.run_id, "figures/cnn_learning_curves.png"))


def test_nan_loss_stops_training_and_fails_only_that_run(mlflow_client, tiny):
    from tasks.training import TrainingDivergedError

    dataset, data = _tiny_data(tiny)
    with _parent(mlflow_client, "mlp", "parent", dataset.digest) as parent:
        with pytest.raises(TrainingDivergedError, match="nan"):
            # A learning rate no config accepts: the weights overflow and the loss turns NaN at once.
            train_architecture(
                parent, "mlp", "MLP-nan", [16], data, TrainSettings(epochs=3).model_copy(update={"learning_rate": 1e30})
            )
    (child,) = [run for run in runs_of(mlflow_client, "mlp") if run.data.tags.get(Tag.ARCHITECTURE) == "MLP-nan"]
    assert child.info.status == "FAILED"
    assert "TrainingDivergedError" in child.data.tags[Tag.END_REASON]
    assert len(mlflow_client.get_metric_history(child.info.run_id, "train_loss")) == 1  # stopped in epoch 1


def test_the_logged_model_holds_the_runs_final_metrics_once(mlflow_client, tiny):

    dataset, data = _tiny_data(tiny)
    with _parent(mlflow_client, "cnn", "parent", dataset.digest) as parent:
        outcome = train_architecture(parent, "cnn", "CNN-final", [4, 8], data, TrainSettings(epochs=2))
    run = mlflow_client.get_run(outcome.run_id)
    first_loss, last_loss = mlflow_client.get_metric_history(run.info.run_id, "train_loss")
    assert first_loss.value != last_loss.value, "two epochs that differ, so the first cannot pass for the final"
    (output,) = run.outputs.model_outputs
    logged = mlflow_client.get_logged_model(output.model_id)
    values: dict[str, list[float]] = {}
    for metric in logged.metrics:
        values.setdefault(metric.key, []).append(metric.value)
    assert set(PER_EPOCH) | {"param_count", "train_time_s"} <= set(values)
    assert values == {key: [run.data.metrics[key]] for key in values}  # each once, the run's final value
    linked = {(metric.key, metric.dataset_name) for metric in logged.metrics}
    assert {("test_accuracy", "mnist-test"), ("val_accuracy", "mnist-val"), ("train_accuracy", "mnist-train")} <= linked
    for metric in PER_EPOCH:  # linking them to the model added no point to the run's curves
        assert [point.step for point in mlflow_client.get_metric_history(run.info.run_id, metric)] == [1, 2]


# Same seed, same machine, same process: we observe bitwise-equal metrics (TensorFlow's CPU kernels
# with one fixed thread pool). The stated tolerance leaves room for a different thread schedule.
REPRODUCIBILITY_TOLERANCE = 1e-6


def test_same_seed_gives_the_same_metrics_and_another_seed_does_not(mlflow_client, tiny):

    dataset, data = _tiny_data(tiny)
    with _parent(mlflow_client, "cnn", "parent", dataset.digest) as parent:
        first, again, other = (
            train_architecture(
                parent, "cnn", f"CNN-seed-{index}", [4, 8], data, TrainSettings(epochs=2, seed=seed)
            ).final_metrics
            for index, seed in enumerate((0, 0, 1))
        )
    for metric in ("train_loss", "val_loss", "test_loss", "test_accuracy"):
        assert again[metric] == pytest.approx(first[metric], abs=REPRODUCIBILITY_TOLERANCE), metric
    assert other["train_loss"] != pytest.approx(first["train_loss"], abs=REPRODUCIBILITY_TOLERANCE)


def test_round_trip_check_catches_a_logged_model_that_predicts_differently(mlflow_client):
    from tasks.model_store import ModelIntegrityError, log_keras_model, verify_round_trip
    from tasks.training import compile_model

    images = load_dataset("mnist").test_images[:64]
    keras.utils.set_random_seed(0)
    logged = compile_model(build_cnn([4]), TrainSettings(epochs=1))
    other = compile_model(build_cnn([4]), TrainSettings(epochs=1))  # same shape, other initial weights
    with _parent(mlflow_client, "cnn", "round-trip", "none") as run:
        model_uri = log_keras_model(run, logged, images)
    verify_round_trip(model_uri, logged, images)  # the logged model reproduces its predictions
    with pytest.raises(ModelIntegrityError, match="predicts differently"):
        verify_round_trip(model_uri, other, images)


def test_steps_per_execution_trains_the_same_weights_and_logs_every_epoch(tiny):
    """Several steps per call into TensorFlow is a speed setting only: against one step per call,
    the same batches in the same order give the same weights and the same per-epoch metrics, and a
    metrics sink still gets each epoch once (an epoch whose step count is no multiple of it included)."""
    from models.architectures import build_mlp
    from tasks.training import STEPS_PER_EXECUTION, compile_model, fresh_model, train

    assert STEPS_PER_EXECUTION > 1
    dataset, data = _tiny_data(tiny)
    settings = TrainSettings(epochs=3, batch_size=32)
    steps_per_epoch = -(-len(data.train_inputs) // settings.batch_size)
    assert steps_per_epoch % STEPS_PER_EXECUTION != 0, "the last call of an epoch should run fewer steps"

    class Sink:
        def __init__(self):
            self.steps = []

        def log_metrics(self, metrics, step=0):
            self.steps.append(step)

    results, sinks = {}, {}
    for steps in (1, STEPS_PER_EXECUTION):
        sinks[steps] = Sink()
        model = compile_model(fresh_model(lambda: build_mlp([32]), settings), settings, steps_per_execution=steps)
        results[steps] = train(model, data, settings, recorder=sinks[steps])
    one, many = results[1], results[STEPS_PER_EXECUTION]
    for single, batched in zip(one.model.get_weights(), many.model.get_weights(), strict=False):
        np.testing.assert_array_equal(single, batched)
    assert set(one.history) == set(many.history)
    for metric, values in one.history.items():
        assert len(values) == settings.epochs
        np.testing.assert_allclose(many.history[metric], values, rtol=1e-6, err_msg=metric)
    assert sinks[STEPS_PER_EXECUTION].steps == sinks[1].steps == [1, 2, 3, 0]  # each epoch, then the summary


@pytest.mark.parametrize("weight_decay", [None, 0.01])
def test_fused_adam_moves_the_weights_as_keras_adam_and_saves_as_it(tmp_path, weight_decay):
    """The fused update is a speed setting only: two steps from the same weights on the same batches
    give Keras' Adam's weights to float round-off (a wrong step count or bias correction would be off
    by about the learning rate), weight decay included; the model saves as a plain Keras Adam, its
    moments included, so it loads without studyflow."""
    from models.architectures import build_mlp
    from tasks.training import fresh_model, fused_adam

    rng = np.random.default_rng(0)
    inputs, targets = rng.random((64, 28, 28), dtype=np.float32), rng.integers(0, 10, 64)
    optimizers = {
        "keras": lambda: keras.optimizers.Adam(1e-3, weight_decay=weight_decay),
        "fused": lambda: fused_adam(1e-3, weight_decay),
    }
    trained = {}
    for name, optimizer in optimizers.items():
        # Built as the product builds: the same initial weights even if an earlier test left a
        # thread (a Dask event loop) drawing from Python's shared `random` in this process.
        model = fresh_model(lambda: build_mlp([32]), TrainSettings(seed=0, precision="float32"))
        model.compile(optimizer=optimizer(), loss="sparse_categorical_crossentropy")
        for batch in (slice(0, 32), slice(32, 64)):
            model.train_on_batch(inputs[batch], targets[batch])
        trained[name] = model
    for keras_weight, fused_weight in zip(trained["keras"].get_weights(), trained["fused"].get_weights(), strict=False):
        np.testing.assert_allclose(fused_weight, keras_weight, rtol=0, atol=1e-6)

    path = tmp_path / "fused.keras"
    trained["fused"].save(path)
    assert trained["fused"].get_compile_config()["optimizer"]["class_name"] == "Adam"
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is keras.optimizers.Adam
    for saved, restored in zip(trained["fused"].optimizer.variables, loaded.optimizer.variables, strict=False):
        np.testing.assert_array_equal(np.asarray(restored), np.asarray(saved))
