"""What each CPU training setting does to throughput (and, where it can, to accuracy), in one run.

Sections (select with --only):
  threads    tf.config.threading intra_op x inter_op in {1, 2} against TensorFlow's default
  onednn     TF_ENABLE_ONEDNN_OPTS=0 against 1 (the default on x86)
  precision  float32 against Keras' 'mixed_bfloat16' policy, and against oneDNN's bf16 math mode for
             float32 matmuls and convolutions (TF_SET_ONEDNN_FPMATH_MODE=BF16, the CPU's counterpart
             of TF32: `enable_tensor_float_32_execution` only acts on GPUs); speed and accuracy
  pipeline   NumPy arrays to model.fit against tf.data with cache, shuffle, batch, prefetch(AUTOTUNE)
  xla        model.compile(jit_compile=True) against the default (False on a CPU-only machine)
  batch      batch size 64/128/256/512: speed, and test accuracy after one epoch on 10,000 images
  logging    studyflow's per-epoch batched MLflow logging against asynchronous and per-step logging
  startup    imports and CLI start in fresh processes; `studyflow run pca --profile quick`: when
             Prefect logs the flow's start and the first task's first line, and the total
Models: CNN-1 and MLP-1 (MNIST) and the multi-task model (MTL, lambda 0.5, Fashion-MNIST).

Throughput is samples/s over steady-state training steps: each model and setting is warmed up
first, then each repeat is one `model.fit` call timed from its third step over a fixed number of
steps (the same number of samples at every batch size); the median of the repeats is reported.
Settings read when TensorFlow starts (threads, oneDNN, math mode) run in their own process and are
compared with the default measured in processes of its own, at the start and at the end (their
ratio, `drift`, says how steady the machine was). In-process settings are measured alternately
with an in-process default. Every ratio is against the default of the same model.

A precision setting that leaves every test accuracy exactly equal to float32's did not change the
arithmetic: its speed ratio is then noise. That is what TF_SET_ONEDNN_FPMATH_MODE=BF16 did in the
smoke test on the development machine (AMD EPYC, avx512_bf16, no AMX; oneDNN 3.7); ONEDNN_VERBOSE=1
on a conv2d and a matmul showed why: the convolution carries `attr-fpmath:bf16` but still runs the
f32 kernel, and the matmul goes through oneDNN's sgemm, which ignores the mode. `mixed_bfloat16`
does compute in bf16 (its variables stay float32).

Run: .venv/bin/python -m bench.tuning [--quick] [--only threads,batch,...] [--out-dir DIR]
     --quick: tiny step counts, a smoke test of every path; its JSON goes to a temporary folder.
The full run takes about 17 minutes on 2 idle cores (estimated from the step times in
bench/results/; MTL, at about 110 ms per step, gets the fewest steps).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import studyflow  # noqa: F401  (sets the libraries' environment defaults, inherited by every child process)
from bench import common

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("threads", "onednn", "precision", "pipeline", "xla", "batch", "logging", "startup")
TRAINING_SECTIONS = set(SECTIONS[:6])
MODEL_NAMES = ("CNN-1", "MLP-1", "MTL")
STUDY_BATCH_SIZE = 128  # tasks.training.DEFAULT_BATCH_SIZE; every other batch size is compared with it
MTL_LOSS_WEIGHTS = {"item": 0.5, "group": 0.5}
# Variables a "default" process must not inherit, or it would not be the default.
TUNING_VARIABLES = ("TF_ENABLE_ONEDNN_OPTS", "TF_SET_ONEDNN_FPMATH_MODE", "MLFLOW_ENABLE_ASYNC_LOGGING")


@dataclass(frozen=True)
class Plan:
    """How much work each measurement does; `--quick` shrinks it to a smoke test."""

    train_size: int = 10_000  # images the throughput runs cycle through
    warmup_steps: dict = field(default_factory=lambda: {"CNN-1": 10, "MLP-1": 20, "MTL": 4})
    timed_steps: dict = field(default_factory=lambda: {"CNN-1": 40, "MLP-1": 100, "MTL": 12})
    skipped_steps: int = 2  # at the start of every timed fit call: iterator set-up, prefetch fill
    repeats: int = 5
    accuracy_train_size: int = 10_000  # one epoch on these, then the whole test set
    accuracy_test_size: int | None = None
    logging_train_size: int = 20_000
    logging_epochs: int = 3
    logging_repeats: int = 3
    startup_repeats: int = 3

    def steps(self, model: str, batch_size: int) -> tuple[int, int]:
        """Warm-up and timed steps at this batch size: the same samples as at the study's batch size."""
        scale = STUDY_BATCH_SIZE / batch_size
        return (max(2, round(self.warmup_steps[model] * scale)), max(1, round(self.timed_steps[model] * scale)))


