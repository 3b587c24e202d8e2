"""Training throughput of CNN-1, MLP-1 and part 6's MTL model, each against the machine's matmul
peak and against its own operations alone, in one run.

FLOPs per training sample are counted analytically from the layer shapes (bench/flops.py);
samples per second come from `model.fit` with the product's compile settings (a short warm-up fit,
then timed epochs), in float32 and in mixed_bfloat16 (what the default, auto, picks on CPUs with
native bfloat16), each against the peak of its compute type. The peak is the best of 5 matmuls, so the headline fraction
uses the best epoch (like against like); the fraction at the mean epoch is printed beside it (on
a shared machine the epochs' times vary with the load of the moment).

Each network's own operations (bench/roofline.py) are its forward pass, loss and gradients, and
the same with the optimizer's update (one step per call, and 16 per call as with
steps_per_execution=16), on one fixed batch of the same size in a tight loop with no data
pipeline, metrics or callbacks: a block of each after every epoch, so that the training and its
own operations alternate under the same load. The training's best epoch over the best block with
the update (the operations a training step runs; the faster of the two ways of calling them) is
how much of its own operations' rate the training keeps; a per-layer breakdown (each layer alone,
forward and backward) shows where a step's time goes. Goals: every network's training
at >= 0.9 of its own operations; CNN-1 at >= 0.6 of the float32 peak. Whether each is met is
printed and recorded from this run's figures.

The MTL model is part 6's "MTL lambda 0.5", compiled as part 6 compiles it, on Fashion-MNIST
(every lambda runs the same operations: lambda only weights the two losses). A sample costs it
about 2.5x CNN-1's FLOPs, so it trains on fewer images (--mtl-train-size).
--quick: 512 images (the MTL model 128), 1 epoch, 2-step blocks, one call per timed block of a
layer, the peak from 256 x 256 matmuls: the same path in well under a minute.
Run: .venv/bin/python -m bench.training_efficiency [--train-size 30000] [--mtl-train-size 7680]
     [--epochs 3] [--own-steps 50] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from bench.common import add_benchmark_arguments, parse_arguments, write_results
from bench.flops import matmul_peak_gflops, training_flops_per_sample
from bench.roofline import KINDS, UPDATE_KINDS, BetweenEpochs, OwnOperations, layer_breakdown

# The precision's compute type -> the key of its peak in matmul_peak_gflops.
PEAK_OF = {"float32": ("tensorflow", "numpy"), "mixed_bfloat16": ("tensorflow_bfloat16",)}
QUICK = {"train_size": 512, "mtl_train_size": 128, "epochs": 1, "matmul_size": 256, "own_steps": 2, "layer_calls": 1}
OWN_OPERATIONS_GOAL = 0.9  # of its own operations' rate, every network
PEAK_GOAL = ("CNN-1", "float32", 0.6)  # of the float32 peak
KIND_LABELS = dict(zip(KINDS, ("forward+backward", "with the Adam update", "the same 16 steps per call"), strict=False))


@dataclass(frozen=True)
class Network:
    name: str
    dataset: str
    build: Callable  # () -> keras.Model
    compile_options: Callable[[], dict]  # compile_model's arguments besides the settings, as the product's
    targets: Callable  # the dataset's labels -> the model's targets

    @property
    def loss_weights(self) -> dict[str, float] | None:
        return self.compile_options().get("loss_weights")


def networks() -> list[Network]:
    from models.architectures import build_cnn, build_mlp
    from models.multitask import TASKS, build_multitask
    from studyflow import reference
    from tasks.mtl.compute import CROSS_ENTROPY, Variant, group_lookup, task_metrics

    cnn_filters = reference.named_architectures("cnn")["CNN-1"]
    mlp_widths = reference.named_architectures("mlp")["MLP-1"]
    groups = reference.fashion_groups()
    group_of = group_lookup(groups)
    mtl = Variant(TASKS, 0.5)
    return [
        Network("CNN-1", "mnist", lambda: build_cnn(cnn_filters), dict, lambda labels: labels),
        Network("MLP-1", "mnist", lambda: build_mlp(mlp_widths), dict, lambda labels: labels),
        Network(
            mtl.label,
            "fashion-mnist",
            lambda: build_multitask(TASKS, group_count=len(groups)),
            lambda: {
                "loss": {task: CROSS_ENTROPY for task in TASKS},
                "metrics": task_metrics(TASKS),
                "loss_weights": mtl.loss_weights,
            },
            lambda labels: {"item": labels, "group": group_of[labels]},
        ),
    ]


def throughput(
    network: Network, images, targets, batch_size: int, epochs: int, precision: str, own_steps: int, layer_calls: int
) -> dict:
    import keras

    from tasks.training import EpochTimer, TrainSettings, compile_model, precision_policy

    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    settings = TrainSettings(epochs=epochs, batch_size=batch_size, precision=precision)
    with precision_policy(precision):
        model = compile_model(network.build(), settings, **network.compile_options())
        own_model = compile_model(network.build(), settings, **network.compile_options())  # its own weights and Adam
    warm_up = batch_size * 20
    model.fit(
        images[:warm_up],
        keras.tree.map_structure(lambda labels: labels[:warm_up], targets),
        batch_size=batch_size,
        epochs=1,
        verbose=0,
    )
    own = OwnOperations(own_model, images, targets, batch_size, network.loss_weights)
    timer = EpochTimer()  # the product's own per-epoch wall clock; first, so that it ends before a block starts
    model.fit(
        images,
        targets,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[timer, BetweenEpochs(own, own_steps)],
    )
    flops = training_flops_per_sample(model)
    samples = len(images)
    mean_samples_per_s = samples * epochs / sum(timer.epoch_times_s)
    best_samples_per_s = samples / min(timer.epoch_times_s)
    measured = {
        "training_flops_per_sample": flops,
        "epoch_times_s": timer.epoch_times_s,
        "samples_per_s": best_samples_per_s,
        "mean_samples_per_s": mean_samples_per_s,
        "achieved_gflops": flops * best_samples_per_s / 1e9,
        "mean_achieved_gflops": flops * mean_samples_per_s / 1e9,
        "batch_size": batch_size,
        "train_size": samples,
        "own_operations": own.summary(),
    }
    own = measured["own_operations"]
    # The ceiling: whichever way of calling the whole step's operations (one step or 16 per call) is faster.
    ceiling = max(own[kind]["samples_per_s"] for kind in UPDATE_KINDS)
    measured["fraction_of_own_operations"] = best_samples_per_s / ceiling
    measured["mean_fraction_of_own_operations"] = mean_samples_per_s / max(
        own[kind]["mean_samples_per_s"] for kind in UPDATE_KINDS
    )
    measured["fraction_of_one_step_per_call"] = best_samples_per_s / own["forward_backward_update"]["samples_per_s"]
    measured["fraction_of_forward_backward"] = best_samples_per_s / own["forward_backward"]["samples_per_s"]
    measured["meets_own_operations_goal"] = measured["fraction_of_own_operations"] >= OWN_OPERATIONS_GOAL
    # Time per step is 1/rate: the update's part is what it adds to forward+backward (one step per call, best blocks).
    measured["update_share_of_own_step"] = (
        1 - own["forward_backward_update"]["samples_per_s"] / own["forward_backward"]["samples_per_s"]
    )
    measured["own_operations_achieved_gflops"] = flops * ceiling / 1e9
    measured["layers"] = layer_breakdown(own_model, images, batch_size, layer_calls)
    return measured


def report_own_operations(measured: dict, precision: str) -> None:
    """The lines under a network's headline: its own operations, the goal, its layers."""
    own = measured["own_operations"]
    rates = ", ".join(f"{KIND_LABELS[kind]} {own[kind]['samples_per_s']:,.0f}" for kind in KINDS)
    verdict = "met" if measured["meets_own_operations_goal"] else "NOT met"
    print(
        f"  own operations (1 fixed batch of {measured['batch_size']}, no pipeline, metrics or callbacks), best "
        f"block: {rates} samples/s = {measured['own_operations_fraction_of_peak']:.2f} of the "
        f"{precision.removeprefix('mixed_')} peak (the faster update kind); the update takes "
        f"{measured['update_share_of_own_step']:.0%} of a step"
    )
    print(
        f"  training {measured['samples_per_s']:,.0f} samples/s = {measured['fraction_of_own_operations']:.2f} of "
        f"its own operations (mean epoch and blocks: {measured['mean_fraction_of_own_operations']:.2f}; "
        f"{measured['fraction_of_one_step_per_call']:.2f} of one step per call; "
        f"{measured['fraction_of_forward_backward']:.2f} of forward+backward alone): goal >= "
        f"{OWN_OPERATIONS_GOAL} {verdict}"
    )
    layers = measured["layers"]
    step_ms = 1e3 * measured["batch_size"] / own["forward_backward"]["samples_per_s"]
    total_ms = sum(row["forward_backward_ms"] for row in layers)
    print(
        f"  layers alone, per batch (forward + backward ms, GFLOP/s of the layer's training work); together "
        f"{total_ms:.1f} ms of forward+backward's {step_ms:.1f} ms step:"
    )
    weightless_ms = 0.0
    for row in layers:
        if row["training_flops"]:
            print(
                f"    {row['layer']:<16} {row['forward_ms']:7.2f} + {row['backward_ms']:7.2f} ms "
                f"{row['gflops']:7.1f} GFLOP/s  ({row['forward_backward_ms'] / total_ms:4.0%})"
            )
        else:
            weightless_ms += row["forward_backward_ms"]
    print(f"    {'layers without weights':<24} {weightless_ms:7.2f} ms  ({weightless_ms / total_ms:4.0%})")


