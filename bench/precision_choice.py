"""Does bfloat16 cost accuracy? CNN-1 and one MTL model at paper length, float32 against mixed_bfloat16.

Each model is trained with `studyflow run` as a user would, over the same seeds in both precisions
(`--set seeds=[0,1,2]`), so each precision gets its replicate summary (mean and 95 % Student's t
interval over seeds, tables/<part>_summary on the part's parent run). The rule for making
`precision="auto"` the default: for every test accuracy, mixed_bfloat16's mean lies inside
float32's interval. Also printed: the mean training time per model in each precision (their ratio
is the speed-up a user sees; on a loaded machine it follows the load, the accuracies do not).

The models: CNN-1 (part 4's reference CNN, 10 epochs on all of MNIST) and the MTL model at lambda
0.5 (part 6, both heads, 10 epochs on all of Fashion-MNIST); lambda 0.5 weighs both tasks' losses
alike, so both heads' accuracies are tested.
--quick: CNN-1 only, 600 images, 1 epoch, seeds [0, 1]: the same path in a minute or two (its verdict means nothing).
Run: .venv/bin/python -m bench.precision_choice [--seeds 0,1,2] [--home DIR] [--quick] [--out DIR]   (about 2 h
on 2 cores: 12 paper-length trainings, each MTL one 15-20 min)
--home DIR keeps its store there: a second run with the same DIR, from the same commit, reuses every
training the first finished (each is a cached step, keyed by its code) and redoes only the rest, so
the benchmark can be stopped and continued, across machine restarts too.
The question is asked for the CPUs where `precision="auto"` picks bfloat16 (AVX512-BF16 or AMX):
elsewhere TensorFlow emulates bfloat16, several times slower than float32, so the benchmark stops
before any training unless --allow-emulated-bfloat16 is given (--quick runs anywhere).
"""

from __future__ import annotations

import argparse

from bench.common import (
    add_benchmark_arguments,
    isolated_home,
    parse_arguments,
    recorded_options,
    run_studyflow,
    write_results,
)
from studyflow.config.base import NATIVE_BFLOAT16_FLAGS, resolve_precision

PRECISIONS = ("float32", "mixed_bfloat16")
# part -> (settings for `studyflow run <part> --profile paper`, the test accuracies compared)
MODELS = {
    "cnn": ({"architectures": {"CNN-1": [32, 64, 128]}}, ["test_accuracy"]),
    "mtl": (
        {"lambdas": [0.5], "include_single_task": False, "log_models": False},
        ["task1_test_accuracy", "task2_test_accuracy"],
    ),
}
QUICK = {"train_size": 600, "test_size": 200, "epochs": 1, "seeds": "0,1", "parts": "cnn"}


def run_part(part: str, settings: dict, precision: str, args: argparse.Namespace) -> dict:
    """Train the part's model over the seeds in `precision`; its replicate summary row."""
    import pandas as pd
    from mlflow import MlflowClient

    from studyflow import tracking
    from studyflow.paths import default_tracking_uri

    overrides = {
        **settings,
        "precision": precision,
        "seeds": [int(seed) for seed in args.seeds.split(",")],
        **{key: getattr(args, key) for key in ("epochs", "train_size", "test_size") if getattr(args, key)},
    }
    run_studyflow(part, overrides)
    client = MlflowClient(default_tracking_uri())
    parent = tracking.latest_parent(client, part)
    if parent.data.params.get("precision") != precision:
        raise RuntimeError(f"the latest {part} run trained in {parent.data.params.get('precision')}, not {precision}")
    summary = pd.read_csv(client.download_artifacts(parent.info.run_id, f"tables/{part}_summary.csv"))
    (row,) = summary.to_dict(orient="records")
    return {"run_id": parent.info.run_id, **row}


def main() -> None:
    parser = add_benchmark_arguments(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated; the same in both precisions")
    parser.add_argument("--epochs", type=int, help="default: the paper profile's (10)")
    parser.add_argument("--train-size", type=int, help="default: all training images")
    parser.add_argument("--test-size", type=int, help="default: all test images")
    parser.add_argument("--parts", default="cnn,mtl", help="comma-separated, of cnn, mtl")
    parser.add_argument(
        "--home",
        metavar="DIR",
        help="the studyflow home to train in and keep (default: a new temporary one); "
        "run again with the same DIR to continue, reusing finished trainings",
    )
    parser.add_argument(
        "--allow-emulated-bfloat16",
        action="store_true",
        help="train mixed_bfloat16 on a CPU without native bfloat16 too (the accuracies still "
        "compare; the times do not say what such a CPU gains)",
    )
    args = parse_arguments(parser, QUICK)
    if not set(args.parts.split(",")) <= set(MODELS):
        parser.error("--parts: choose from cnn, mtl")
    # Checked before any training: in emulation the 2-hour benchmark takes most of a day.
    if resolve_precision("auto") != "mixed_bfloat16" and not (args.quick or args.allow_emulated_bfloat16):
        parser.error(
            f"this CPU has none of {', '.join(NATIVE_BFLOAT16_FLAGS)}: TensorFlow emulates bfloat16 on it, "
            "several times slower than float32, and precision='auto' picks float32 here. Run on a CPU "
            "with native bfloat16, or pass --allow-emulated-bfloat16"
        )
    home = isolated_home("bench-precision-", kept=args.home)
    print(f"studyflow home: {home}", flush=True)
    results: dict = {"models": {}}
    verdicts = []
    for part in args.parts.split(","):
        settings, compared = MODELS[part]
        rows = {precision: run_part(part, settings, precision, args) for precision in PRECISIONS}
        float32, bfloat16 = rows["float32"], rows["mixed_bfloat16"]
        checks = {}
        for metric in compared:
            low, high = float32[f"{metric}_ci95_low"], float32[f"{metric}_ci95_high"]
            inside = bool(low <= bfloat16[f"{metric}_mean"] <= high)
            checks[metric] = {
                "float32_mean": float32[f"{metric}_mean"],
                "float32_ci95": [low, high],
                "bfloat16_mean": bfloat16[f"{metric}_mean"],
                "bfloat16_ci95": [bfloat16[f"{metric}_ci95_low"], bfloat16[f"{metric}_ci95_high"]],
                "bfloat16_inside_float32_interval": inside,
            }
            verdicts.append(inside)
            print(
                f"{float32['model']} {metric}: float32 {float32[f'{metric}_mean']:.4f} [{low:.4f}, {high:.4f}], "
                f"mixed_bfloat16 {bfloat16[f'{metric}_mean']:.4f} "
                f"[{bfloat16[f'{metric}_ci95_low']:.4f}, {bfloat16[f'{metric}_ci95_high']:.4f}]: "
                f"{'inside' if inside else 'OUTSIDE'} float32's interval"
            )
        speedup = float32["train_time_s_mean"] / bfloat16["train_time_s_mean"]
        print(
            f"{float32['model']}: training time per model {float32['train_time_s_mean']:.0f} s (float32), "
            f"{bfloat16['train_time_s_mean']:.0f} s (mixed_bfloat16): x{speedup:.2f}"
        )
        results["models"][part] = {"rows": rows, "checks": checks, "train_time_speedup": speedup}
    results["auto_default_supported"] = all(verdicts)
    print(
        "every bfloat16 mean inside float32's interval: "
        + ("yes" if all(verdicts) else "no")
        + " (the rule for precision='auto' as the default)"
    )
    write_results("precision_choice", {"settings": recorded_options(args), **results}, args)


if __name__ == "__main__":
    main()
