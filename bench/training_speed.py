"""Seconds per epoch of `studyflow run mlp` against bare Keras defaults, on the same data, in one run.

An epoch here is what a user waits for: the training pass, the validation pass and the test-set pass
that draws the test curve. The two variants alternate, `--repeats` times:

  keras      the same architecture compiled with Keras' defaults (Adam at 1e-3, one step per
             execution) and `model.fit(batch_size=128, validation_data=...)`, with a callback that
             evaluates the test set after each epoch at the training batch size
  studyflow  `studyflow run mlp --profile paper --set precision=float32` with only that architecture, as a user runs it
             (its own process, Prefect's local mode, the MLflow store, system metrics on)

An epoch's seconds are the time between the ends of two consecutive epochs (after the test pass):
for studyflow, the timestamps of the per-epoch metrics in MLflow; for keras, the same moment taken
by the callback. The first epoch (tracing the graphs) is left out of both. The figure is the
median epoch of each variant; speed-up = keras' epoch / studyflow's.
--quick: 2,000 images, 2 epochs, 1 repeat: the same path in seconds.
Run: .venv/bin/python -m bench.training_speed [--train-size 60000] [--epochs 4] [--repeats 2] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from itertools import pairwise

from bench.common import (
    add_benchmark_arguments,
    epoch_ends_s,
    isolated_home,
    median,
    parse_arguments,
    recorded_options,
    run_studyflow,
    write_results,
)

MODELS = {"MLP-1": ("mlp", [1000, 1000]), "CNN-1": ("cnn", [32, 64, 128])}
QUICK = {"train_size": 2_000, "test_size": 500, "epochs": 2, "repeats": 1}
VALIDATION_FRACTION = 0.1  # the product's default


def keras_default_epochs(kind: str, widths: list[int], data, epochs: int, batch_size: int) -> list[float]:
    """Seconds of each epoch after the first, training + validation + test, with Keras' defaults."""
    import keras

    from models.architectures import build_cnn, build_mlp

    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    model = (build_cnn if kind == "cnn" else build_mlp)(widths)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ends: list[float] = []

    class TestPassThenClock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.evaluate(data.test_inputs, data.test_targets, batch_size=batch_size, verbose=0)
            ends.append(time.perf_counter())

    model.fit(
        data.train_inputs,
        data.train_targets,
        validation_data=(data.val_inputs, data.val_targets),
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        callbacks=[TestPassThenClock()],
    )
    return [later - earlier for earlier, later in pairwise(ends)]


def studyflow_epochs(name: str, kind: str, widths: list[int], args: argparse.Namespace, repeat: int) -> list[float]:
    """Seconds of each epoch after the first of `studyflow run <kind>`, from its metrics' timestamps."""
    from mlflow import MlflowClient

    from studyflow.paths import default_tracking_uri

    # float32, as bare Keras defaults compute: the figure is studyflow's overhead against Keras', not
    # the bfloat16 that precision="auto" picks on some CPUs.
    run_studyflow(
        kind,
        {
            "architectures": {name: widths},
            "epochs": args.epochs,
            "train_size": args.train_size,
            "test_size": args.test_size,
            "seed": 0,
            "force": True,
            "precision": "float32",
        },
    )
    client = MlflowClient(default_tracking_uri())
    runs = client.search_runs(
        [experiment.experiment_id for experiment in client.search_experiments()],
        filter_string=f"tags.`mlflow.runName` LIKE '{name}%'",
        order_by=["start_time DESC"],
        max_results=1,
    )
    ends = epoch_ends_s(client, runs[0].info.run_id)
    if len(ends) != args.epochs:
        raise RuntimeError(f"{name}, repeat {repeat}: {len(ends)} epochs logged, {args.epochs} expected")
    return [later - earlier for earlier, later in pairwise(ends)]


def main() -> None:
    parser = add_benchmark_arguments(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    parser.add_argument("--train-size", type=int, default=60_000, help="training images drawn (10 %% validate)")
    parser.add_argument("--test-size", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=4, help="per training; the first is left out")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128, help="the study's")
    parser.add_argument("--models", default="MLP-1", help=f"comma-separated, of {', '.join(MODELS)}")
    args = parse_arguments(parser, QUICK)
    if args.epochs < 2:
        parser.error("--epochs: at least 2 (the first is left out)")
    if not set(args.models.split(",")) <= set(MODELS):
        parser.error(f"--models: choose from {', '.join(MODELS)}")
    isolated_home("bench-training-speed-")
    from tasks.architectures.compute import training_data
    from tasks.data import load_dataset, subset
    from tasks.training import STEPS_PER_EXECUTION

    # The data studyflow's run draws with the same sizes and seed (the product's own split).
    data = training_data(
        subset(load_dataset("mnist"), args.train_size, args.test_size, seed=0), VALIDATION_FRACTION, seed=0
    )
    results = {"steps_per_execution": STEPS_PER_EXECUTION}
    for name in args.models.split(","):
        kind, widths = MODELS[name]
        epochs = {"keras": [], "studyflow": []}
        for repeat in range(args.repeats):  # alternated, so load drift hits both alike
            epochs["keras"] += keras_default_epochs(kind, widths, data, args.epochs, args.batch_size)
            epochs["studyflow"] += studyflow_epochs(name, kind, widths, args, repeat)
        medians = {variant: median(seconds) for variant, seconds in epochs.items()}
        speedup = medians["keras"] / medians["studyflow"]
        results[name] = {"epoch_seconds": epochs, "median_epoch_s": medians, "speedup_over_keras_defaults": speedup}
        print(
            f"{name}: seconds per epoch (training, validation and test passes; median of "
            f"{len(epochs['keras'])}): Keras defaults {medians['keras']:.2f}, studyflow run {kind} "
            f"{medians['studyflow']:.2f}; studyflow is x{speedup:.2f} as fast"
        )
    write_results("training_speed", {"settings": recorded_options(args), **results}, args)


if __name__ == "__main__":
    main()
