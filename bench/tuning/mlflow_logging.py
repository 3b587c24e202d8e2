"""The logging lever: studyflow's per-epoch batched MLflow logging against none, asynchronous and
per-step logging, MLP-1 in a worker process on a temporary SQLite store."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from bench import common
from bench.tuning.measure import build_model
from bench.tuning.plan import STUDY_BATCH_SIZE, Plan, Setting
from bench.tuning.workers import run_worker


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
                self.pending.append(
                    self.recorder.client.log_batch(self.recorder.run_id, metrics=items, synchronous=False)
                )
            else:
                self.recorder.log_metrics(metrics, step=step)  # studyflow's RunRecorder
            self.call_s.append(time.perf_counter() - started)

        def on_epoch_end(self, epoch, logs=None):
            metrics = {
                (key if key.startswith("val_") else f"train_{key}"): float(value)
                for key, value in (logs or {}).items()
                if key != "learning_rate"
            }
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
            self.log(
                {f"step_{key}": float(value) for key, value in (logs or {}).items()},
                self.step,
                asynchronous=self.mode.endswith("async"),
            )

    modes = {
        "none": EpochLogger,
        "per-epoch batch (studyflow)": EpochLogger,
        "per-epoch async": EpochLogger,
        "per-step sync": StepLogger,
        "per-step async": StepLogger,
    }
    keys = {
        "none": "none",
        "per-epoch batch (studyflow)": "epoch-sync",
        "per-epoch async": "epoch-async",
        "per-step sync": "step-sync",
        "per-step async": "step-async",
    }
    network.fit(
        train_images, train_labels, validation_data=val_data, batch_size=STUDY_BATCH_SIZE, epochs=1, verbose=0
    )  # warm-up: traces the train and the validation step outside the timings
    results = {name: {"fit_s": [], "call_ms_median": [], "calls": [], "flush_s": []} for name in modes}
    for repeat in range(plan.logging_repeats):
        for name, logger_class in modes.items():
            with tracking.tracked_run(
                client, "bench-tuning", f"{keys[name]}-{repeat}", profile="bench", seed=0, dataset_digest=dataset.digest
            ) as recorder:
                logger = logger_class(recorder, keys[name])
                started = time.perf_counter()
                network.fit(
                    train_images,
                    train_labels,
                    validation_data=val_data,
                    batch_size=STUDY_BATCH_SIZE,
                    epochs=plan.logging_epochs,
                    verbose=0,
                    callbacks=[logger],
                )
                results[name]["fit_s"].append(time.perf_counter() - started)
                results[name]["calls"].append(len(logger.call_s))
                results[name]["call_ms_median"].append(common.median(logger.call_s) * 1000 if logger.call_s else 0.0)
                results[name]["flush_s"].append(logger.flush_s)
            if name != "none":  # every value must have arrived, asynchronous or not
                logged = len(client.get_metric_history(recorder.run_id, "train_loss"))
                if logged != plan.logging_epochs:
                    raise RuntimeError(f"{name}: {logged} of {plan.logging_epochs} epochs' train_loss arrived")
    return {
        "model": "MLP-1",
        "train_images": len(train_images),
        "epochs": plan.logging_epochs,
        "steps_per_epoch": -(-len(train_images) // STUDY_BATCH_SIZE),
        "modes": results,
    }


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
    print(
        f"\nlogging: MLP-1, {worker['train_images']:,} images x {worker['epochs']} epochs "
        f"({worker['steps_per_epoch']} steps/epoch), SQLite store; fit without logging {bare:.2f} s (median)"
    )
    for name, measured in modes.items():
        fit_s = common.median(measured["fit_s"])
        measured.update({"fit_s_median": fit_s, "fit_over_none": fit_s / bare})
        print(
            f"logging    {name:<30} fit {fit_s:6.2f} s  x{fit_s / bare:.3f} of no logging;  "
            f"{measured['calls'][0]} calls, {common.median(measured['call_ms_median']):.2f} ms per call (median), "
            f"end-of-fit flush {common.median(measured['flush_s']) * 1000:.0f} ms"
        )