QUICK = Plan(train_size=2_048, warmup_steps={"CNN-1": 2, "MLP-1": 2, "MTL": 1},
             timed_steps={"CNN-1": 3, "MLP-1": 3, "MTL": 2}, skipped_steps=1, repeats=2,
             accuracy_train_size=512, accuracy_test_size=500, logging_train_size=2_048, logging_epochs=2,
             logging_repeats=1, startup_repeats=1)


@dataclass(frozen=True)
class Setting:
    """A setting applied inside one process (the model, its compilation or its input)."""

    name: str
    section: str
    pipeline: str = "numpy"  # or "tf.data"
    batch_size: int = STUDY_BATCH_SIZE
    jit_compile: bool = False
    policy: str = "float32"
    accuracy: bool = False  # also train one epoch and report test accuracy


IN_PROCESS = [
    Setting("default", "reference", accuracy=True),
    Setting("tf.data cache+shuffle+prefetch", "pipeline", pipeline="tf.data"),
    Setting("jit_compile=True (XLA)", "xla", jit_compile=True),
    Setting("mixed_bfloat16", "precision", policy="mixed_bfloat16", accuracy=True),
    *(Setting(f"batch {size}", "batch", batch_size=size, accuracy=True) for size in (64, 256, 512)),
]


@dataclass(frozen=True)
class ProcessSetting:
    """A setting TensorFlow reads once at start-up: it gets a process of its own."""

    name: str
    section: str
    env: dict = field(default_factory=dict)
    threads: tuple[int, int] | None = None  # intra_op, inter_op
    accuracy: bool = False


PROCESS_SETTINGS = [
    *(ProcessSetting(f"intra_op {intra} / inter_op {inter}", "threads", threads=(intra, inter))
      for intra in (1, 2) for inter in (1, 2)),
    ProcessSetting("TF_ENABLE_ONEDNN_OPTS=0", "onednn", env={"TF_ENABLE_ONEDNN_OPTS": "0"}),
    ProcessSetting("oneDNN bf16 math mode (TF_SET_ONEDNN_FPMATH_MODE=BF16)", "precision",
                   env={"TF_SET_ONEDNN_FPMATH_MODE": "BF16"}, accuracy=True),
]


# ---------------------------------------------------------------- inside a worker process

def load_model_data(model: str, train_size: int | None, test_size: int | None) -> dict:
    import numpy as np

    from tasks.data import load_dataset, subset
    from tasks.mtl.compute import DEFAULT_GROUPS, group_lookup

    dataset = subset(load_dataset("fashion-mnist" if model == "MTL" else "mnist"), train_size, test_size, seed=0)
    if model != "MTL":
        return {"train": (dataset.train_images, dataset.train_labels),
                "test": (dataset.test_images, dataset.test_labels)}
    lookup = group_lookup(DEFAULT_GROUPS)

    def targets(labels: np.ndarray) -> dict:
        return {"item": labels, "group": lookup[labels]}

    return {"train": (dataset.train_images, targets(dataset.train_labels)),
            "test": (dataset.test_images, targets(dataset.test_labels))}


def build_model(model: str, setting: Setting):
    """The study's model, compiled as the product compiles it, under the setting's dtype policy."""
    import keras

    from models.architectures import CNN_ARCHITECTURES, MLP_ARCHITECTURES, build_cnn, build_mlp
    from models.multitask import TASKS, build_multitask
    from tasks.mtl.compute import CROSS_ENTROPY, DEFAULT_GROUPS, task_metrics
    from tasks.training import TrainSettings, compile_model

    keras.utils.set_random_seed(0)
    settings = TrainSettings(epochs=1, batch_size=setting.batch_size)
    keras.mixed_precision.set_global_policy(setting.policy)  # read by each layer when it is built
    try:
        if model == "CNN-1":
            network = compile_model(build_cnn(CNN_ARCHITECTURES["CNN-1"]), settings)
        elif model == "MLP-1":
            network = compile_model(build_mlp(MLP_ARCHITECTURES["MLP-1"]), settings)
        else:
            network = compile_model(build_multitask(TASKS, group_count=len(DEFAULT_GROUPS)), settings,
                                    loss={task: CROSS_ENTROPY for task in TASKS}, metrics=task_metrics(TASKS),
                                    loss_weights=MTL_LOSS_WEIGHTS)
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
        network.fit(images, targets, batch_size=setting.batch_size, epochs=100_000, shuffle=True, verbose=0,
                    callbacks=[timer])
    return steps * setting.batch_size / timer.elapsed_s


