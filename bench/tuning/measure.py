"""Timing training inside a worker process: the study's models and data, steady-state steps per
second of one setting, and test accuracy after one seeded epoch."""

from __future__ import annotations

import time

from bench import common
from bench.tuning.plan import MTL_LOSS_WEIGHTS, Plan, Setting


def load_model_data(model: str, train_size: int | None, test_size: int | None) -> dict:
    import numpy as np

    from studyflow import reference
    from tasks.data import load_dataset, subset
    from tasks.mtl.compute import group_lookup

    dataset = subset(load_dataset("fashion-mnist" if model == "MTL" else "mnist"), train_size, test_size, seed=0)
    if model != "MTL":
        return {
            "train": (dataset.train_images, dataset.train_labels),
            "test": (dataset.test_images, dataset.test_labels),
        }
    lookup = group_lookup(reference.fashion_groups())

    def targets(labels: np.ndarray) -> dict:
        return {"item": labels, "group": lookup[labels]}

    return {
        "train": (dataset.train_images, targets(dataset.train_labels)),
        "test": (dataset.test_images, targets(dataset.test_labels)),
    }


def build_model(model: str, setting: Setting):
    """The study's model, compiled as the product compiles it, under the setting's dtype policy."""
    import keras

    from models.architectures import build_cnn, build_mlp
    from models.multitask import TASKS, build_multitask
    from studyflow import reference
    from tasks.mtl.compute import CROSS_ENTROPY, task_metrics
    from tasks.training import TrainSettings, compile_model

    keras.utils.set_random_seed(0)
    settings = TrainSettings(epochs=1, batch_size=setting.batch_size)
    keras.mixed_precision.set_global_policy(setting.policy)  # read by each layer when it is built
    try:
        if model == "CNN-1":
            network = compile_model(build_cnn(reference.named_architectures("cnn")["CNN-1"]), settings)
        elif model == "MLP-1":
            network = compile_model(build_mlp(reference.named_architectures("mlp")["MLP-1"]), settings)
        else:
            network = compile_model(
                build_multitask(TASKS, group_count=len(reference.fashion_groups())),
                settings,
                loss={task: CROSS_ENTROPY for task in TASKS},
                metrics=task_metrics(TASKS),
                loss_weights=MTL_LOSS_WEIGHTS,
            )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    if setting.jit_compile:
        # compile_model is the product's one compile call; Keras reads this property when it builds
        # the train function, so setting it before the first fit equals compile(jit_compile=True).
        network.jit_compile = True
    return network


def make_step_timer(skip: int, steps: int):
    import keras

    class StepTimer(keras.callbacks.Callback):
        """Time `steps` training steps after `skip`, then stop the fit.

        Only `on_train_batch_begin` is overridden: overriding a batch-end hook would make Keras
        convert every step's logs synchronously, which the measured settings do not do."""

        def __init__(self):
            super().__init__()
            self.begun = 0
            self.elapsed_s = None

        def on_train_batch_begin(self, batch, logs=None):
            self.begun += 1
            if self.begun == skip + 1:
                self.started = time.perf_counter()
            elif self.begun == skip + steps + 1:
                self.elapsed_s = time.perf_counter() - self.started
                self.model.stop_training = True  # this one more step runs, untimed

    return StepTimer()


def fit_steps(network, data: dict, setting: Setting, skip: int, steps: int) -> float:
    """Samples per second of `steps` steady-state steps of one fit call."""
    timer = make_step_timer(skip, steps)
    if setting.pipeline == "tf.data":
        network.fit(data["dataset"], epochs=100_000, verbose=0, callbacks=[timer])
    else:
        images, targets = data["train"]
        network.fit(
            images, targets, batch_size=setting.batch_size, epochs=100_000, shuffle=True, verbose=0, callbacks=[timer]
        )
    return steps * setting.batch_size / timer.elapsed_s


def cached_dataset(data: dict, batch_size: int):
    import tensorflow as tf

    images, targets = data["train"]
    dataset = (
        tf.data.Dataset.from_tensor_slices((images, targets))
        .cache()
        .shuffle(len(images), seed=0)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    for _ in dataset:  # one full pass completes the cache; later iterators read from it
        pass
    return dataset


def measure_throughput(model: str, settings: list[Setting], plan: Plan) -> dict:
    """Build and warm every setting, then time them in turns, `plan.repeats` times."""
    import keras

    data = load_model_data(model, plan.train_size, None)
    networks, results = {}, {}
    for setting in settings:
        try:
            network = build_model(model, setting)
            setting_data = dict(data)
            if setting.pipeline == "tf.data":
                setting_data["dataset"] = cached_dataset(data, setting.batch_size)
            warmup, _ = plan.steps(model, setting.batch_size)
            fit_steps(network, setting_data, setting, warmup, 1)  # traces (and XLA-compiles) the step
            networks[setting.name] = (network, setting_data, setting)
            results[setting.name] = {
                "samples_per_s_repeats": [],
                "batch_size": setting.batch_size,
                "jit_compile": bool(network.jit_compile),
            }
        except Exception as exc:  # one setting that does not run must not lose the others
            results[setting.name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    for _ in range(plan.repeats):  # in turns, so drift and CPU steal hit every setting alike
        for name, (network, setting_data, setting) in networks.items():
            _, steps = plan.steps(model, setting.batch_size)
            results[name]["samples_per_s_repeats"].append(
                fit_steps(network, setting_data, setting, plan.skipped_steps, steps)
            )
    for name in networks:
        results[name]["samples_per_s"] = common.median(results[name]["samples_per_s_repeats"])
    del networks
    keras.backend.clear_session()  # MTL: 26 M parameters and Adam state per setting
    return results


def measure_accuracy(model: str, settings: list[Setting], plan: Plan) -> dict:
    """Test accuracy after one seeded epoch on `plan.accuracy_train_size` images."""
    import keras

    data = load_model_data(model, plan.accuracy_train_size, plan.accuracy_test_size)
    results = {}
    for setting in settings:
        try:
            network = build_model(model, setting)
            images, targets = data["train"]
            started = time.perf_counter()
            network.fit(images, targets, batch_size=setting.batch_size, epochs=1, shuffle=True, verbose=0)
            fit_s = time.perf_counter() - started
            scores = network.evaluate(*data["test"], batch_size=512, verbose=0, return_dict=True)
            if model == "MTL":
                result = {"test_accuracy": scores["item_accuracy"], "test_group_accuracy": scores["group_accuracy"]}
            else:
                result = {"test_accuracy": scores["accuracy"]}
            results[setting.name] = {**result, "fit_s_with_tracing": fit_s, "train_images": len(images)}
        except Exception as exc:
            results[setting.name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        keras.backend.clear_session()
    return results


def tensorflow_state(tf) -> dict:
    """What TensorFlow actually ran with (0 threads means "TensorFlow chooses")."""
    state = {
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "tensor_float_32_execution": tf.config.experimental.tensor_float_32_execution_enabled(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
    }
    try:
        from tensorflow.python.util import _pywrap_util_port

        state["onednn_enabled"] = bool(_pywrap_util_port.IsMklEnabled())
    except Exception as exc:  # a private module: its absence must not fail the benchmark
        state["onednn_enabled"] = f"unknown ({type(exc).__name__})"
    return state
