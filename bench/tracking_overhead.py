"""What tracking costs: the same model, data and epochs trained four ways, alternated and repeated.

  bare       model.fit, nothing else
  bare+test  model.fit with the per-epoch test evaluation the product does for its curves
  tracked    studyflow's training task (per-epoch MLflow logging, SQLite store, model logged once
             and checked by reloading)
  served     the same inside a Prefect flow (local mode, as `studyflow run` runs it), logging over
             HTTP to an MLflow server on 127.0.0.1

Prints medians and the ratios tracked/bare+test and served/bare+test (the tracking overhead) and
bare+test/bare (the cost of drawing test curves); the same ratios of the minimums (the runs least
disturbed by other load: on a shared machine one model's time varies from run to run); and a
profile of one more tracked run, the time of each tracking step (where the overhead goes).
--quick: MLP-1 only, 600 images, 1 epoch, 1 repeat: the same path, a smoke test.
Run: .venv/bin/python -m bench.tracking_overhead [--train-size 30000] [--epochs 2] [--repeats 5] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import add_benchmark_arguments, median, parse_arguments, recorded_options, write_results

MODELS = {"CNN-1": ("cnn", [32, 64, 128]), "MLP-1": ("mlp", [1000, 1000])}
QUICK = {"train_size": 600, "test_size": 500, "epochs": 1, "repeats": 1, "models": "MLP-1"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_mlflow_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{folder}/server.db",
            "--artifacts-destination",
            str(folder / "artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            return server, url
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("MLflow server did not start")


def profiled_steps() -> dict[str, object]:
    """The steps of a tracked training, by the function that does each: none calls another, except
    that Keras' fit calls the per-epoch test evaluation and metrics logging (both also listed)."""
    import keras

    from studyflow import tracking
    from tasks import model_store

    return {
        "open and close the run (create_run, tags, set_terminated)": tracking.tracked_run,
        "log params": tracking.RunRecorder.log_params,
        "log metrics (one batch per epoch, and the summary)": tracking.RunRecorder.log_metrics,
        "set tags": tracking.RunRecorder.set_tags,
        "log the model": model_store.log_keras_model,
        "reload it and compare predictions": model_store.verify_round_trip,
        "clear the Keras session": keras.backend.clear_session,
        "test-set evaluation per epoch (also in bare+test)": keras.Model.evaluate,
        "model.fit (includes the two per-epoch steps above)": keras.Model.fit,
    }


def profile_steps(function, *args) -> dict[str, float]:
    """Cumulative seconds in each of profiled_steps() during one call (cProfile's own overhead
    inflates Python-heavy steps, so these are shares, not exact costs)."""
    import cProfile
    import inspect
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(function, *args)
    stats = pstats.Stats(profiler).stats  # (file, first line, function) -> (calls, ..., cumulative, callers)
    steps = {}
    for label, step in profiled_steps().items():
        code = inspect.unwrap(step).__code__  # the function itself, not a decorator's wrapper
        entry = stats.get((code.co_filename, code.co_firstlineno, code.co_name))
        steps[label] = entry[3] if entry else 0.0
    return steps


