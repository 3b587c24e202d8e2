"""Every benchmark's --quick mode, run as `make bench` runs it, so that no benchmark rots unseen.

Each runs in its own process from the repository root, with a temporary studyflow home and
temporary folder, and must write its JSON result, with finite numbers where the benchmark reports
its figures, into the folder given by --out. The quick runs are smoke tests: their figures are not
checked against anything but being numbers.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import prefect_home

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

# Per benchmark, the paths in its result that must hold finite numbers: keys joined by "/", where
# "*" stands for every entry of a mapping or list (and there must be at least one).
EXPECTED = {
    "data_loading": [
        "mnist/cold_s",
        "mnist/warm_s",
        "mnist/cold_over_warm",
        "fashion-mnist/cold_s",
        "fashion-mnist/warm_s",
        "fashion-mnist/cold_over_warm",
    ],
    "training_efficiency": ["matmul_peak_gflops/*", "goals/own_operations_fraction"]
    + [
        f"{model}/{path}"
        for model in ("CNN-1", "MLP-1", "MTL lambda 0.5")
        for path in (
            "float32/training_flops_per_sample",
            "*/samples_per_s",
            "*/epoch_times_s/*",
            "*/achieved_gflops",
            "*/fraction_of_peak",
            "*/mean_fraction_of_peak",
            "mixed_bfloat16/speedup_over_float32",
            "*/own_operations/*/samples_per_s",
            "*/own_operations/*/mean_samples_per_s",
            "*/fraction_of_own_operations",
            "*/mean_fraction_of_own_operations",
            "*/fraction_of_forward_backward",
            "*/fraction_of_one_step_per_call",
            "*/own_operations_fraction_of_peak",
            "*/update_share_of_own_step",
            "*/layers/*/forward_ms",
            "*/layers/*/forward_backward_ms",
        )
    ],
    "tracking_overhead": [
        "MLP-1/medians_s/*",
        "MLP-1/minimums_s/*",
        "MLP-1/tracked_over_bare_test",
        "MLP-1/served_over_bare_test",
        "MLP-1/bare_test_over_bare",
        "MLP-1/profile_s/*",
        "MLP-1/extra_s",
        "MLP-1/tracked_over_bare_test_at_20_full_epochs",
        "MLP-1/served_over_bare_test_at_20_full_epochs",
    ],
    "training_speed": [
        "steps_per_execution",
        "MLP-1/epoch_seconds/keras/*",
        "MLP-1/epoch_seconds/studyflow/*",
        "MLP-1/median_epoch_s/*",
        "MLP-1/speedup_over_keras_defaults",
    ],
    "precision_choice": [
        "models/cnn/rows/*/test_accuracy_mean",
        "models/cnn/rows/*/train_time_s_mean",
        "models/cnn/train_time_speedup",
    ],
    "study_paper": [
        "whole_parts_s/*",
        "precisions/float32/projected_study_s",
        "precisions/float32/parts/*/projected_s",
        "precisions/float32/parts/*/trainings/*/steady_epoch_s",
    ],
    "study_quick": ["float32/wall_s", "float32/peak_rss_mb", "float32/parts_s/perceptron"],
    "server_start": [
        "quiet/new_database_s/*",
        "quiet/migrated_database_s/*",
        "loaded/new_database_s/*",
        "loaded/migrated_database_s/*",
        "new_database_loaded_over_quiet",
        "migrated_database_loaded_over_quiet",
    ],
    "fan_out": [
        "comparison/process/workers_1_s",
        "comparison/process/workers_2_s",
        "comparison/process/ratio",
        "comparison/mlp/workers_1/part_s",
        "comparison/mlp/workers_2/part_s",
        "comparison/mlp/ratio",
        "comparison/cnn/workers_1/part_s",
        "comparison/cnn/workers_2/part_s",
        "comparison/cnn/ratio",
        "projection/parts/*/overhead_s",
        "projection/parts/*/trainings_s/*",
        "projection/unfanned_s/*",
        "projection/wall_s/*",
    ],
    "sweep_pruning": [
        "seeds/*/runs/*/wall_s",
        "seeds/*/runs/*/epochs_trained",
        "seeds/*/runs/*/train_time_s",
        "seeds/*/runs/*/best_val_accuracy",
        "settings/validation_images",
        "seeds/*/comparisons/*/epoch_ratio",
        "seeds/*/comparisons/*/train_time_ratio",
        "seeds/*/comparisons/*/train_time_ratio_equal_load",
        "seeds/*/comparisons/*/best_val_accuracy_difference_points",
        "summary/*/epoch_ratio_mean",
        "summary/*/best_val_accuracy_difference_points_mean",
        "summary/*/train_time_ratio_equal_load_mean",
    ],
    "tuning": [
        "wall_s",
        "process_reference/MLP-1/samples_per_s",
        "process_reference/MLP-1/drift",
        "rows/*/samples_per_s",
        "rows/*/ratio_to_default",
        "logging/modes/*/fit_s_median",
        "logging/modes/*/fit_over_none",
        "startup/optuna/import_s",
        "startup/studyflow run pca --help/process_s",
        "startup/studyflow run pca --profile quick/total_s",
        "startup/studyflow run pca --profile quick/flow_started_s",
    ],
}
# Where a zero would mean that nothing was measured: every profiled step of a tracked run is called.
POSITIVE = {
    "training_speed": ["MLP-1/median_epoch_s/*"],
    "server_start": ["quiet/new_database_s/*", "loaded/new_database_s/*"],
    "tracking_overhead": ["MLP-1/profile_s/*", "MLP-1/medians_s/*"],
    "training_efficiency": [
        f"{model}/*/own_operations/*/samples_per_s" for model in ("CNN-1", "MLP-1", "MTL lambda 0.5")
    ],
    "tuning": ["rows/*/samples_per_s", "logging/modes/*/fit_s_median"],
    "fan_out": [
        "comparison/mlp/workers_2/trainings",
        "comparison/cnn/workers_2/trainings",
        "projection/parts/*/trainings_s/*",
        "projection/wall_s/*",
    ],
}
# Benchmarks that can keep their store to be continued later: told to keep it in the test's folder.
KEPT_HOME = {"precision_choice"}
# The kinds of setting tuning's quick plan measures one of each; a renamed setting would drop out.
TUNING_QUICK_SECTIONS = {"reference", "threads", "precision", "pipeline", "xla", "batch"}


def entry_points() -> set[str]:
    """The bench modules that run as `python -m bench.X`."""
    modules = {path.stem for path in BENCH.glob("*.py") if 'if __name__ == "__main__":' in path.read_text()}
    return modules | {path.parent.name for path in BENCH.glob("*/__main__.py")}


def values(data, path: str) -> list:
    found = [data]
    for key in path.split("/"):
        step = []
        for item in found:
            if key == "*":
                step.extend(item.values() if isinstance(item, dict) else item)
            else:
                assert key in item, f"no {key!r} in {sorted(item) if isinstance(item, dict) else item!r}"
                step.append(item[key])
        assert step, f"nothing at {path}"
        found = step
    return found


def test_every_benchmark_is_tested_and_run_by_make_bench():
    assert set(EXPECTED) == entry_points()
    bench_target = re.search(r"^bench:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert bench_target, "no bench target in the Makefile"
    assert set(re.findall(r"-m bench\.(\w+)", bench_target.group(1))) == set(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("benchmark", sorted(EXPECTED))
def test_quick_benchmark_writes_its_result(benchmark, tmp_path):
    out, scratch = tmp_path / "results", tmp_path / "tmp"
    scratch.mkdir()
    # The benchmarks' own stores and work folders go there too.
    env = {
        **os.environ,
        "STUDYFLOW_HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(prefect_home(tmp_path / "prefect")),
        "TMPDIR": str(scratch),
    }
    for name in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL"):
        env.pop(name, None)
    committed = {path: path.stat().st_mtime_ns for path in (BENCH / "results").glob("*.json")}
    log = tmp_path / "output.log"  # a file: a server a benchmark leaves behind cannot hold a pipe open
    with log.open("w") as output:
        kept = ["--home", str(tmp_path / "kept")] if benchmark in KEPT_HOME else []
        completed = subprocess.run(
            [sys.executable, "-m", f"bench.{benchmark}", "--quick", "--out", str(out), *kept],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    assert completed.returncode == 0, log.read_text()[-4000:]
    result_file = out / f"{benchmark}.json"
    assert result_file.is_file(), log.read_text()[-4000:]
    payload = json.loads(result_file.read_text())
    assert payload["benchmark"] == benchmark and payload["quick"] is True
    assert {path: path.stat().st_mtime_ns for path in (BENCH / "results").glob("*.json")} == committed, (
        "a quick run wrote into bench/results/"
    )
    results = payload["results"]
    for path in EXPECTED[benchmark]:
        for value in values(results, path):
            assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{path}: {value!r}"
            assert math.isfinite(value), f"{path}: {value}"
    for path in POSITIVE.get(benchmark, []):
        assert all(value > 0 for value in values(results, path)), f"{path}: {values(results, path)}"
    if benchmark in KEPT_HOME:  # its trainings were recorded in the kept store, not a temporary one
        assert "home" not in payload["results"]["settings"]
        from mlflow import MlflowClient

        client = MlflowClient(f"sqlite:///{tmp_path / 'kept' / 'mlruns' / 'mlflow.db'}")
        assert [
            run
            for experiment in client.search_experiments()
            for run in client.search_runs([experiment.experiment_id])
            if run.info.status == "FINISHED"
        ]
    if benchmark == "tuning":
        assert TUNING_QUICK_SECTIONS <= {row["section"] for row in results["rows"]}
        assert not [row for row in results["rows"] if "error" in row]


def test_the_fan_out_projection_schedules_the_longest_training_first():
    from bench.fan_out_schedule import lpt_makespan, projected_wall_s

    assert lpt_makespan([5, 4, 3, 3, 3], 1) == 18  # one worker: one after another
    # Longest first: 5 and 4 start, the 3s go to whichever is free first: 5+3 = 8, 4+3+3 = 10. (The
    # best schedule, 5+4 and 3+3+3, takes 9: LPT is a heuristic, within 4/3 of the best.)
    assert lpt_makespan([3, 3, 4, 3, 5], 2) == 10
    assert lpt_makespan([5, 4, 3, 3, 3], 16) == 5  # more workers than trainings: the longest
    assert lpt_makespan([], 4) == 0
    with pytest.raises(ValueError):
        lpt_makespan([1.0], 0)
    parts = {"mlp": {"overhead_s": 2.0, "trainings_s": [5, 4, 3, 3, 3]}, "cnn": {"overhead_s": 1.0, "trainings_s": [6]}}
    assert projected_wall_s(parts, unfanned_s=10.0, workers=2) == 10 + (2 + 10) + (1 + 6)  # parts in turn
    assert projected_wall_s(parts, unfanned_s=10.0, workers=1) == 10 + (2 + 18) + (1 + 6)


def test_the_precision_choice_stops_before_training_on_a_cpu_that_emulates_bfloat16(tmp_path, monkeypatch, capsys):
    import studyflow.machine
    from bench import precision_choice

    monkeypatch.setattr(studyflow.machine, "cpu_flags", lambda: ["avx2", "fma"])  # an AVX2-only CPU
    monkeypatch.setattr(sys, "argv", ["precision_choice", "--home", str(tmp_path / "kept-home")])
    with pytest.raises(SystemExit) as stopped:
        precision_choice.main()
    assert stopped.value.code == 2
    assert "emulates bfloat16" in capsys.readouterr().err
    assert not (tmp_path / "kept-home").exists()  # no store made, nothing trained
