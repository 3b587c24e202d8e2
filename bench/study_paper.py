"""The paper study's wall time, projected from short runs of every part, per precision.

`studyflow run study --profile paper` takes hours; this measures what it is made of in a fraction of
that, with the product's own commands (`studyflow run <part> --profile paper`, each in its process):

  pca, perceptron, inspect   run whole (their paper runs are minutes); their wall time is taken as is
  mlp, cnn, mtl              run with 2 epochs instead of the paper's 20/10/10, per precision (with
                             --train-size, on that fraction of the training and of the test images); each
                             training's time is split, from its MLflow run and its per-epoch metrics'
                             timestamps, into the first epoch (with start-up: data, model, graph
                             tracing), one steady epoch (training, validation and test passes, logging)
                             and what follows the last epoch (logging the model); the projection is
                             (first - steady) + paper epochs x steady + after, plus the part's own overhead
                             (its process, Prefect, the summary: the part's wall time minus its trainings)

The projected study is the sum over parts (they run one after another). The parts' measured times
follow the load of the moment: the script says whether another process was busy while it ran.
--quick: 600 images, float32 only, and one part of each kind, each as light as it goes: perceptron run
whole (one pair), cnn (one network, then inspect on it, lighter) and mtl (one lambda, its model logged as the
paper's are); pca and mlp take the same paths as perceptron and cnn and are left out. The same code in
about two minutes (the projection means nothing).
Run: .venv/bin/python -m bench.study_paper [--precisions float32,mixed_bfloat16] [--train-size N] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import os

from bench.common import (
    FULL_TEST_IMAGES,
    FULL_TRAIN_IMAGES,
    add_benchmark_arguments,
    epoch_ends_s,
    isolated_home,
    parse_arguments,
    recorded_options,
    run_studyflow,
    write_results,
)

WHOLE_PARTS = ("pca", "perceptron")  # run before the networks; inspect runs after the first cnn
TRAINED_PARTS = ("mlp", "cnn", "mtl")
SHORT_EPOCHS = 2
QUICK = {"train_size": 600, "test_size": 200, "precisions": "float32"}
# --quick runs only these parts, each lightened (the same commands, a fraction of their work): one whole
# part, the cnn part with the inspect part after it, and the mtl part, whose model logging the loop
# handles apart. Each of its studyflow commands is a process that starts Python, TensorFlow and Prefect.
QUICK_PARTS = {
    "perceptron": {"pairs": [[1, 0]], "train_size": 600, "test_size": 200, "max_epochs": 20},
    "cnn": {"architectures": {"CNN-4": [16, 32]}},  # the cheapest of the study's CNNs
    "inspect": {"dream_steps": 3, "octaves": 1},
    "mtl": {"lambdas": [0.5], "include_single_task": False},
}


def training_parts(client, part: str) -> dict[str, dict]:
    """Per training of the part's latest run: first epoch (with start-up), steady epoch, after."""
    from studyflow import tracking
    from studyflow.tracking.names import Tag

    parent = tracking.latest_parent(client, part)
    trainings = {}
    for run in tracking.member_runs(client, part, parent.info.run_id):
        ends = epoch_ends_s(client, run.info.run_id)
        if len(ends) < 2 or not run.info.end_time:
            continue
        name = run.data.tags.get(Tag.ARCHITECTURE) or run.info.run_name
        trainings[name] = {
            "first_s": ends[0] - run.info.start_time / 1000,
            "steady_epoch_s": ends[-1] - ends[-2],
            "after_s": run.info.end_time / 1000 - ends[-1],
        }
    return trainings


def paper_epochs(part: str) -> int:
    from studyflow.config.parts import PART_CONFIGS

    return PART_CONFIGS[part].for_profile("paper").epochs


def busy_elsewhere() -> float:
    """The 1-minute load average beyond this benchmark's own process: above ~0.5, something else ran."""
    return os.getloadavg()[0]


