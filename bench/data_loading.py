"""Loading MNIST and Fashion-MNIST: cold (verify checksums, decode IDX, fill the cache) and warm.

--quick: one repeat.
Run: .venv/bin/python -m bench.data_loading [--repeats 5] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile

from bench.common import add_benchmark_arguments, median, parse_arguments, timed, write_results

QUICK = {"repeats": 1}


def main() -> None:
    parser = add_benchmark_arguments(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--repeats", type=int, default=5)
    args = parse_arguments(parser, QUICK)
    from tasks import data

    results = {}
    for name in data.DATASET_NAMES:
        cold, warm = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as cache:
                os.environ["STUDYFLOW_CACHE_DIR"] = cache
                cold.append(timed(data.load_dataset, name)[0])
                warm.append(timed(data.load_dataset, name)[0])
        results[name] = {"cold_s": median(cold), "warm_s": median(warm), "cold_over_warm": median(cold) / median(warm)}
        print(
            f"{name}: cold {median(cold):.3f} s, warm {median(warm):.3f} s "
            f"(cold/warm {median(cold) / median(warm):.1f}x, median of {args.repeats})"
        )
    write_results("data_loading", results, args)


if __name__ == "__main__":
    main()
