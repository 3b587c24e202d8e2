"""Training throughput of CNN-1 and MLP-1 against the machine's matmul peak, in one run.

FLOPs per training sample are counted analytically from the layer shapes (bench/flops.py);
samples per second come from `model.fit` on MNIST (a short warm-up fit, then timed epochs), in
float32 (the default) and in the opt-in mixed_bfloat16 precision, each against the peak of its
compute type. The peak is the best of 5 matmuls, so the headline fraction uses the best epoch
(like against like); the fraction at the mean epoch is printed beside it (on a shared machine the
epochs' times vary with the load of the moment).
--quick: 512 images, 1 epoch, the peak from 256 x 256 matmuls: the same path in seconds.
Run: .venv/bin/python -m bench.training_efficiency [--train-size 30000] [--epochs 3] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse

from bench.common import add_benchmark_arguments, parse_arguments, write_results
from bench.flops import matmul_peak_gflops, training_flops_per_sample

# The precision's compute type -> the key of its peak in matmul_peak_gflops.
PEAK_OF = {"float32": ("tensorflow", "numpy"), "mixed_bfloat16": ("tensorflow_bfloat16",)}
QUICK = {"train_size": 512, "epochs": 1, "matmul_size": 256}


def throughput(builder_name: str, widths: list[int], images, labels, batch_size: int, epochs: int,
               precision: str) -> dict:
    import keras

    from models.architectures import build_cnn, build_mlp
    from tasks.training import EpochTimer, TrainSettings, compile_model, precision_policy

    builder = build_cnn if builder_name == "cnn" else build_mlp
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    settings = TrainSettings(epochs=epochs, batch_size=batch_size, precision=precision)
    with precision_policy(precision):
        model = compile_model(builder(widths), settings)
    model.fit(images[: batch_size * 20], labels[: batch_size * 20], batch_size=batch_size, epochs=1, verbose=0)
    timer = EpochTimer()  # the product's own per-epoch wall clock
    model.fit(images, labels, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[timer])
    flops = training_flops_per_sample(model)
    mean_samples_per_s = len(labels) * epochs / sum(timer.epoch_times_s)
    best_samples_per_s = len(labels) / min(timer.epoch_times_s)
    return {"training_flops_per_sample": flops, "epoch_times_s": timer.epoch_times_s,
            "samples_per_s": best_samples_per_s, "mean_samples_per_s": mean_samples_per_s,
            "achieved_gflops": flops * best_samples_per_s / 1e9,
            "mean_achieved_gflops": flops * mean_samples_per_s / 1e9, "batch_size": batch_size}


def main() -> None:
    parser = add_benchmark_arguments(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--train-size", type=int, default=30_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--matmul-size", type=int, default=4096, help="the peak's square matrices")
    args = parse_arguments(parser, QUICK)
    from tasks.data import load_dataset

    dataset = load_dataset("mnist")
    images, labels = dataset.train_images[: args.train_size], dataset.train_labels[: args.train_size]
    peak = matmul_peak_gflops(args.matmul_size)
    results = {"matmul_peak_gflops": peak}
    print(f"float32 matmul peak: TensorFlow {peak['tensorflow']:.1f} GFLOP/s, NumPy {peak['numpy']:.1f} GFLOP/s; "
          f"bfloat16 (TensorFlow) {peak['tensorflow_bfloat16']:.1f} GFLOP/s")
    for name, kind, widths in (("CNN-1", "cnn", [32, 64, 128]), ("MLP-1", "mlp", [1000, 1000])):
        results[name] = {}
        for precision, peak_keys in PEAK_OF.items():
            measured = throughput(kind, widths, images, labels, args.batch_size, args.epochs, precision)
            reference = max(peak[key] for key in peak_keys)
            measured["fraction_of_peak"] = measured["achieved_gflops"] / reference
            measured["mean_fraction_of_peak"] = measured["mean_achieved_gflops"] / reference
            results[name][precision] = measured
            line = (f"{name} {precision}: {measured['training_flops_per_sample'] / 1e6:.1f} MFLOP/sample "
                    f"(training), best epoch {measured['samples_per_s']:.0f} samples/s, "
                    f"{measured['achieved_gflops']:.1f} GFLOP/s = {measured['fraction_of_peak']:.2f} of the "
                    f"{precision.removeprefix('mixed_')} peak (mean epoch: {measured['mean_fraction_of_peak']:.2f})")
            if precision != "float32":
                float32 = results[name]["float32"]
                measured["speedup_over_float32"] = measured["mean_samples_per_s"] / float32["mean_samples_per_s"]
                line += f", x{measured['speedup_over_float32']:.2f} float32's samples/s (mean epochs)"
            print(line)
    write_results("training_efficiency", results, args)


if __name__ == "__main__":
    main()