def report_goals(results: dict) -> dict:
    """Print every goal against this run's figures; return them with whether each is met."""
    met = {}
    print("Goals, measured in this run (best epoch against best block):")
    for name, by_precision in results.items():
        if name == "matmul_peak_gflops":
            continue
        for precision, measured in by_precision.items():
            fraction = measured["fraction_of_own_operations"]
            met[f"{name}/{precision}/own_operations"] = fraction >= OWN_OPERATIONS_GOAL
            print(
                f"  {name} {precision}: {fraction:.2f} of its own operations (goal >= {OWN_OPERATIONS_GOAL}): "
                f"{'met' if fraction >= OWN_OPERATIONS_GOAL else 'NOT met'}"
            )
    name, precision, goal = PEAK_GOAL
    fraction = results[name][precision]["fraction_of_peak"]
    met[f"{name}/{precision}/fraction_of_peak"] = fraction >= goal
    print(
        f"  {name} {precision}: {fraction:.2f} of the {precision} peak (goal >= {goal}): "
        f"{'met' if fraction >= goal else 'NOT met'}"
    )
    return {"own_operations_fraction": OWN_OPERATIONS_GOAL, f"{name}_{precision}_fraction_of_peak": goal, "met": met}


def main() -> None:
    parser = add_benchmark_arguments(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    parser.add_argument("--train-size", type=int, default=30_000, help="MNIST images of CNN-1 and MLP-1")
    parser.add_argument("--mtl-train-size", type=int, default=7_680, help="Fashion-MNIST images of the MTL model")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--matmul-size", type=int, default=4096, help="the peak's square matrices")
    parser.add_argument(
        "--own-steps",
        type=int,
        default=50,
        help="steps of each own-operations block (one block of each kind after every epoch)",
    )
    parser.add_argument("--layer-calls", type=int, default=10, help="calls per timed block of a layer alone")
    args = parse_arguments(parser, QUICK)
    from tasks.data import load_dataset

    peak = matmul_peak_gflops(args.matmul_size)
    results = {"matmul_peak_gflops": peak}
    print(
        f"float32 matmul peak: TensorFlow {peak['tensorflow']:.1f} GFLOP/s, NumPy {peak['numpy']:.1f} GFLOP/s; "
        f"bfloat16 (TensorFlow) {peak['tensorflow_bfloat16']:.1f} GFLOP/s"
    )
    datasets = {}
    for network in networks():
        dataset = datasets.get(network.dataset) or datasets.setdefault(network.dataset, load_dataset(network.dataset))
        size = args.mtl_train_size if network.dataset == "fashion-mnist" else args.train_size
        images, targets = dataset.train_images[:size], network.targets(dataset.train_labels[:size])
        name = network.name
        results[name] = {}
        for precision, peak_keys in PEAK_OF.items():
            measured = throughput(
                network, images, targets, args.batch_size, args.epochs, precision, args.own_steps, args.layer_calls
            )
            reference = max(peak[key] for key in peak_keys)
            measured["fraction_of_peak"] = measured["achieved_gflops"] / reference
            measured["mean_fraction_of_peak"] = measured["mean_achieved_gflops"] / reference
            measured["own_operations_fraction_of_peak"] = measured["own_operations_achieved_gflops"] / reference
            results[name][precision] = measured
            line = (
                f"{name} {precision}: {measured['training_flops_per_sample'] / 1e6:.1f} MFLOP/sample "
                f"(training), best epoch {measured['samples_per_s']:.0f} samples/s, "
                f"{measured['achieved_gflops']:.1f} GFLOP/s = {measured['fraction_of_peak']:.2f} of the "
                f"{precision.removeprefix('mixed_')} peak (mean epoch: {measured['mean_fraction_of_peak']:.2f})"
            )
            if precision != "float32":
                float32 = results[name]["float32"]
                measured["speedup_over_float32"] = measured["mean_samples_per_s"] / float32["mean_samples_per_s"]
                line += f", x{measured['speedup_over_float32']:.2f} float32's samples/s (mean epochs)"
            print(line)
            report_own_operations(measured, precision)
    results["goals"] = report_goals(results)
    write_results("training_efficiency", results, args)


if __name__ == "__main__":
    main()