def main() -> None:
    parser = add_benchmark_arguments(
        argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    )
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument(
        "--train-size",
        type=int,
        help="training images of the short runs (default: all; the projection scales epoch times to all of them)",
    )
    parser.add_argument(
        "--test-size",
        type=int,
        help="default: all test images, or with --train-size the same "
        "fraction of the 10,000 as --train-size is of the 60,000",
    )
    args = parse_arguments(parser, QUICK)
    # An epoch includes the test pass, so a subset's epoch scales to the full data only if the test set
    # is cut in the same proportion: a full test set scaled with the training images was counted
    # 60,000/train-size times over (as in the projection of 2026-12-01).
    if args.train_size and not args.quick:
        proportional = round(args.train_size * FULL_TEST_IMAGES / FULL_TRAIN_IMAGES)
        if args.test_size and abs(args.test_size - proportional) > 0.01 * proportional:
            parser.error(
                f"--test-size {args.test_size} is not the fraction of the test images that --train-size "
                f"{args.train_size} is of the training images ({proportional}): the projection scales "
                "whole epochs, test pass included, by one factor"
            )
        args.test_size = args.test_size or proportional
    isolated_home("bench-study-paper-")
    from mlflow import MlflowClient

    from studyflow.paths import default_tracking_uri

    client = MlflowClient(default_tracking_uri())
    sizes = {key: value for key, value in (("train_size", args.train_size), ("test_size", args.test_size)) if value}
    # Epoch times grow with the images (train, validation and test alike): a subset's are scaled to all of them.
    scale = FULL_TRAIN_IMAGES / args.train_size if args.train_size else 1.0
    quick_parts = QUICK_PARTS if args.quick else {}
    chosen = [part for part in (*WHOLE_PARTS, *TRAINED_PARTS) if not args.quick or part in quick_parts]
    whole = {part: run_studyflow(part, quick_parts.get(part, {})) for part in WHOLE_PARTS if part in chosen}
    load = {"after_whole_parts": busy_elsewhere()}
    results = {"whole_parts_s": whole, "precisions": {}}
    for precision in args.precisions.split(","):
        parts = {}
        for part in (part for part in TRAINED_PARTS if part in chosen):
            overrides = {
                "epochs": SHORT_EPOCHS,
                "precision": precision,
                "force": True,
                **sizes,
                **quick_parts.get(part, {}),
            }
            if part == "mtl":
                overrides["log_models"] = True  # as the paper profile does: its cost is in `after`
            wall = run_studyflow(part, overrides)
            trainings = training_parts(client, part)
            epochs = paper_epochs(part)
            # start-up (the first epoch's excess over a steady one) + every epoch at the steady rate + after
            projected = {
                name: (t["first_s"] - t["steady_epoch_s"]) + epochs * t["steady_epoch_s"] * scale + t["after_s"]
                for name, t in trainings.items()
            }
            measured = sum(
                t["first_s"] + (SHORT_EPOCHS - 1) * t["steady_epoch_s"] + t["after_s"] for t in trainings.values()
            )
            overhead = max(wall - measured, 0.0)
            parts[part] = {
                "wall_s": wall,
                "trainings": trainings,
                "paper_epochs": epochs,
                "projected_trainings_s": projected,
                "overhead_s": overhead,
                "projected_s": sum(projected.values()) + overhead,
            }
            if part == "cnn" and "inspect" not in whole:  # part 5 needs the champion CNN just registered
                whole["inspect"] = run_studyflow("inspect", quick_parts.get("inspect", {}))
        load[precision] = busy_elsewhere()
        total = sum(whole.values()) + sum(part["projected_s"] for part in parts.values())
        results["precisions"][precision] = {"parts": parts, "projected_study_s": total}
        print(
            f"{precision}: projected paper study {total / 60:.1f} min = "
            + ", ".join(
                [f"{name} {seconds / 60:.1f}" for name, seconds in whole.items()]
                + [f"{name} {part['projected_s'] / 60:.1f}" for name, part in parts.items()]
            )
            + " (min)"
        )
        for name, part in parts.items():
            print(
                f"  {name}: "
                + "; ".join(
                    f"{model} {t['steady_epoch_s'] * scale:.1f} s/epoch x {part['paper_epochs']}"
                    for model, t in part["trainings"].items()
                )
            )
    results["load_average_1min"] = load
    print(
        "load average (1 min) during the runs: "
        + ", ".join(f"{key} {value:.2f}" for key, value in load.items())
        + " (about 1-2 is this benchmark alone on 2 cores; more: other work shared the machine)"
    )
    write_results("study_paper", {"settings": recorded_options(args), **results}, args)


if __name__ == "__main__":
    main()
