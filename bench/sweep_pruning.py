"""Pruning's worth: the same CNN sweep budget with and without the median pruner, same seed.

Prints the ratio of epochs trained (pruned / unpruned), the difference of the best validation
accuracy (pruned - unpruned), and the ratio of training seconds: pruning stops the weak trials,
which are often the small, cheap ones, so it saves less time than epochs. Both sweeps draw the same
architectures for their first 10 trials (TPE starts with 10 seeded random draws), so the comparison
isolates the pruner. The pruned sweep runs first and so also pays the process's warm-up. On a
shared machine the measured training seconds follow the load of the moment, so the time ratio is
also estimated at equal load: each trial of the pruned sweep that has its twin (same parameters) in
the unpruned one is costed at the twin's seconds per epoch.
--quick: 1 trial of 1 epoch on 600 images per sweep (nothing is pruned): the same path in seconds.
Run: .venv/bin/python -m bench.sweep_pruning [--trials 12] [--epochs 4] [--train-size 6000] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse

from bench.common import add_benchmark_arguments, isolated_home, parse_arguments, recorded_options, timed, write_results

QUICK = {"trials": 1, "epochs": 1, "train_size": 600, "test_size": 200}


def main() -> None:
    parser = add_benchmark_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parse_arguments(parser, QUICK)
    isolated_home("bench-sweep-")  # a store of its own
    from studyflow.config.sweeps import sweep_config
    from tasks.sweeps.run import run_sweep

    pruners = {"median": {"kind": "median", "startup_trials": 3, "warmup_epochs": 1}, "none": {"kind": "none"}}
    results, configs = {}, {}
    for name, pruner in pruners.items():
        config = sweep_config("cnn", "quick", trials=args.trials, epochs=args.epochs, train_size=args.train_size,
                              test_size=args.test_size, seed=args.seed, pruner=pruner, study_name=f"bench-{name}")
        configs[name] = config
        wall_s, summary = timed(run_sweep, config)
        results[name] = {"wall_s": wall_s, "epochs_trained": summary["epochs_trained"],
                         "train_time_s": summary["train_time_s"],
                         "best_val_accuracy": summary["best"]["val_accuracy"],
                         "best_architecture": summary["best"]["architecture"], "trials": summary["trials"],
                         "pruner": pruner}
    pruned, unpruned = results["median"], results["none"]
    equal_load_ratio = _equal_load_time_ratio(configs["median"], configs["none"])
    ratio = pruned["epochs_trained"] / unpruned["epochs_trained"]
    difference = pruned["best_val_accuracy"] - unpruned["best_val_accuracy"]
    time_ratio = pruned["train_time_s"] / unpruned["train_time_s"]
    print(f"CNN sweep, {args.trials} trials x {args.epochs} epochs, {args.train_size} training images, "
          f"seed {args.seed}")
    for name, result in results.items():
        print(f"  pruner {name:<6}: {result['epochs_trained']} epochs, {result['train_time_s']:.0f} s training, "
              f"{result['wall_s']:.0f} s wall, "
              f"{result['trials']['PRUNED']} pruned, best val accuracy {result['best_val_accuracy']:.4f} "
              f"({result['best_architecture']})")
    print(f"epochs trained with / without pruning: {ratio:.2f}; training time: {time_ratio:.2f} measured, "
          f"{equal_load_ratio:.2f} at equal load; best val accuracy difference: {difference:+.4f}")
    write_results("sweep_pruning", {"settings": recorded_options(args), "runs": results, "epoch_ratio": ratio,
                                    "train_time_ratio": time_ratio, "train_time_ratio_equal_load": equal_load_ratio,
                                    "best_val_accuracy_difference": difference}, args)


def _equal_load_time_ratio(pruned_config, unpruned_config) -> float:
    """Training seconds of the pruned sweep over the unpruned one, each trial costed at its twin's
    seconds per epoch in the unpruned sweep (trials without a twin keep their own measured time)."""
    import optuna

    from studyflow.tracking import TrialAttr

    def trials(config):
        study = optuna.load_study(study_name=config.resolved_study_name, storage=config.storage_url)
        return {trial.number: trial for trial in study.trials if TrialAttr.TRAIN_TIME_S in trial.user_attrs}

    pruned, unpruned = trials(pruned_config), trials(unpruned_config)
    unpruned_total = sum(trial.user_attrs[TrialAttr.TRAIN_TIME_S] for trial in unpruned.values())
    pruned_total = 0.0
    for number, trial in pruned.items():
        twin = unpruned.get(number)
        if twin is not None and twin.params == trial.params:
            per_epoch = twin.user_attrs[TrialAttr.TRAIN_TIME_S] / twin.user_attrs[TrialAttr.EPOCHS_RUN]
            pruned_total += per_epoch * trial.user_attrs[TrialAttr.EPOCHS_RUN]
        else:
            pruned_total += trial.user_attrs[TrialAttr.TRAIN_TIME_S]
    return pruned_total / unpruned_total


if __name__ == "__main__":
    main()
