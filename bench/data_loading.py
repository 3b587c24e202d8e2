"""Loading MNIST and Fashion-MNIST: cold (verify checksums, decode IDX, fill the cache) and warm.

Run: .venv/bin/python -m bench.data_loading [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile

from bench.common import median, timed, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
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
        print(f"{name}: cold {median(cold):.3f} s, warm {median(warm):.3f} s "
              f"(cold/warm {median(cold) / median(warm):.1f}x, median of {args.repeats})")
    write_results("data_loading", results)


if __name__ == "__main__":
    main()