def cached_dataset(data: dict, batch_size: int):
    import tensorflow as tf

    images, targets = data["train"]
    dataset = (tf.data.Dataset.from_tensor_slices((images, targets)).cache()
               .shuffle(len(images), seed=0).batch(batch_size).prefetch(tf.data.AUTOTUNE))
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
            results[setting.name] = {"samples_per_s_repeats": [], "batch_size": setting.batch_size,
                                     "jit_compile": bool(network.jit_compile)}
        except Exception as exc:  # one setting that does not run must not lose the others
            results[setting.name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    for _ in range(plan.repeats):  # in turns, so drift and CPU steal hit every setting alike
        for name, (network, setting_data, setting) in networks.items():
            _, steps = plan.steps(model, setting.batch_size)
            results[name]["samples_per_s_repeats"].append(
                fit_steps(network, setting_data, setting, plan.skipped_steps, steps))
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


def run_training_worker(spec: dict) -> dict:
    threads = spec.get("threads")
    import tensorflow as tf  # first, so that the thread counts are set before TensorFlow does any work

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads[0])
        tf.config.threading.set_inter_op_parallelism_threads(threads[1])
    plan = Plan(**spec["plan"])
    by_name = {setting.name: setting for setting in IN_PROCESS}
    throughput_settings = [by_name[name] for name in spec["throughput"]]
    accuracy_settings = [by_name[name] for name in spec["accuracy"]]
    result = {"models": {}}
    for model in spec["models"]:
        result["models"][model] = {"throughput": measure_throughput(model, throughput_settings, plan)}
        if accuracy_settings:
            result["models"][model]["accuracy"] = measure_accuracy(model, accuracy_settings, plan)
    result["tensorflow"] = tensorflow_state(tf)
    return result


def tensorflow_state(tf) -> dict:
    """What TensorFlow actually ran with (0 threads means "TensorFlow chooses")."""
    state = {"intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
             "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
             "tensor_float_32_execution": tf.config.experimental.tensor_float_32_execution_enabled(),
             "gpus": len(tf.config.list_physical_devices("GPU"))}
    try:
        from tensorflow.python.util import _pywrap_util_port

        state["onednn_enabled"] = bool(_pywrap_util_port.IsMklEnabled())
    except Exception as exc:  # a private module: its absence must not fail the benchmark
        state["onednn_enabled"] = f"unknown ({type(exc).__name__})"
    return state