def main() -> None:
    parser = add_benchmark_arguments(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    parser.add_argument("--train-size", type=int, default=30_000)
    parser.add_argument("--test-size", type=int, help="test images evaluated after each epoch (default: all)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    args = parse_arguments(parser, QUICK)
    if not set(args.models.split(",")) <= set(MODELS):
        parser.error(f"--models: choose from {', '.join(MODELS)}")

    workdir = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    os.environ["STUDYFLOW_HOME"] = str(workdir / "home")
    os.environ["PREFECT_HOME"] = str(workdir / "prefect")
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    import keras
    from prefect import flow

    from models.architectures import build_cnn, build_mlp
    from studyflow import tracking
    from studyflow.local_prefect import EarlyLocalServer
    from tasks.architectures.compute import training_data
    from tasks.architectures.tasks import train_architecture
    from tasks.data import load_dataset, subset
    from tasks.model_store import log_keras_model, verify_round_trip
    from tasks.training import TrainSettings, compile_model

    dataset = subset(load_dataset("mnist"), args.train_size, args.test_size, seed=0)
    data = training_data(dataset, 0.1, seed=0)
    # float32 on every CPU: the bare models are built outside any precision policy, so the tracked ones
    # must not take "auto"'s bfloat16 (the comparison is of the tracking, not the arithmetic).
    settings = TrainSettings(epochs=args.epochs, precision="float32")
    builders = {"cnn": build_cnn, "mlp": build_mlp}

    class TestEvaluation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.evaluate(data.test_inputs, data.test_targets, batch_size=settings.batch_size * 4, verbose=0)

    def bare(kind, widths, with_test):
        keras.utils.set_random_seed(0)
        model = compile_model(builders[kind](widths), settings)
        started = time.perf_counter()
        model.fit(
            data.train_inputs,
            data.train_targets,
            validation_data=(data.val_inputs, data.val_targets),
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            verbose=0,
            callbacks=[TestEvaluation()] if with_test else [],
        )
        return time.perf_counter() - started

    def tracked(kind, widths, name):
        client = tracking.connect()
        with tracking.tracked_run(
            client, "bench", "bench", profile="bench", seed=0, dataset_digest=dataset.digest
        ) as parent:
            started = time.perf_counter()
            train_architecture(parent, kind, name, widths, data, settings)
            return time.perf_counter() - started

    def model_logging(kind, widths):
        """The fixed cost per model: log it once and reload it to check its predictions."""
        model = compile_model(builders[kind](widths), settings)
        model.fit(data.train_inputs[:256], data.train_targets[:256], epochs=1, verbose=0)  # Adam state, as saved
        client = tracking.connect()
        with tracking.tracked_run(
            client, "bench", "bench-logging", profile="bench", seed=0, dataset_digest=dataset.digest
        ) as run:
            started = time.perf_counter()
            model_uri = log_keras_model(run, model, data.test_inputs)
            verify_round_trip(model_uri, model, data.test_inputs[:256])
            return time.perf_counter() - started

    @flow(name="bench-served")
    def served_flow(kind: str, widths: list[int], name: str) -> float:
        return tracked(kind, widths, name)

    local_prefect = EarlyLocalServer()  # Prefect's local server boots while the MLflow server starts
    server, url = start_mlflow_server(workdir)
    try:

        def served(kind, widths, name):
            os.environ["MLFLOW_TRACKING_URI"] = url
            try:
                started = time.perf_counter()
                with local_prefect.ready():  # Prefect's local mode, as the command line runs it
                    served_flow(kind, widths, name)
                return time.perf_counter() - started
            finally:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
                tracking.connect()

        served("mlp", [8], "warm-up")  # Prefect's local server is up and warm before the timings
        results = {}
        for name in args.models.split(","):
            kind, widths = MODELS[name]
            times = {"bare": [], "bare+test": [], "tracked": [], "served": [], "model_logging": []}
            for _ in range(args.repeats):  # alternate, so drift and CPU steal hit every variant alike
                times["bare"].append(bare(kind, widths, with_test=False))
                times["bare+test"].append(bare(kind, widths, with_test=True))
                times["tracked"].append(tracked(kind, widths, name))
                times["served"].append(served(kind, widths, name))
                times["model_logging"].append(model_logging(kind, widths))
            medians = {variant: median(values) for variant, values in times.items()}
            minimums = {variant: min(values) for variant, values in times.items()}
            steps = profile_steps(tracked, kind, widths, name)
            # Where the tracked variant's extra time goes: logging the model once and reloading it to
            # check it (measured alone), and the rest: creating the run, params, dataset inputs and
            # one log_batch per epoch. Nearly all of it is paid once per model, so a
            # paper-length training spreads it thinner; the projection counts all of it as fixed.
            extra = medians["tracked"] - medians["bare+test"]
            full_training_s = medians["bare+test"] / args.epochs * 20 * 54_000 / args.train_size
            results[name] = {
                "seconds": times,
                "medians_s": medians,
                "tracked_over_bare_test": medians["tracked"] / medians["bare+test"],
                "served_over_bare_test": medians["served"] / medians["bare+test"],
                "bare_test_over_bare": medians["bare+test"] / medians["bare"],
                "minimums_s": minimums,
                "min_tracked_over_bare_test": minimums["tracked"] / minimums["bare+test"],
                "min_served_over_bare_test": minimums["served"] / minimums["bare+test"],
                "profile_s": steps,
                "extra_s": extra,
                "model_logging_s": medians["model_logging"],
                "tracked_over_bare_test_at_20_full_epochs": 1 + extra / full_training_s,
                "served_over_bare_test_at_20_full_epochs": 1
                + (medians["served"] - medians["bare+test"]) / full_training_s,
            }
            print(
                f"{name}: medians bare {medians['bare']:.1f} s, bare+test {medians['bare+test']:.1f} s, "
                f"tracked {medians['tracked']:.1f} s, served {medians['served']:.1f} s"
            )
            print(
                f"{name}: tracked/bare+test {results[name]['tracked_over_bare_test']:.3f}, "
                f"served/bare+test {results[name]['served_over_bare_test']:.3f}, "
                f"test curves bare+test/bare {results[name]['bare_test_over_bare']:.3f}"
            )
            print(
                f"{name}: minimums: tracked/bare+test {results[name]['min_tracked_over_bare_test']:.3f}, "
                f"served/bare+test {results[name]['min_served_over_bare_test']:.3f}"
            )
            print(
                f"{name}: profile of one tracked run: "
                + "; ".join(f"{label} {seconds:.3f} s" for label, seconds in steps.items())
            )
            print(
                f"{name}: tracked adds {extra:.2f} s per model, {medians['model_logging']:.2f} s of it logging "
                f"the model and checking it by reloading; at 20 epochs of 54,000 images (projected): "
                f"tracked/bare+test {results[name]['tracked_over_bare_test_at_20_full_epochs']:.3f}, "
                f"served/bare+test {results[name]['served_over_bare_test_at_20_full_epochs']:.3f}"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    results["settings"] = recorded_options(args)
    write_results("tracking_overhead", results, args)


if __name__ == "__main__":
    main()