def run_logging_worker(spec: dict) -> dict:
    """MLP-1 trained with each way of logging, in turns, each in its own run of a temporary SQLite store."""
    import keras
    from mlflow.entities import Metric

    from studyflow import tracking
    from tasks.data import load_dataset, subset

    plan = Plan(**spec["plan"])
    dataset = subset(load_dataset("mnist"), plan.logging_train_size, None, seed=0)
    validation = len(dataset.train_images) // 10
    train_images, train_labels = dataset.train_images[validation:], dataset.train_labels[validation:]
    val_data = (dataset.train_images[:validation], dataset.train_labels[:validation])
    client = tracking.connect()
    network = build_model("MLP-1", Setting("default", "logging"))  # one model: its step is traced once

    class EpochLogger(keras.callbacks.Callback):
        """Logs each epoch's metrics in one call, as studyflow does (or not at all, or asynchronously)."""

        def __init__(self, recorder, mode: str):
            super().__init__()
            self.recorder, self.mode = recorder, mode
            self.call_s, self.pending, self.flush_s, self.step = [], [], 0.0, 0

        def log(self, metrics: dict, step: int, asynchronous: bool):
            started = time.perf_counter()
            if asynchronous:
                now = int(time.time() * 1000)
                items = [Metric(key, float(value), now, step) for key, value in metrics.items()]
                self.pending.append(self.recorder.client.log_batch(self.recorder.run_id, metrics=items,
                                                                   synchronous=False))
            else:
                self.recorder.log_metrics(metrics, step=step)  # studyflow's RunRecorder
            self.call_s.append(time.perf_counter() - started)

        def on_epoch_end(self, epoch, logs=None):
            metrics = {(key if key.startswith("val_") else f"train_{key}"): float(value)
                       for key, value in (logs or {}).items() if key != "learning_rate"}
            if self.mode != "none":
                self.log(metrics, epoch + 1, asynchronous=self.mode.endswith("async"))

        def on_train_end(self, logs=None):
            started = time.perf_counter()
            for operation in self.pending:  # inside the timed fit: the run is complete when fit returns
                operation.wait()
            self.flush_s = time.perf_counter() - started

    class StepLogger(EpochLogger):
        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            self.log({f"step_{key}": float(value) for key, value in (logs or {}).items()}, self.step,
                     asynchronous=self.mode.endswith("async"))

    modes = {"none": EpochLogger, "per-epoch batch (studyflow)": EpochLogger, "per-epoch async": EpochLogger,
             "per-step sync": StepLogger, "per-step async": StepLogger}
    keys = {"none": "none", "per-epoch batch (studyflow)": "epoch-sync", "per-epoch async": "epoch-async",
            "per-step sync": "step-sync", "per-step async": "step-async"}
    network.fit(train_images, train_labels, validation_data=val_data, batch_size=STUDY_BATCH_SIZE, epochs=1,
                verbose=0)  # warm-up: traces the train and the validation step outside the timings
    results = {name: {"fit_s": [], "call_ms_median": [], "calls": [], "flush_s": []} for name in modes}
    for repeat in range(plan.logging_repeats):
        for name, logger_class in modes.items():
            with tracking.tracked_run(client, "bench-tuning", f"{keys[name]}-{repeat}", profile="bench", seed=0,
                                      dataset_digest=dataset.digest) as recorder:
                logger = logger_class(recorder, keys[name])
                started = time.perf_counter()
                network.fit(train_images, train_labels, validation_data=val_data, batch_size=STUDY_BATCH_SIZE,
                            epochs=plan.logging_epochs, verbose=0, callbacks=[logger])
                results[name]["fit_s"].append(time.perf_counter() - started)
                results[name]["calls"].append(len(logger.call_s))
                results[name]["call_ms_median"].append(common.median(logger.call_s) * 1000 if logger.call_s else 0.0)
                results[name]["flush_s"].append(logger.flush_s)
            if name != "none":  # every value must have arrived, asynchronous or not
                logged = len(client.get_metric_history(recorder.run_id, "train_loss"))
                if logged != plan.logging_epochs:
                    raise RuntimeError(f"{name}: {logged} of {plan.logging_epochs} epochs' train_loss arrived")
    return {"model": "MLP-1", "train_images": len(train_images), "epochs": plan.logging_epochs,
            "steps_per_epoch": -(-len(train_images) // STUDY_BATCH_SIZE), "modes": results}


def worker_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    started = time.perf_counter()
    result = run_logging_worker(spec) if spec["kind"] == "logging" else run_training_worker(spec)
    result["wall_s"] = time.perf_counter() - started
    Path(spec["out"]).write_text(json.dumps(result, default=float))


# ---------------------------------------------------------------- the orchestrating process

def base_env() -> dict:
    env = {key: value for key, value in os.environ.items() if key not in TUNING_VARIABLES}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_worker(name: str, spec: dict, env_extra: dict, workdir: Path) -> dict:
    """Run one worker process; its result, or the error with the tail of its output."""
    tag = "".join(char if char.isalnum() else "-" for char in name)
    spec_path, out_path = workdir / f"{tag}.spec.json", workdir / f"{tag}.out.json"
    spec_path.write_text(json.dumps({**spec, "out": str(out_path)}))
    print(f"... {name}", flush=True)
    started = time.perf_counter()
    env = {key: value for key, value in {**base_env(), **env_extra}.items() if value is not None}  # None: unset
    completed = subprocess.run([sys.executable, "-m", "bench.tuning", "--worker", str(spec_path)], cwd=ROOT,
                               env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0 or not out_path.exists():
        tail = (completed.stdout + completed.stderr)[-3000:]
        print(f"    FAILED (exit {completed.returncode}) after {elapsed:.0f} s:\n{tail}", flush=True)
        return {"error": f"exit {completed.returncode}: {tail}", "process_s": elapsed}
    print(f"    done in {elapsed:.0f} s", flush=True)
    return {**json.loads(out_path.read_text()), "process_s": elapsed, "env": env_extra}


def training_spec(plan: Plan, throughput: list[Setting], accuracy: list[Setting] = ()) -> dict:
    return {"kind": "training", "plan": dataclasses.asdict(plan), "models": list(MODEL_NAMES),
            "throughput": [setting.name for setting in throughput],
            "accuracy": [setting.name for setting in accuracy]}


def ratio_row(section: str, name: str, model: str, measured: dict, reference: float, extra: str = "") -> dict:
    if "error" in measured:
        print(f"{section:<10} {name:<56} {model:<6} ERROR {measured['error'][:200]}")
        return {"section": section, "setting": name, "model": model, "error": measured["error"]}
    ratio = measured["samples_per_s"] / reference
    print(f"{section:<10} {name:<56} {model:<6} {measured['samples_per_s']:>8,.0f} samples/s  x{ratio:.2f}{extra}")
    return {"section": section, "setting": name, "model": model, "samples_per_s": measured["samples_per_s"],
            "samples_per_s_repeats": measured["samples_per_s_repeats"], "ratio_to_default": ratio,
            "batch_size": measured.get("batch_size", STUDY_BATCH_SIZE)}


def accuracy_note(accuracy: dict | None, name: str, reference_name: str = "default",
                  precision: bool = False) -> tuple[str, dict]:
    if any("error" in (accuracy or {}).get(key, {"error": "missing"}) for key in (name, reference_name)):
        return "", {}
    measured, reference = accuracy[name], accuracy[reference_name]
    difference = measured["test_accuracy"] - reference["test_accuracy"]
    fields = {"test_accuracy": measured["test_accuracy"], "default_test_accuracy": reference["test_accuracy"],
              "test_accuracy_difference": difference, "accuracy_fit_s": measured["fit_s_with_tracing"]}
    if "test_group_accuracy" in measured:
        fields["test_group_accuracy"] = measured["test_group_accuracy"]
    identical = precision and difference == 0.0  # a changed arithmetic would move some prediction
    if precision:
        fields["identical_to_default"] = identical
    return (f"  test acc {measured['test_accuracy']:.4f} ({difference:+.4f} vs batch 128 float32"
            f"{'; identical: arithmetic unchanged' if identical else ''})"), fields


def pick(worker: dict, model: str, kind: str, name: str = "default") -> dict:
    """One measurement from a worker's result, or an error saying why there is none."""
    found = worker.get("models", {}).get(model, {}).get(kind, {}).get(name)
    return found if found is not None else {"error": worker.get("error", f"no {kind} result for {name}")[:3000]}


def run_training_workers(process_settings: list[ProcessSetting], in_process: list[Setting], plan: Plan,
                         workdir: Path) -> dict:
    default = IN_PROCESS[:1]
    workers = {}
    if process_settings:  # the default in a process of its own, before and after the settings that need one
        workers["default (start)"] = run_worker("default (start)", training_spec(plan, default), {}, workdir)
        for setting in process_settings:
            spec = {**training_spec(plan, default, default if setting.accuracy else []), "threads": setting.threads}
            workers[setting.name] = run_worker(setting.name, spec, setting.env, workdir)
    if in_process:
        accuracy = default + [setting for setting in in_process if setting.accuracy]
        workers["in-process"] = run_worker("in-process settings", training_spec(plan, default + in_process, accuracy),
                                           {}, workdir)
    if process_settings:
        workers["default (end)"] = run_worker("default (end)", training_spec(plan, default), {}, workdir)
    return workers


def process_rows(model: str, workers: dict, process_settings: list[ProcessSetting], results: dict) -> list[dict]:
    ends = [pick(workers[key], model, "throughput") for key in ("default (start)", "default (end)")]
    pooled = [value for end in ends for value in end.get("samples_per_s_repeats", [])]
    if not pooled:
        print(f"{model}: the default process failed, so the process settings have no reference")
        return []
    start, end = (found.get("samples_per_s", float("nan")) for found in ends)
    reference = common.median(pooled)
    results.setdefault("process_reference", {})[model] = {"samples_per_s": reference, "start": start, "end": end,
                                                         "drift": end / start}
    print(f"{'reference':<10} {'default process (start and end pooled)':<56} {model:<6} "
          f"{reference:>8,.0f} samples/s  drift end/start x{end / start:.2f}")
    rows = []
    for setting in process_settings:
        worker = workers[setting.name]
        note, fields = "", {}
        if setting.accuracy:  # against the default's accuracy, measured in the in-process worker
            accuracy = {"default": pick(workers.get("in-process", {}), model, "accuracy"),
                        setting.name: pick(worker, model, "accuracy")}
            note, fields = accuracy_note(accuracy, setting.name, precision=setting.section == "precision")
        row = ratio_row(setting.section, setting.name, model, pick(worker, model, "throughput"), reference, note)
        rows.append({**row, **fields, "tensorflow": worker.get("tensorflow"), "env": setting.env,
                     "threads": setting.threads})
    return rows


def in_process_rows(model: str, worker: dict, in_process: list[Setting]) -> list[dict]:
    default = pick(worker, model, "throughput")
    if "error" in default:
        print(f"{model}: the in-process default failed: {default['error'][:300]}")
        return []
    accuracy = worker["models"][model].get("accuracy")
    note, fields = accuracy_note(accuracy, "default")
    rows = [{**ratio_row("reference", "default (in-process, alternated)", model, default, default["samples_per_s"],
                         note), **fields}]
    for setting in in_process:
        note, fields = ("", {}) if not setting.accuracy else accuracy_note(
            accuracy, setting.name, precision=setting.section == "precision")
        measured = pick(worker, model, "throughput", setting.name)
        rows.append({**ratio_row(setting.section, setting.name, model, measured, default["samples_per_s"], note),
                     **fields, "jit_compile": measured.get("jit_compile")})
    return rows


def training_sections(selected: set[str], plan: Plan, workdir: Path, results: dict) -> None:
    process_settings = [setting for setting in PROCESS_SETTINGS if setting.section in selected]
    in_process = [setting for setting in IN_PROCESS[1:] if setting.section in selected]
    workers = results["workers"] = run_training_workers(process_settings, in_process, plan, workdir)
    print("\nsection    setting                                                  model  throughput        ratio")
    rows = results["rows"] = []
    for model in MODEL_NAMES:
        if process_settings:
            rows += process_rows(model, workers, process_settings, results)
        if in_process:
            rows += in_process_rows(model, workers["in-process"], in_process)


def logging_section(plan: Plan, workdir: Path, results: dict) -> None:
    home = workdir / "logging-home"
    env = {"STUDYFLOW_HOME": str(home), "MLFLOW_TRACKING_URI": None}  # the embedded store, in a temp folder
    spec = {"kind": "logging", "plan": dataclasses.asdict(plan)}
    worker = run_worker("logging", spec, env, workdir)
    results["logging"] = worker
    if "error" in worker:
        return
    modes = worker["modes"]
    bare = common.median(modes["none"]["fit_s"])
    print(f"\nlogging: MLP-1, {worker['train_images']:,} images x {worker['epochs']} epochs "
          f"({worker['steps_per_epoch']} steps/epoch), SQLite store; fit without logging {bare:.2f} s (median)")
    for name, measured in modes.items():
        fit_s = common.median(measured["fit_s"])
        measured.update({"fit_s_median": fit_s, "fit_over_none": fit_s / bare})
        print(f"logging    {name:<30} fit {fit_s:6.2f} s  x{fit_s / bare:.3f} of no logging;  "
              f"{measured['calls'][0]} calls, {common.median(measured['call_ms_median']):.2f} ms per call (median), "
              f"end-of-fit flush {common.median(measured['flush_s']) * 1000:.0f} ms")


def timed_command(arguments: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    completed = subprocess.run(arguments, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments[1:])} exited {completed.returncode}: {completed.stderr[-1500:]}")
    return elapsed, completed.stdout


def startup_section(plan: Plan, workdir: Path, results: dict, with_study_run: bool) -> None:
    env = base_env()
    imports = {"python (no import)": "pass", "tensorflow": "import tensorflow", "keras": "import keras",
               "mlflow": "import mlflow", "mlflow.keras": "import mlflow.keras", "prefect": "import prefect",
               "optuna": "import optuna"}
    startup = {}
    print()
    for name, statement in imports.items():
        code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
        walls, import_times = [], []
        for _ in range(plan.startup_repeats):
            wall, output = timed_command([sys.executable, "-c", code], env)
            walls.append(wall)
            import_times.append(float(output.strip().splitlines()[-1]))
        startup[name] = {"import_s": common.median(import_times), "process_s": common.median(walls),
                         "process_s_repeats": walls}
        print(f"startup    import {name:<30} {common.median(import_times):6.2f} s  "
              f"(whole process {common.median(walls):.2f} s)")
    walls = [timed_command([sys.executable, "-m", "studyflow.cli", "run", "pca", "--help"], env)[0]
             for _ in range(plan.startup_repeats)]
    startup["studyflow run pca --help"] = {"process_s": common.median(walls), "process_s_repeats": walls}
    print(f"startup    {'studyflow run pca --help':<37} {common.median(walls):6.2f} s  (whole process)")
    if with_study_run:
        startup["studyflow run pca --profile quick"] = pca_quick_run(workdir)
    results["startup"] = startup


def pca_quick_run(workdir: Path) -> dict:
    """A real part on an empty store, with Prefect's local mode: when its flow and first task appear."""
    home = workdir / "pca-home"
    env = {**base_env(), "STUDYFLOW_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    for name in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL"):
        env.pop(name, None)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "studyflow.cli", "run", "pca", "--profile", "quick"], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    marks, tail = {}, []
    for line in process.stdout:
        now = time.perf_counter() - started
        if "Beginning flow run" in line:
            marks.setdefault("flow_started_s", now)
        if "Task run '" in line:  # the first task's first log line: at the latest its end
            marks.setdefault("first_task_logged_s", now)
        tail = (tail + [line.rstrip()])[-20:]
    returncode = process.wait()
    total = time.perf_counter() - started
    if returncode != 0:
        raise RuntimeError(f"studyflow run pca --profile quick exited {returncode}:\n" + "\n".join(tail))
    result = {"total_s": total, **marks}
    shown = ", ".join(f"{key.removesuffix('_s').replace('_', ' ')} at {value:.1f} s" for key, value in marks.items())
    print(f"startup    {'studyflow run pca --profile quick':<37} {total:6.2f} s total "
          f"({shown or 'no Prefect log lines seen'})")
    return result


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(flag for flag in line.split(":", 1)[1].split()
                              if flag.startswith(("avx512", "amx")) or flag in ("avx2", "fma"))
    except OSError:
        pass
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny step counts: a smoke test, not a measurement")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections (default: all)")
    parser.add_argument("--no-study-run", action="store_true",
                        help="startup: skip `studyflow run pca --profile quick`")
    parser.add_argument("--out-dir", help="where tuning.json goes (default: bench/results/; --quick: a temp folder)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker)
        return
    selected = {section.strip() for section in args.only.split(",") if section.strip()}
    unknown = selected - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    plan = QUICK if args.quick else Plan()
    workdir = Path(tempfile.mkdtemp(prefix="bench-tuning-"))
    if args.quick:
        print("--quick: a smoke test with tiny step counts; its figures are not measurements")
    started = time.perf_counter()
    results = {"quick": args.quick, "sections": sorted(selected), "plan": dataclasses.asdict(plan),
               "cpu_flags": cpu_flags()}
    parts = []
    if selected & TRAINING_SECTIONS:
        parts.append(("training", lambda: training_sections(selected, plan, workdir, results)))
    if "logging" in selected:
        parts.append(("logging", lambda: logging_section(plan, workdir, results)))
    if "startup" in selected:
        parts.append(("startup", lambda: startup_section(plan, workdir, results, not args.no_study_run)))
    for name, part in parts:
        try:
            part()
        except Exception as exc:  # write what was measured even if one part breaks
            print(f"{name}: FAILED {type(exc).__name__}: {exc}")
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    errors = [row for row in results.get("rows", []) if "error" in row]
    errors += [name for name, worker in results.get("workers", {}).items() if "error" in worker]
    errors += [name for name in ("training", "logging", "startup") if "error" in results.get(name, {})]
    results["wall_s"] = time.perf_counter() - started
    print(f"\ntuning: {results['wall_s'] / 60:.1f} min wall, {len(errors)} error(s); work files in {workdir}")
    if args.quick or args.out_dir:
        # write_results writes into common.RESULTS_DIR: point it elsewhere so that a smoke test (or a
        # run meant for comparison) never overwrites the committed figures in bench/results/.
        common.RESULTS_DIR = Path(args.out_dir) if args.out_dir else workdir
    common.write_results("tuning", results)
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
